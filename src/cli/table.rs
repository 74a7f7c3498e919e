//! Text layout for kubectl-style output: aligned tables, AGE formatting.

use k8s_openapi::jiff::Timestamp;

/// Aligned columns as Go's tabwriter lays them out for kubectl: each column as wide as its
/// widest cell plus `padding`, at least `min_width`; the last column is not padded. Widths
/// are remembered across calls so rows printed later (`get -w`) line up with the first.
#[derive(Clone, Debug)]
pub struct Table {
    widths: Vec<usize>,
    padding: usize,
    min_width: usize,
}

impl Table {
    /// The layout of `kubectl get`.
    pub fn new() -> Table {
        Table {
            widths: Vec::new(),
            padding: 3,
            min_width: 6,
        }
    }

    /// The tighter layout of `kubectl describe` sections.
    pub fn compact() -> Table {
        Table {
            widths: Vec::new(),
            padding: 2,
            min_width: 0,
        }
    }

    /// Renders `rows` as lines, each ending in `\n`.
    pub fn render(&mut self, rows: &[Vec<String>]) -> String {
        for row in rows {
            for (index, cell) in row.iter().enumerate().take(row.len().saturating_sub(1)) {
                let width = (cell.chars().count() + self.padding).max(self.min_width);
                match self.widths.get_mut(index) {
                    Some(known) => *known = (*known).max(width),
                    None => self.widths.push(width),
                }
            }
        }
        let mut out = String::new();
        for row in rows {
            for (index, cell) in row.iter().enumerate() {
                out.push_str(cell);
                if index + 1 < row.len() {
                    let pad = self.widths[index].saturating_sub(cell.chars().count());
                    out.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push('\n');
        }
        out
    }
}

/// Aligns tab-separated lines as Go's tabwriter does for `kubectl describe`: consecutive
/// lines with tabs are aligned together; a line without a tab ends the block.
pub fn tabwrite(text: &str) -> String {
    let mut out = String::new();
    let mut block: Vec<Vec<String>> = Vec::new();
    let flush = |block: &mut Vec<Vec<String>>, out: &mut String| {
        if !block.is_empty() {
            out.push_str(&Table::compact().render(block));
            block.clear();
        }
    };
    for line in text.lines() {
        if line.contains('\t') {
            block.push(line.split('\t').map(str::to_string).collect());
        } else {
            flush(&mut block, &mut out);
            out.push_str(line);
            out.push('\n');
        }
    }
    flush(&mut block, &mut out);
    out
}

impl Default for Table {
    fn default() -> Self {
        Table::new()
    }
}

/// kubectl's `HumanDuration`: `45s`, `3m2s`, `15m`, `4h5m`, `20h`, `3d4h`, `12d`, `2y`.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        return with_remainder(minutes, "m", seconds % 60, "s");
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        return with_remainder(hours, "h", minutes % 60, "m");
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        return with_remainder(hours / 24, "d", hours % 24, "h");
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        return with_remainder(hours / 24 / 365, "y", (hours / 24) % 365, "d");
    }
    format!("{}y", hours / 24 / 365)
}

fn with_remainder(major: i64, major_unit: &str, minor: i64, minor_unit: &str) -> String {
    if minor == 0 {
        format!("{major}{major_unit}")
    } else {
        format!("{major}{major_unit}{minor}{minor_unit}")
    }
}

/// The current time.
pub fn now() -> Timestamp {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp::new(
        since_epoch.as_secs() as i64,
        since_epoch.subsec_nanos() as i32,
    )
    .unwrap_or(Timestamp::UNIX_EPOCH)
}

/// The age of `at` as kubectl prints it; `<unknown>` without a time.
pub fn since(at: Option<Timestamp>, now: Timestamp) -> String {
    match at {
        Some(at) => human_duration(now.as_second() - at.as_second()),
        None => "<unknown>".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2024-01-10T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn human_duration_matches_kubectl() {
        let cases = [
            (-5, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (5, "5s"),
            (119, "119s"),
            (120, "2m"),
            (182, "3m2s"),
            (600, "10m"),
            (179 * 60, "179m"),
            (3 * 3600, "3h"),
            (4 * 3600 + 5 * 60, "4h5m"),
            (20 * 3600, "20h"),
            (2 * 86400, "2d"),
            (3 * 86400 + 4 * 3600, "3d4h"),
            (12 * 86400, "12d"),
            (800 * 86400, "2y70d"),
            (3650 * 86400, "10y"),
        ];
        for (seconds, expected) in cases {
            assert_eq!(human_duration(seconds), expected, "{seconds}s");
        }
        assert_eq!(since(None, now()), "<unknown>");
    }

    #[test]
    fn table_aligns_like_kubectl() {
        let mut table = Table::new();
        let rows = vec![
            vec![
                "NAME".into(),
                "READY".into(),
                "STATUS".into(),
                "RESTARTS".into(),
                "AGE".into(),
            ],
            vec![
                "demo".into(),
                "2/2".into(),
                "Running".into(),
                "0".into(),
                "5s".into(),
            ],
            vec![
                "a-longer-name".into(),
                "0/1".into(),
                "CrashLoopBackOff".into(),
                "3 (12s ago)".into(),
                "3m2s".into(),
            ],
        ];
        assert_eq!(
            table.render(&rows),
            "NAME            READY   STATUS             RESTARTS      AGE\n\
             demo            2/2     Running            0             5s\n\
             a-longer-name   0/1     CrashLoopBackOff   3 (12s ago)   3m2s\n"
        );
        // Later rows keep the widths already printed.
        assert_eq!(
            table.render(&[vec![
                "x".into(),
                "1/1".into(),
                "Running".into(),
                "0".into(),
                "1s".into()
            ]]),
            "x               1/1     Running            0             1s\n"
        );
    }

    #[test]
    fn narrow_columns_get_the_minimum_width() {
        let rows = vec![vec!["ab".into(), "c".into()]];
        assert_eq!(Table::new().render(&rows), "ab    c\n");
        assert_eq!(Table::compact().render(&rows), "ab  c\n");
    }

    #[test]
    fn tabwrite_aligns_blocks_separated_by_plain_lines() {
        let text = "Name:\tdemo\nService Account:\tdefault\nContainers:\n  a:\n    Image:\tx.wasm\n    Ready:\tTrue\n";
        assert_eq!(
            tabwrite(text),
            "Name:             demo\nService Account:  default\nContainers:\n  a:\n    Image:  x.wasm\n    Ready:  True\n"
        );
    }
}
