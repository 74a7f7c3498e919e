//! PATCH bodies: JSON patch (RFC 6902), JSON merge patch (RFC 7386), strategic merge patch
//! (`strategic.rs`, driven by the type table) and server-side apply (`api::apply`).

mod strategic;

use serde_json::Value;

use super::error::{ApiError, ApiResult};
use super::types::Message;

/// The patch formats a client names in `Content-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    /// RFC 6902 operations (`add`, `remove`, `replace`, `move`, `copy`, `test`).
    Json,
    /// RFC 7386: objects merge, `null` removes, anything else replaces.
    Merge,
    /// Kubernetes' strategic merge: lists with a patch merge key merge element by element, and
    /// `$patch`, `$retainKeys`, `$setElementOrder/` and `$deleteFromPrimitiveList/` directives.
    StrategicMerge,
    /// Server-side apply: the body is the manager's whole intent (see `api::apply`).
    Apply,
}

/// The media types of [`PatchType`], in the order kube-apiserver lists them.
pub const MEDIA_TYPES: &[(&str, PatchType)] = &[
    ("application/json-patch+json", PatchType::Json),
    ("application/merge-patch+json", PatchType::Merge),
    (
        "application/strategic-merge-patch+json",
        PatchType::StrategicMerge,
    ),
    ("application/apply-patch+yaml", PatchType::Apply),
];

impl PatchType {
    /// The patch type a `Content-Type` names.
    ///
    /// # Errors
    /// 415 naming the accepted types.
    pub fn from_content_type(content_type: &str) -> ApiResult<Self> {
        let media = content_type.split(';').next().unwrap_or("").trim();
        MEDIA_TYPES
            .iter()
            .find(|(name, _)| *name == media)
            .map(|(_, patch_type)| *patch_type)
            .ok_or_else(|| {
                let accepted: Vec<&str> = MEDIA_TYPES.iter().map(|(name, _)| *name).collect();
                ApiError::Unsupported(format!(
                    "the body of the request was in an unknown format - accepted media types include: {} (got {media:?})",
                    accepted.join(", ")
                ))
            })
    }
}

/// Applies a JSON, merge or strategic merge `patch` to `target`. `message` is the object's
/// type, which a strategic merge needs; a kind without one (a custom resource) is refused as
/// Kubernetes refuses it.
///
/// # Errors
/// 422 for a JSON patch that does not apply (a failed `test`, a missing path), 400 for a
/// malformed patch, 415 for a strategic merge of a type-less kind or an apply patch.
pub fn apply(
    target: &mut Value,
    patch: &Value,
    patch_type: PatchType,
    message: Option<&Message>,
) -> ApiResult<()> {
    match patch_type {
        PatchType::Merge => {
            json_patch::merge(target, patch);
            Ok(())
        }
        PatchType::Json => {
            let operations: json_patch::Patch = serde::Deserialize::deserialize(patch)
                .map_err(|e| ApiError::BadRequest(format!("invalid JSON patch: {e}")))?;
            json_patch::patch(target, &operations)
                .map_err(|e| ApiError::UnprocessablePatch(e.to_string()))
        }
        PatchType::StrategicMerge => {
            let message = message.ok_or_else(|| {
                ApiError::Unsupported(
                    "strategic merge patch format is not supported for this kind".into(),
                )
            })?;
            strategic::apply(target, patch, message)
        }
        PatchType::Apply => Err(ApiError::Unsupported(
            "an apply patch is not a change to merge: it goes through server-side apply".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_sets_replaces_and_removes() {
        let mut target = json!({"a": {"b": 1, "c": 2}, "l": [1, 2]});
        let patch = json!({"a": {"b": null, "d": 3}, "l": [3]});
        apply(&mut target, &patch, PatchType::Merge, None).unwrap();
        assert_eq!(target, json!({"a": {"c": 2, "d": 3}, "l": [3]}));
    }

    #[test]
    fn json_patch_applies_operations_and_a_failed_test_changes_nothing() {
        let mut target = json!({"spec": {"replicas": 1, "args": ["a"]}});
        let patch = json!([
            {"op": "test", "path": "/spec/replicas", "value": 1},
            {"op": "replace", "path": "/spec/replicas", "value": 3},
            {"op": "add", "path": "/spec/args/-", "value": "b"},
        ]);
        apply(&mut target, &patch, PatchType::Json, None).unwrap();
        assert_eq!(target, json!({"spec": {"replicas": 3, "args": ["a", "b"]}}));

        let failing = json!([
            {"op": "replace", "path": "/spec/replicas", "value": 9},
            {"op": "test", "path": "/spec/replicas", "value": 1},
        ]);
        let error = apply(&mut target, &failing, PatchType::Json, None).unwrap_err();
        assert_eq!(error.code(), 422);
        assert_eq!(target["spec"]["replicas"], 3, "all or nothing");
    }

    #[test]
    fn a_json_patch_that_is_not_a_list_of_operations_is_a_bad_request() {
        let mut target = json!({});
        let error = apply(&mut target, &json!({"op": "add"}), PatchType::Json, None);
        assert_eq!(error.unwrap_err().code(), 400);
    }

    #[test]
    fn content_types_name_patch_types_and_others_are_refused() {
        let json = PatchType::from_content_type("application/json-patch+json; charset=utf-8");
        assert_eq!(json.unwrap(), PatchType::Json);
        let apply = PatchType::from_content_type("application/apply-patch+yaml");
        assert_eq!(apply.unwrap(), PatchType::Apply);
        let error = PatchType::from_content_type("text/plain").unwrap_err();
        assert_eq!(error.code(), 415);
    }
}
