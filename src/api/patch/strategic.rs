//! Strategic merge patch, as kube-apiserver applies it: objects merge key by key; a list whose
//! field has `patchStrategy: merge` merges element by element (by its `patchMergeKey`, or as a
//! set of scalars); other lists are replaced. The field facts come from the type table.
//!
//! Directives: `$patch: replace | delete | merge` on an object or a list element,
//! `$retainKeys`, `$setElementOrder/<list>` and `$deleteFromPrimitiveList/<list>`.

use serde_json::{Map, Value};

use crate::api::error::{ApiError, ApiResult};
use crate::api::types::{Field, Message};

const PATCH: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";

/// Applies `patch` to `target`, an object of type `message`.
///
/// # Errors
/// 400 for an unknown directive or a list element without its merge key.
pub fn apply(target: &mut Value, patch: &Value, message: &Message) -> ApiResult<()> {
    merge_object(target, patch, Some(message))
}

fn bad(message: String) -> ApiError {
    ApiError::BadRequest(message)
}

/// Merges the object `patch` into `target`; `message` is its type when the table knows it
/// (a map's values, or a field of a type it does not describe, merge without list facts).
fn merge_object(target: &mut Value, patch: &Value, message: Option<&Message>) -> ApiResult<()> {
    let Some(fields) = patch.as_object() else {
        *target = patch.clone();
        return Ok(());
    };
    match fields.get(PATCH).and_then(Value::as_str) {
        Some("replace") => {
            *target = Value::Object(without_directives(fields));
            return Ok(());
        }
        Some("delete") => {
            *target = Value::Null;
            return Ok(());
        }
        Some("merge") | None => {}
        Some(other) => return Err(bad(format!("unknown patch type: {other:?}"))),
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let object = target.as_object_mut().expect("made an object above");
    for (key, value) in fields {
        if let Some(list) = key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
            let doomed = value.as_array().cloned().unwrap_or_default();
            if let Some(items) = object.get_mut(list).and_then(Value::as_array_mut) {
                items.retain(|item| !doomed.contains(item));
            }
            continue;
        }
        if key.starts_with('$') {
            continue;
        }
        if value.is_null() {
            object.remove(key);
            continue;
        }
        let field = message.and_then(|m| m.field(key));
        let slot = object.entry(key.clone()).or_insert(Value::Null);
        merge_field(slot, value, field)?;
        if slot.is_null() {
            object.remove(key);
        }
    }
    for (key, order) in fields {
        if let Some(list) = key.strip_prefix(SET_ELEMENT_ORDER)
            && let Some(items) = object.get_mut(list).and_then(Value::as_array_mut)
        {
            let keys = message
                .and_then(|m| m.field(list))
                .and_then(|f| f.patch_merge_key.clone());
            set_order(
                items,
                order.as_array().map(Vec::as_slice).unwrap_or(&[]),
                keys,
            );
        }
    }
    if let Some(retained) = fields.get(RETAIN_KEYS).and_then(Value::as_array) {
        object.retain(|key, _| retained.iter().any(|r| r == key));
    }
    Ok(())
}

/// Merges one field's patch value into its current value.
fn merge_field(slot: &mut Value, value: &Value, field: Option<&Field>) -> ApiResult<()> {
    let replace = field.is_some_and(|f| f.patch_strategy.as_deref() == Some("replace"));
    match (value, field) {
        (Value::Array(patch), Some(field)) if !replace && (slot.is_array() || slot.is_null()) => {
            if slot.is_null() {
                *slot = Value::Array(Vec::new());
            }
            match field.list_keys(true) {
                Some(keys) if keys.is_empty() => merge_set(slot, patch),
                Some(keys) => merge_list(slot, patch, keys[0], field.message())?,
                None => *slot = Value::Array(strip_list(patch)),
            }
            Ok(())
        }
        (Value::Array(patch), _) => {
            *slot = Value::Array(strip_list(patch));
            Ok(())
        }
        (Value::Object(_), _) if replace => {
            *slot = value.clone();
            Ok(())
        }
        (Value::Object(entries), Some(field)) if field.map && !entries.contains_key(PATCH) => {
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            for (key, entry) in entries {
                let map = slot.as_object_mut().expect("made an object above");
                if key.starts_with('$') {
                    continue;
                }
                if entry.is_null() {
                    map.remove(key);
                    continue;
                }
                let current = map.entry(key.clone()).or_insert(Value::Null);
                merge_object(current, entry, field.message())?;
            }
            Ok(())
        }
        (Value::Object(_), _) => merge_object(slot, value, field.and_then(Field::message)),
        _ => {
            *slot = value.clone();
            Ok(())
        }
    }
}

/// A list of scalars merged as a set: new values appended.
fn merge_set(slot: &mut Value, patch: &[Value]) {
    let current = slot.as_array_mut().expect("checked by the caller");
    for value in patch {
        if !current.contains(value) {
            current.push(value.clone());
        }
    }
}

/// Merges `patch` elements into the list `slot` by `key`: matching elements are patched, new
/// ones appended, `$patch: delete` ones removed; one `$patch: replace` element makes the rest
/// of the patch the whole list.
fn merge_list(
    slot: &mut Value,
    patch: &[Value],
    key: &str,
    message: Option<&Message>,
) -> ApiResult<()> {
    let directive = |e: &Value| e.get(PATCH).and_then(Value::as_str).map(str::to_string);
    if patch
        .iter()
        .any(|e| directive(e).as_deref() == Some("replace"))
    {
        let kept = patch.iter().filter(|e| directive(e).is_none()).cloned();
        *slot = Value::Array(kept.collect());
        return Ok(());
    }
    let current = slot.as_array_mut().expect("checked by the caller");
    for element in patch {
        let id = element.get(key).ok_or_else(|| {
            bad(format!(
                "map: {element} does not contain declared merge key: {key}"
            ))
        })?;
        let position = current.iter().position(|c| c.get(key) == Some(id));
        match (position, directive(element).as_deref()) {
            (Some(at), Some("delete")) => {
                current.remove(at);
            }
            (None, Some("delete")) => {}
            (Some(at), _) => merge_object(&mut current[at], element, message)?,
            (None, _) => {
                let mut added = Value::Null;
                merge_object(&mut added, element, message)?;
                current.push(added);
            }
        }
    }
    Ok(())
}

/// Orders `items` as `order` lists them (by merge key, or by value for scalars); items it does
/// not name keep their order after them.
fn set_order(items: &mut [Value], order: &[Value], key: Option<String>) {
    let identity = |item: &Value| match &key {
        Some(key) => item.get(key).cloned().unwrap_or(Value::Null),
        None => item.clone(),
    };
    let rank = |item: &Value| {
        let id = identity(item);
        order
            .iter()
            .position(|o| identity(o) == id || *o == id)
            .unwrap_or(usize::MAX)
    };
    items.sort_by_key(rank);
}

/// A replaced list's elements without directives in them.
fn strip_list(patch: &[Value]) -> Vec<Value> {
    patch
        .iter()
        .map(|element| match element.as_object() {
            Some(fields) => Value::Object(without_directives(fields)),
            None => element.clone(),
        })
        .collect()
}

fn without_directives(fields: &Map<String, Value>) -> Map<String, Value> {
    fields
        .iter()
        .filter(|(key, _)| !key.starts_with('$'))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::types::Types;
    use serde_json::json;

    fn pod() -> &'static Message {
        Types::get().message("k8s.io.api.core.v1.Pod").unwrap()
    }

    fn patched(mut target: Value, patch: Value) -> Value {
        apply(&mut target, &patch, pod()).unwrap();
        target
    }

    #[test]
    fn containers_merge_by_name_and_delete_on_request() {
        let pod_value = json!({"spec": {"containers": [
            {"name": "web", "image": "v1.wasm", "args": ["serve"]},
            {"name": "side", "image": "s.wasm"},
        ]}});
        let patch = json!({"spec": {"containers": [
            {"name": "web", "image": "v2.wasm"},
            {"name": "side", "$patch": "delete"},
            {"name": "new", "image": "n.wasm"},
        ]}});
        assert_eq!(
            patched(pod_value, patch),
            json!({"spec": {"containers": [
                {"name": "web", "image": "v2.wasm", "args": ["serve"]},
                {"name": "new", "image": "n.wasm"},
            ]}})
        );
    }

    #[test]
    fn finalizers_merge_as_a_set_and_args_are_replaced() {
        let target = json!({"metadata": {"finalizers": ["a"]},
            "spec": {"containers": [{"name": "c", "args": ["x", "y"]}]}});
        let patch = json!({"metadata": {"finalizers": ["b", "a"]},
            "spec": {"containers": [{"name": "c", "args": ["z"]}]}});
        assert_eq!(
            patched(target, patch),
            json!({"metadata": {"finalizers": ["a", "b"]},
                "spec": {"containers": [{"name": "c", "args": ["z"]}]}})
        );
    }

    #[test]
    fn delete_from_primitive_list_and_set_element_order_are_honoured() {
        let target = json!({"metadata": {"finalizers": ["a", "b", "c"]},
            "spec": {"containers": [{"name": "x"}, {"name": "y"}]}});
        let patch = json!({
            "metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]},
            "spec": {"$setElementOrder/containers": [{"name": "y"}, {"name": "x"}],
                     "containers": [{"name": "x", "image": "i"}]},
        });
        assert_eq!(
            patched(target, patch),
            json!({"metadata": {"finalizers": ["a", "c"]},
                "spec": {"containers": [{"name": "y"}, {"name": "x", "image": "i"}]}})
        );
    }

    #[test]
    fn patch_replace_and_retain_keys_drop_what_the_patch_does_not_keep() {
        let target = json!({"metadata": {"labels": {"a": "1", "b": "2"}},
            "spec": {"volumes": [{"name": "v", "emptyDir": {}}]}});
        let patch = json!({
            "metadata": {"labels": {"$patch": "replace", "c": "3"}},
            "spec": {"volumes": [{"name": "v", "$retainKeys": ["name", "configMap"],
                                  "configMap": {"name": "cm"}}]},
        });
        assert_eq!(
            patched(target, patch),
            json!({"metadata": {"labels": {"c": "3"}},
                "spec": {"volumes": [{"name": "v", "configMap": {"name": "cm"}}]}})
        );
    }

    #[test]
    fn a_list_element_without_its_merge_key_or_an_unknown_directive_is_refused() {
        let mut target = json!({"spec": {"containers": []}});
        let keyless = json!({"spec": {"containers": [{"image": "i"}]}});
        assert_eq!(apply(&mut target, &keyless, pod()).unwrap_err().code(), 400);
        let unknown = json!({"spec": {"$patch": "explode"}});
        assert_eq!(apply(&mut target, &unknown, pod()).unwrap_err().code(), 400);
    }
}
