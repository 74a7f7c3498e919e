//! Resource quantities (`64Mi`, `100m`, `1.5`, `2e3`) parsed to numbers.

/// Parses a quantity to a plain number scaled by `scale` (1 for bytes, 1000 for millicores).
///
/// Returns `None` for text that is not a Kubernetes quantity or is negative.
pub fn parse(text: &str, scale: f64) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let multiplier = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        s if s.starts_with(['e', 'E']) => 10f64.powi(s[1..].parse().ok()?),
        _ => return None,
    };
    let value = number * multiplier * scale;
    (value.is_finite() && value >= 0.0 && value < u64::MAX as f64).then(|| value.ceil() as u64)
}

/// Bytes of a memory quantity.
pub fn bytes(text: &str) -> Option<u64> {
    parse(text, 1.0)
}

/// Millicores of a CPU quantity.
pub fn millicores(text: &str) -> Option<u64> {
    parse(text, 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_and_cpu_suffixes_scale_like_kubernetes() {
        assert_eq!(bytes("64Mi"), Some(64 << 20));
        assert_eq!(bytes("1G"), Some(1_000_000_000));
        assert_eq!(bytes("128974848"), Some(128_974_848));
        assert_eq!(bytes("129e6"), Some(129_000_000));
        assert_eq!(millicores("100m"), Some(100));
        assert_eq!(millicores("1.5"), Some(1500));
        assert_eq!(millicores("2"), Some(2000));
    }

    #[test]
    fn garbage_and_negative_quantities_are_rejected() {
        for bad in ["", "abc", "-1", "12Q", "1..2", "Mi"] {
            assert_eq!(bytes(bad), None, "{bad}");
        }
    }
}
