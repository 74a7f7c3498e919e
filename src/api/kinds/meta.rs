//! Validation of `metadata` and of the DNS-style names Kubernetes uses everywhere.

use serde_json::Value;

use crate::api::error::Cause;

/// Why `name` is not a DNS-1123 label (≤63 lowercase alphanumerics or '-', alphanumeric ends).
pub fn dns_label_error(name: &str) -> Option<String> {
    if name.len() > 63 {
        return Some(format!(
            "must be no more than 63 characters (got {})",
            name.len()
        ));
    }
    if !is_label(name) {
        return Some(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')".into(),
        );
    }
    None
}

/// Why `name` is not a DNS-1123 subdomain (≤253, dot-separated labels).
pub fn dns_subdomain_error(name: &str) -> Option<String> {
    if name.len() > 253 {
        return Some(format!(
            "must be no more than 253 characters (got {})",
            name.len()
        ));
    }
    if name.is_empty() || !name.split('.').all(is_label) {
        return Some(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".into(),
        );
    }
    None
}

fn is_label(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

/// Why `value` is not a label value (≤63, alphanumerics with `-_.` inside; may be empty).
fn label_value_error(value: &str) -> Option<String> {
    if value.len() > 63 {
        return Some(format!(
            "must be no more than 63 characters (got {})",
            value.len()
        ));
    }
    let ok = value.is_empty()
        || (value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && value.starts_with(|c: char| c.is_ascii_alphanumeric())
            && value.ends_with(|c: char| c.is_ascii_alphanumeric()));
    (!ok).then(|| {
        "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character".into()
    })
}

/// Why `key` is not a qualified name (`[prefix/]name`, name ≤63, prefix a DNS subdomain).
pub fn qualified_name_error(key: &str) -> Option<String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(error) = prefix.and_then(dns_subdomain_error) {
        return Some(format!("prefix part {error}"));
    }
    if name.is_empty() || name.len() > 63 {
        return Some("name part must be non-empty and no more than 63 characters".into());
    }
    let ok = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    (!ok).then(|| {
        "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character".into()
    })
}

/// Checks the keys and values of the labels at `path` (`metadata.labels`, or a template's).
pub fn validate_labels(labels: &Value, path: &str, causes: &mut Vec<Cause>) {
    for (key, value) in labels.as_object().into_iter().flatten() {
        let field = format!("{path}[{key}]");
        if let Some(error) = qualified_name_error(key) {
            causes.push(Cause::invalid(&field, key, &error));
        }
        let value = value.as_str().unwrap_or_default();
        if let Some(error) = label_value_error(value) {
            causes.push(Cause::invalid(&field, value, &error));
        }
    }
}

/// Checks name, labels and annotations of an object about to be stored.
pub fn validate(metadata: &Value, label_names: bool, causes: &mut Vec<Cause>) {
    match metadata.get("name").and_then(Value::as_str) {
        None | Some("") => causes.push(Cause::required("metadata.name")),
        Some(name) => {
            let error = if label_names {
                dns_label_error(name)
            } else {
                dns_subdomain_error(name)
            };
            if let Some(error) = error {
                causes.push(Cause::invalid("metadata.name", name, &error));
            }
        }
    }
    validate_labels(&metadata["labels"], "metadata.labels", causes);
    if let Some(annotations) = metadata.get("annotations").and_then(Value::as_object) {
        let total: usize = annotations
            .iter()
            .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
            .sum();
        if total > 256 * 1024 {
            causes.push(Cause::invalid(
                "metadata.annotations",
                "<omitted>",
                "may not have more than 262144 bytes",
            ));
        }
        for key in annotations.keys() {
            if let Some(error) = qualified_name_error(key) {
                causes.push(Cause::invalid("metadata.annotations", key, &error));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dns_label_limits_length_and_characters() {
        assert!(dns_label_error("web-1").is_none());
        assert!(dns_label_error(&"a".repeat(63)).is_none());
        assert!(dns_label_error(&"a".repeat(64)).unwrap().contains("63"));
        for bad in ["Web", "-web", "web-", "we_b", "a.b", ""] {
            assert!(dns_label_error(bad).is_some(), "{bad}");
        }
        assert!(dns_subdomain_error("a.b-c.d").is_none());
        assert!(dns_subdomain_error(&"a".repeat(254)).is_some());
    }

    #[test]
    fn labels_are_checked_key_and_value() {
        let mut causes = Vec::new();
        let meta = json!({"name": "ok", "labels": {"app": "web", "example.com/tier": "front", "bad key": "x", "v": "-no"}});
        validate(&meta, true, &mut causes);
        let fields: Vec<_> = causes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["metadata.labels[bad key]", "metadata.labels[v]"]);
    }
}
