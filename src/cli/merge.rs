//! The three-way merge behind `apply`: the live object, the manifest, and the manifest
//! applied last time (kept in the `last-applied-configuration` annotation, as kubectl does).
//!
//! Fields the manifest sets win; fields it dropped since the last apply are removed; fields
//! nobody applied (server defaults, `spec.nodeName`, status) are kept. Lists of named
//! objects (containers, volumes, env) merge element by element on `name`, as a strategic
//! merge patch does; other lists are replaced.

use serde_json::{Map, Value};

/// The annotation holding the manifest last applied.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// `desired` with the last-applied annotation set to `desired` itself (without it).
pub fn with_last_applied(desired: &Value) -> Value {
    let mut recorded = desired.clone();
    if let Some(annotations) = recorded
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        annotations.remove(LAST_APPLIED);
        if annotations.is_empty()
            && let Some(metadata) = recorded.get_mut("metadata").and_then(Value::as_object_mut)
        {
            metadata.remove("annotations");
        }
    }
    let mut annotated = desired.clone();
    let metadata = annotated
        .as_object_mut()
        .expect("manifests are objects")
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(metadata) = metadata.as_object_mut() {
        let annotations = metadata
            .entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(annotations) = annotations.as_object_mut() {
            annotations.insert(LAST_APPLIED.into(), Value::String(format!("{recorded}\n")));
        }
    }
    annotated
}

/// The last-applied manifest recorded on `live`, if any.
pub fn last_applied(live: &Value) -> Option<Value> {
    let text = live
        .pointer("/metadata/annotations")?
        .get(LAST_APPLIED)?
        .as_str()?;
    serde_json::from_str(text).ok()
}

/// What to PUT: `live` with `desired` applied over it, removing what `last` had and
/// `desired` no longer has.
pub fn three_way(live: &Value, desired: &Value, last: Option<&Value>) -> Value {
    let mut merged = live.clone();
    merge_into(&mut merged, desired, last);
    merged
}

fn merge_into(live: &mut Value, desired: &Value, last: Option<&Value>) {
    match (live, desired) {
        (Value::Object(live), Value::Object(desired)) => {
            for (key, wanted) in desired {
                if wanted.is_null() {
                    live.remove(key);
                    continue;
                }
                let last = last.and_then(|l| l.get(key));
                match live.get_mut(key) {
                    Some(current) => merge_into(current, wanted, last),
                    None => {
                        live.insert(key.clone(), wanted.clone());
                    }
                }
            }
            if let Some(Value::Object(last)) = last {
                for key in last.keys().filter(|k| !desired.contains_key(*k)) {
                    live.remove(key);
                }
            }
        }
        (Value::Array(live), Value::Array(desired))
            if is_named_list(desired) && is_named_list(live) =>
        {
            let merged = desired
                .iter()
                .map(|wanted| {
                    let name = wanted.get("name");
                    let previous = last
                        .and_then(Value::as_array)
                        .and_then(|items| items.iter().find(|i| i.get("name") == name));
                    match live.iter().find(|item| item.get("name") == name) {
                        Some(current) => {
                            let mut current = current.clone();
                            merge_into(&mut current, wanted, previous);
                            current
                        }
                        None => wanted.clone(),
                    }
                })
                .collect();
            *live = merged;
        }
        (live, desired) => *live = desired.clone(),
    }
}

/// A list whose elements are all objects with a string `name`.
fn is_named_list(items: &[Value]) -> bool {
    items
        .iter()
        .all(|item| item.get("name").is_some_and(Value::is_string))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn server_set_fields_survive_and_manifest_fields_win() {
        let live = json!({
            "metadata": {"name": "p", "resourceVersion": "7", "uid": "u", "labels": {"app": "a"}},
            "spec": {"nodeName": "n1", "restartPolicy": "Always", "containers": [
                {"name": "c", "image": "/old.wasm", "terminationMessagePath": "/dev/termination-log"}
            ]},
            "status": {"phase": "Running"}
        });
        let desired = json!({
            "metadata": {"name": "p", "labels": {"app": "b"}},
            "spec": {"containers": [{"name": "c", "image": "/new.wasm"}]}
        });
        let merged = three_way(&live, &desired, None);
        assert_eq!(merged["metadata"]["resourceVersion"], "7");
        assert_eq!(merged["metadata"]["labels"]["app"], "b");
        assert_eq!(merged["spec"]["nodeName"], "n1");
        assert_eq!(merged["spec"]["containers"][0]["image"], "/new.wasm");
        assert_eq!(
            merged["spec"]["containers"][0]["terminationMessagePath"],
            "/dev/termination-log"
        );
        assert_eq!(merged["status"]["phase"], "Running");
    }

    #[test]
    fn fields_dropped_since_the_last_apply_are_removed() {
        let last = json!({"metadata": {"labels": {"app": "a", "tier": "web"}}});
        let live =
            json!({"metadata": {"labels": {"app": "a", "tier": "web", "added-by-hand": "x"}}});
        let desired = json!({"metadata": {"labels": {"app": "a"}}});
        let merged = three_way(&live, &desired, Some(&last));
        assert_eq!(
            merged["metadata"]["labels"],
            json!({"app": "a", "added-by-hand": "x"})
        );
    }

    #[test]
    fn unnamed_lists_are_replaced_and_named_ones_follow_the_manifest() {
        let live = json!({"args": ["a", "b"], "containers": [{"name": "x"}, {"name": "y"}]});
        let desired = json!({"args": ["c"], "containers": [{"name": "y", "image": "i"}]});
        let merged = three_way(&live, &desired, None);
        assert_eq!(
            merged,
            json!({"args": ["c"], "containers": [{"name": "y", "image": "i"}]})
        );
    }

    #[test]
    fn applying_the_same_manifest_twice_changes_nothing() {
        let desired = with_last_applied(&json!({"metadata": {"name": "p"}, "spec": {"x": 1}}));
        let mut live = desired.clone();
        live["metadata"]["uid"] = json!("u");
        live["spec"]["default"] = json!(true);
        let merged = three_way(&live, &desired, last_applied(&live).as_ref());
        assert_eq!(merged, live);
    }

    #[test]
    fn last_applied_records_the_manifest_without_itself() {
        let annotated = with_last_applied(&json!({"metadata": {"name": "p"}}));
        let recorded = last_applied(&annotated).unwrap();
        assert_eq!(recorded, json!({"metadata": {"name": "p"}}));
        let again = with_last_applied(&annotated);
        assert_eq!(last_applied(&again).unwrap(), recorded);
    }
}
