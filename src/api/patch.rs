//! PATCH bodies: JSON merge patch (RFC 7386) and strategic merge patch (lists of named
//! things merged by their key, as `kubectl apply` expects).

use serde_json::Value;

use super::error::{ApiError, ApiResult};

/// The patch formats a client names in `Content-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    Merge,
    /// Lists with a merge key (containers by `name`, ports by `containerPort`, ...) are merged
    /// element by element; `$patch: delete` removes an element; other `$`-directives are ignored.
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
            continue;
        }
        let slot = object.entry(key.clone()).or_insert(Value::Null);
        match (patch_type, slot.as_array_mut(), value.as_array()) {
            (PatchType::StrategicMerge, Some(current), Some(elements)) if key == "finalizers" => {
                for element in elements {
                    if !current.contains(element) {
                        current.push(element.clone());
                    }
                }
            }
            (PatchType::StrategicMerge, Some(current), Some(elements)) => {
                match merge_key(key, elements) {
                    Some(merge_key) => merge_list(current, elements, merge_key),
                    None => *slot = value.clone(),
                }
            }
            _ => apply(slot, value, patch_type),
        }
    }
}

/// The field that identifies elements of the list `field`, when Kubernetes merges it by key.
fn merge_key(field: &str, elements: &[Value]) -> Option<&'static str> {
    let key = match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets" => "name",
        "volumeMounts" => "mountPath",
        "ownerReferences" => "uid",
        "conditions" => "type",
        "ports" if elements.iter().any(|e| e.get("containerPort").is_some()) => "containerPort",
        "ports" => "port",
        _ => return None,
    };
    elements.iter().all(|e| e.get(key).is_some()).then_some(key)
}

/// Merges `patch` elements into `current` by `key`: matching elements are patched, new ones
/// appended, `{"$patch": "delete"}` ones removed.
fn merge_list(current: &mut Vec<Value>, patch: &[Value], key: &str) {
    for element in patch {
        let id = &element[key];
        let position = current.iter().position(|c| &c[key] == id);
        let delete = element.get("$patch").and_then(Value::as_str) == Some("delete");
        match (position, delete) {
            (Some(at), true) => {
                current.remove(at);
            }
            (None, true) => {}
            (Some(at), false) => apply(&mut current[at], element, PatchType::StrategicMerge),
            (None, false) => {
                let mut added = Value::Null;
                apply(&mut added, element, PatchType::StrategicMerge);
                current.push(added);
            }
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
        apply(
            &mut target,
            &json!({"a": {"b": null, "d": 3}, "l": [3]}),
            PatchType::Merge,
        );
        assert_eq!(target, json!({"a": {"c": 2, "d": 3}, "l": [3]}));
    }

    #[test]
    fn strategic_directives_are_ignored() {
        let mut target = json!({"spec": {"x": 1}});
        apply(
            &mut target,
            &json!({"spec": {"$setElementOrder/containers": [], "x": 2}}),
            PatchType::StrategicMerge,
        );
        assert_eq!(target, json!({"spec": {"x": 2}}));
    }

    #[test]
    fn strategic_patch_merges_containers_by_name_and_deletes_on_request() {
        let mut pod = json!({"spec": {"containers": [
            {"name": "web", "image": "v1.wasm", "args": ["serve"]},
            {"name": "side", "image": "s.wasm"},
        ]}});
        let patch = json!({"spec": {"containers": [
            {"name": "web", "image": "v2.wasm"},
            {"name": "side", "$patch": "delete"},
            {"name": "new", "image": "n.wasm"},
        ]}});
        apply(&mut pod, &patch, PatchType::StrategicMerge);
        assert_eq!(
            pod,
            json!({"spec": {"containers": [
                {"name": "web", "image": "v2.wasm", "args": ["serve"]},
                {"name": "new", "image": "n.wasm"},
            ]}})
        );
    }

    #[test]
    fn strategic_patch_unions_finalizers_and_replaces_unkeyed_lists() {
        let mut object = json!({"metadata": {"finalizers": ["a"]}, "spec": {"args": ["x", "y"]}});
        apply(
            &mut object,
            &json!({"metadata": {"finalizers": ["b"]}, "spec": {"args": ["z"]}}),
            PatchType::StrategicMerge,
        );
        assert_eq!(
            object,
            json!({"metadata": {"finalizers": ["a", "b"]}, "spec": {"args": ["z"]}})
        );
    }
}
