//! PATCH bodies: JSON merge patch (RFC 7386), and strategic merge patch read as a merge patch.

use serde_json::Value;

use super::error::{ApiError, ApiResult};

/// The patch formats a client names in `Content-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    Merge,
    /// Lists are replaced whole rather than merged by key, and `$`-directives are ignored.
    StrategicMerge,
}

impl PatchType {
    pub fn from_content_type(content_type: &str) -> ApiResult<Self> {
        match content_type.split(';').next().unwrap_or("").trim() {
            "application/merge-patch+json" => Ok(PatchType::Merge),
            "application/strategic-merge-patch+json" => Ok(PatchType::StrategicMerge),
            other => Err(ApiError::Unsupported(format!(
                "the body of the request was in an unknown format - accepted media types include: application/merge-patch+json, application/strategic-merge-patch+json (got {other:?})"
            ))),
        }
    }
}

/// Applies `patch` to `target` in place.
pub fn apply(target: &mut Value, patch: &Value, patch_type: PatchType) {
    let Value::Object(fields) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Default::default());
    }
    let object = target.as_object_mut().expect("made an object above");
    for (key, value) in fields {
        if patch_type == PatchType::StrategicMerge && key.starts_with('$') {
            continue;
        }
        if value.is_null() {
            object.remove(key);
        } else {
            apply(object.entry(key.clone()).or_insert(Value::Null), value, patch_type);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_sets_replaces_and_removes() {
        let mut target = json!({"a": {"b": 1, "c": 2}, "l": [1, 2]});
        apply(&mut target, &json!({"a": {"b": null, "d": 3}, "l": [3]}), PatchType::Merge);
        assert_eq!(target, json!({"a": {"c": 2, "d": 3}, "l": [3]}));
    }

    #[test]
    fn strategic_directives_are_ignored() {
        let mut target = json!({"spec": {"x": 1}});
        apply(&mut target, &json!({"spec": {"$setElementOrder/containers": [], "x": 2}}), PatchType::StrategicMerge);
        assert_eq!(target, json!({"spec": {"x": 2}}));
    }
}
