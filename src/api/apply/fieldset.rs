//! Sets of field paths in Kubernetes' `FieldsV1` form, and the paths an object sets, walked
//! with the list and map facts of the type table (structured-merge-diff's `ToFieldSet`).
//!
//! A path is a list of elements: `f:name` (a struct field or map key), `k:{"name":"web"}` (a
//! list element by its keys), `v:"a"` (a set element), and `.` (the node itself, owned along
//! with its children).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::api::types::{Field, Message};

/// One path.
pub type Path = Vec<String>;

/// Fields every object has that no manager owns: identity and what the server sets.
const UNOWNED_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

/// The member paths of a `FieldsV1` tree.
pub fn from_fields_v1(fields: &Value) -> Vec<Path> {
    let mut paths = Vec::new();
    collect(fields, &mut Vec::new(), &mut paths);
    paths
}

fn collect(node: &Value, prefix: &mut Path, paths: &mut Vec<Path>) {
    let Some(children) = node.as_object() else {
        return;
    };
    for (element, child) in children {
        if element == "." {
            paths.push(prefix.clone());
            continue;
        }
        prefix.push(element.clone());
        if child.as_object().is_none_or(Map::is_empty) {
            paths.push(prefix.clone());
        } else {
            collect(child, prefix, paths);
        }
        prefix.pop();
    }
}

/// The `FieldsV1` tree of `paths`.
pub fn to_fields_v1(paths: &[Path]) -> Value {
    let mut tree = Value::Object(Map::new());
    for path in paths {
        node_mut(&mut tree, path);
    }
    // A member with members below it says so with `.`.
    for path in paths {
        let node = node_mut(&mut tree, path);
        if !node.is_empty() && !path.is_empty() {
            node.insert(".".into(), Value::Object(Map::new()));
        }
    }
    tree
}

/// The node of `path` in a tree, made as needed.
fn node_mut<'a>(tree: &'a mut Value, path: &[String]) -> &'a mut Map<String, Value> {
    path.iter().fold(
        tree.as_object_mut().expect("trees are objects"),
        |node, element| {
            node.entry(element.clone())
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
                .expect("trees are objects")
        },
    )
}

/// The paths `object` sets: its leaves (scalars, atomic lists, maps and structs, empty
/// objects), each element of a keyed list (`.`) with its fields, each element of a set.
pub fn of_object(object: &Value, message: Option<&Message>) -> Vec<Path> {
    let mut paths = Vec::new();
    let Some(fields) = object.as_object() else {
        return paths;
    };
    for (key, value) in fields {
        let metadata_unowned = |k: &str| UNOWNED_METADATA.contains(&k);
        match key.as_str() {
            "apiVersion" | "kind" => {}
            "metadata" => {
                let meta = message.and_then(|m| m.field("metadata"));
                let mut kept = value.as_object().cloned().unwrap_or_default();
                kept.retain(|k, _| !metadata_unowned(k));
                let prefix = vec!["f:metadata".to_string()];
                walk_struct(
                    &Value::Object(kept),
                    meta.and_then(Field::message),
                    &prefix,
                    &mut paths,
                );
            }
            _ => walk_field(
                value,
                message.and_then(|m| m.field(key)),
                vec![format!("f:{key}")],
                &mut paths,
            ),
        }
    }
    paths
}

fn walk_struct(value: &Value, message: Option<&Message>, prefix: &Path, paths: &mut Vec<Path>) {
    let Some(fields) = value.as_object() else {
        return;
    };
    for (key, inner) in fields {
        let mut path = prefix.clone();
        path.push(format!("f:{key}"));
        walk_field(inner, message.and_then(|m| m.field(key)), path, paths);
    }
}

fn walk_field(value: &Value, field: Option<&Field>, path: Path, paths: &mut Vec<Path>) {
    let atomic = field.is_none_or(Field::atomic);
    match value {
        Value::Object(entries) if !atomic && !entries.is_empty() => {
            let field = field.expect("not atomic");
            if field.map {
                for (key, inner) in entries {
                    let mut entry = path.clone();
                    entry.push(format!("f:{key}"));
                    match field.message() {
                        Some(values) if !field.atomic() && inner.is_object() => {
                            walk_struct(inner, Some(values), &entry, paths);
                        }
                        _ => paths.push(entry),
                    }
                }
            } else {
                walk_struct(value, field.message(), &path, paths);
            }
        }
        Value::Array(items) if field.and_then(|f| f.list_keys(false)).is_some() => {
            let field = field.expect("has list keys");
            let keys = field.list_keys(false).expect("checked");
            for item in items {
                let mut element = path.clone();
                element.push(element_key(item, &keys));
                if keys.is_empty() {
                    paths.push(element);
                } else {
                    paths.push(element.clone());
                    walk_struct(item, field.message(), &element, paths);
                }
            }
        }
        _ => paths.push(path),
    }
}

/// The path element of a list item: `k:{...}` by its keys, `v:...` for a set's value.
pub fn element_key(item: &Value, keys: &[&str]) -> String {
    if keys.is_empty() {
        return format!("v:{item}");
    }
    let sorted: BTreeMap<&str, &Value> = keys
        .iter()
        .filter_map(|k| item.get(*k).map(|v| (*k, v)))
        .collect();
    format!(
        "k:{}",
        serde_json::to_string(&sorted).expect("JSON values serialize")
    )
}

/// The value at `path` in `object` (the element itself for `.`).
pub fn value_at<'a>(object: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter()
        .try_fold(object, |node, element| step(node, element))
}

fn step<'a>(node: &'a Value, element: &str) -> Option<&'a Value> {
    if let Some(name) = element.strip_prefix("f:") {
        node.get(name)
    } else if let Some(keys) = element.strip_prefix("k:") {
        let keys: Map<String, Value> = serde_json::from_str(keys).ok()?;
        node.as_array()?
            .iter()
            .find(|item| keys.iter().all(|(k, v)| item.get(k) == Some(v)))
    } else if let Some(value) = element.strip_prefix("v:") {
        let value: Value = serde_json::from_str(value).ok()?;
        node.as_array()?.iter().find(|item| **item == value)
    } else if element == "." {
        Some(node)
    } else {
        None
    }
}

/// Removes what `path` names from `object`; a path that is not there changes nothing.
pub fn remove_at(object: &mut Value, path: &[String]) {
    let path: Vec<&String> = path.iter().filter(|e| *e != ".").collect();
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = object;
    for element in parents {
        let Some(child) = step_mut(node, element) else {
            return;
        };
        node = child;
    }
    if let Some(name) = last.strip_prefix("f:") {
        node.as_object_mut().map(|m| m.remove(name));
    } else if let Some(target) = step(node, last).cloned()
        && let Some(items) = node.as_array_mut()
    {
        items.retain(|item| *item != target);
    }
}

fn step_mut<'a>(node: &'a mut Value, element: &str) -> Option<&'a mut Value> {
    if let Some(name) = element.strip_prefix("f:") {
        return node.get_mut(name);
    }
    let target = step(node, element)?.clone();
    node.as_array_mut()?
        .iter_mut()
        .find(|item| **item == target)
}

/// A path as Kubernetes prints it in a conflict: `.spec.containers[name="web"].image`.
pub fn display(path: &[String]) -> String {
    let mut text = String::new();
    for element in path {
        if let Some(name) = element.strip_prefix("f:") {
            text.push('.');
            text.push_str(name);
        } else if let Some(keys) = element.strip_prefix("k:") {
            let keys: Map<String, Value> = serde_json::from_str(keys).unwrap_or_default();
            let pairs: Vec<String> = keys.iter().map(|(k, v)| format!("{k}={v}")).collect();
            text.push_str(&format!("[{}]", pairs.join(",")));
        } else if let Some(value) = element.strip_prefix("v:") {
            text.push_str(&format!("[={value}]"));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path(elements: &[&str]) -> Path {
        elements.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn fields_v1_round_trips_with_dots_for_members_that_have_members() {
        let element = path(&["f:spec", "f:containers", "k:{\"name\":\"web\"}"]);
        let image = path(&["f:spec", "f:containers", "k:{\"name\":\"web\"}", "f:image"]);
        let tree = to_fields_v1(&[element.clone(), image.clone()]);
        assert_eq!(
            tree,
            json!({"f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {".": {}, "f:image": {}}}}})
        );
        assert_eq!(from_fields_v1(&tree), [element, image]);
    }

    #[test]
    fn paths_find_and_remove_keyed_elements_and_print_as_kubernetes_does() {
        let mut object =
            json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b"}]}});
        let image = path(&["f:spec", "f:containers", "k:{\"name\":\"a\"}", "f:image"]);
        assert_eq!(value_at(&object, &image), Some(&json!("x")));
        assert_eq!(display(&image), ".spec.containers[name=\"a\"].image");
        remove_at(
            &mut object,
            &path(&["f:spec", "f:containers", "k:{\"name\":\"b\"}"]),
        );
        remove_at(&mut object, &image);
        assert_eq!(object, json!({"spec": {"containers": [{"name": "a"}]}}));
    }
}
