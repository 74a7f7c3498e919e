//! Server-side apply (`application/apply-patch+yaml`): a manager sends the whole of what it
//! wants; fields other managers own are conflicts unless forced, fields it applied before
//! and no longer applies are removed, and `managedFields` records who owns what.
//!
//! Hand-written after structured-merge-diff's semantics (no Rust crate implements them),
//! driven by the type table's list types (`+listType`, `+listMapKey`) and atomic markers.

mod fieldset;
pub mod managed;

use serde_json::Value;

use super::error::{ApiError, ApiResult, Cause};
use super::kinds::Resource;
use super::types::{Field, Message};
use super::write::{WriteOptions, Written};
use super::{Api, Part};
use fieldset::Path;
use managed::Entry;

/// How often an apply starts over after a concurrent write.
const MAX_CONFLICT_RETRIES: u32 = 5;

impl Api {
    /// Applies `applied` as `options.field_manager`'s intent for the object `name`, creating it
    /// when it does not exist.
    ///
    /// # Errors
    /// 400 without a field manager or for a body that is not an object, 409 with a cause per
    /// field another manager owns (unless `options.force`), and what create and update answer.
    pub fn apply(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        name: &str,
        applied: Value,
        options: &WriteOptions,
    ) -> ApiResult<Written> {
        let manager = options.field_manager.as_deref().ok_or_else(|| {
            ApiError::BadRequest("fieldManager: Required value: is required for apply patch".into())
        })?;
        if !applied.is_object() {
            return Err(ApiError::BadRequest(
                "an apply patch must be an object".into(),
            ));
        }
        let warnings = options.check_fields(resource, &applied)?;
        let paths = managed::paths_of_part(resource, &applied, Part::Main);
        let mut entry = Entry::new(manager, "Apply", resource.api_version(), Part::Main);
        entry.paths = paths;
        let written = WriteOptions {
            field_manager: None,
            ..options.clone()
        };
        let pinned = applied.pointer("/metadata/resourceVersion").is_some();
        let mut attempts = 0;
        loop {
            let outcome = match self.get(resource, namespace, name) {
                Err(ApiError::NotFound { .. }) => {
                    let mut created = applied.clone();
                    managed::store(&mut created, vec![entry.clone()]);
                    self.create_with(resource, namespace, created, &written)
                }
                Err(error) => return Err(error),
                Ok(live) => {
                    let merged = merge(resource, live, &applied, entry.clone(), options.force)?;
                    self.update_with(resource, namespace, name, merged, Part::Main, &written)
                }
            };
            match outcome {
                Err(ApiError::Conflict { .. } | ApiError::AlreadyExists { .. })
                    if !pinned && attempts < MAX_CONFLICT_RETRIES =>
                {
                    attempts += 1;
                }
                outcome => {
                    return outcome.map(|mut done| {
                        done.warnings.splice(0..0, warnings);
                        done
                    });
                }
            }
        }
    }
}

/// The object after `entry`'s manager applies `applied` to `live`.
///
/// # Errors
/// `ApplyConflict` naming each field another manager owns with a different value, unless
/// `force` (which takes those fields from their managers).
fn merge(
    resource: &Resource,
    mut live: Value,
    applied: &Value,
    entry: Entry,
    force: bool,
) -> ApiResult<Value> {
    let mut entries = managed::entries(&live);
    let conflicts = conflicts(&live, applied, &entry, &entries);
    if !conflicts.is_empty() && !force {
        return Err(conflict_error(&conflicts));
    }
    for (owner, path) in &conflicts {
        if let Some(owner) = entries.iter_mut().find(|e| e.label() == *owner) {
            owner.paths.retain(|p| p != path);
        }
    }
    let previous = entries
        .iter()
        .find(|e| e.manager == entry.manager && e.operation == "Apply")
        .map(|e| e.paths.clone())
        .unwrap_or_default();
    for path in previous.iter().filter(|p| !entry.paths.contains(p)) {
        let shared = entries.iter().any(|e| {
            !(e.manager == entry.manager && e.operation == "Apply") && e.paths.contains(path)
        });
        if !shared {
            fieldset::remove_at(&mut live, path);
        }
    }
    merge_struct(&mut live, applied, managed::message_of(resource));
    if let Some(version) = applied.pointer("/metadata/resourceVersion") {
        live["metadata"]["resourceVersion"] = version.clone();
    }
    managed::replace(&mut entries, entry);
    managed::store(&mut live, entries);
    Ok(live)
}

/// `(manager label, path)` of each applied field another manager owns with another value.
fn conflicts(
    live: &Value,
    applied: &Value,
    entry: &Entry,
    entries: &[Entry],
) -> Vec<(String, Path)> {
    let mut found = Vec::new();
    for other in entries
        .iter()
        .filter(|e| !(e.manager == entry.manager && e.operation == "Apply"))
    {
        for path in entry.paths.iter().filter(|p| other.paths.contains(p)) {
            // A list element both apply is shared; only its fields' values can conflict.
            let leaf = path.last().is_some_and(|e| !e.starts_with("k:"));
            if leaf && fieldset::value_at(live, path) != fieldset::value_at(applied, path) {
                found.push((other.label(), path.clone()));
            }
        }
    }
    found
}

fn conflict_error(conflicts: &[(String, Path)]) -> ApiError {
    let causes = conflicts
        .iter()
        .map(|(owner, path)| Cause {
            field: fieldset::display(path),
            reason: "FieldManagerConflict",
            message: format!("conflict with {owner}"),
        })
        .collect();
    let summary = match conflicts {
        [(owner, path)] => format!("conflict with {owner}: {}", fieldset::display(path)),
        _ => {
            let mut owners: Vec<&String> = conflicts.iter().map(|(o, _)| o).collect();
            owners.sort();
            owners.dedup();
            let mut lines = Vec::new();
            for owner in owners {
                lines.push(format!("conflicts with {owner}:"));
                for (_, path) in conflicts.iter().filter(|(o, _)| o == owner) {
                    lines.push(format!("- {}", fieldset::display(path)));
                }
            }
            lines.join("\n")
        }
    };
    ApiError::ApplyConflict { summary, causes }
}

/// Merges the applied object into `live`: structs and granular maps key by key, keyed lists
/// element by element, sets as a union; scalars and atomic values are replaced.
fn merge_struct(live: &mut Value, applied: &Value, message: Option<&Message>) {
    let Some(fields) = applied.as_object() else {
        *live = applied.clone();
        return;
    };
    if !live.is_object() {
        *live = Value::Object(Default::default());
    }
    let object = live.as_object_mut().expect("made an object above");
    for (key, value) in fields {
        let slot = object.entry(key.clone()).or_insert(Value::Null);
        merge_field(slot, value, message.and_then(|m| m.field(key)));
    }
}

fn merge_field(slot: &mut Value, value: &Value, field: Option<&Field>) {
    let Some(field) = field.filter(|f| !f.atomic()) else {
        *slot = value.clone();
        return;
    };
    match value {
        Value::Object(entries) if field.map => {
            if !slot.is_object() {
                *slot = Value::Object(Default::default());
            }
            let map = slot.as_object_mut().expect("made an object above");
            for (key, entry) in entries {
                let current = map.entry(key.clone()).or_insert(Value::Null);
                match field.message() {
                    Some(values) if entry.is_object() => merge_struct(current, entry, Some(values)),
                    _ => *current = entry.clone(),
                }
            }
        }
        Value::Object(_) => merge_struct(slot, value, field.message()),
        Value::Array(items) => match field.list_keys(false) {
            Some(keys) => merge_list(slot, items, &keys, field.message()),
            None => *slot = value.clone(),
        },
        _ => *slot = value.clone(),
    }
}

fn merge_list(slot: &mut Value, items: &[Value], keys: &[&str], message: Option<&Message>) {
    if !slot.is_array() {
        *slot = Value::Array(Vec::new());
    }
    let list = slot.as_array_mut().expect("made a list above");
    for item in items {
        let key = fieldset::element_key(item, keys);
        let found = list
            .iter_mut()
            .find(|c| fieldset::element_key(c, keys) == key);
        match found {
            Some(current) if !keys.is_empty() => merge_struct(current, item, message),
            Some(_) => {}
            None => list.push(item.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::kinds::DEPLOYMENTS;
    use serde_json::json;

    fn deployment(replicas: i64, labels: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": labels},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "web.wasm"}]}}}})
    }

    fn as_manager(manager: &str, force: bool) -> WriteOptions {
        WriteOptions {
            field_manager: Some(manager.into()),
            force,
            ..Default::default()
        }
    }

    fn apply(api: &Api, body: Value, manager: &str, force: bool) -> ApiResult<Value> {
        let options = as_manager(manager, force);
        let written = api.apply(&DEPLOYMENTS, Some("default"), "web", body, &options)?;
        Ok(written.object)
    }

    fn managers(object: &Value) -> Vec<(String, String)> {
        managed::entries(object)
            .into_iter()
            .map(|e| (e.manager, e.operation))
            .collect()
    }

    #[test]
    fn apply_creates_then_removes_what_the_manager_stops_applying() {
        let (_dir, api) = Api::scratch();
        let created = apply(
            &api,
            deployment(2, json!({"a": "1", "b": "2"})),
            "ci",
            false,
        )
        .unwrap();
        assert_eq!(created["spec"]["replicas"], 2);
        assert_eq!(
            managers(&created),
            [("ci".to_string(), "Apply".to_string())]
        );
        let fields = &created["metadata"]["managedFields"][0]["fieldsV1"];
        assert_eq!(fields["f:spec"]["f:replicas"], json!({}));
        assert_eq!(
            fields["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"],
            json!({".": {}, "f:image": {}, "f:name": {}})
        );
        let again = apply(&api, deployment(3, json!({"a": "1"})), "ci", false).unwrap();
        assert_eq!(again["spec"]["replicas"], 3);
        assert_eq!(
            again["metadata"]["labels"],
            json!({"a": "1"}),
            "b is no longer applied"
        );
    }

    #[test]
    fn a_field_another_manager_set_is_a_conflict_until_forced() {
        let (_dir, api) = Api::scratch();
        apply(&api, deployment(2, json!({"a": "1"})), "ci", false).unwrap();
        let options = as_manager("kubectl-edit", false);
        let patch = json!({"spec": {"replicas": 5}});
        let merge = crate::api::patch::PatchType::Merge;
        api.patch_with(
            &DEPLOYMENTS,
            Some("default"),
            "web",
            &patch,
            merge,
            Part::Main,
            &options,
        )
        .unwrap();
        let error = apply(&api, deployment(3, json!({"a": "1"})), "ci", false).unwrap_err();
        assert_eq!(error.code(), 409);
        assert_eq!(
            error.to_string(),
            "Apply failed with 1 conflict: conflict with \"kubectl-edit\" using apps/v1: .spec.replicas"
        );
        let status = error.to_status();
        assert_eq!(
            status["details"]["causes"][0]["reason"],
            "FieldManagerConflict"
        );
        assert_eq!(status["details"]["causes"][0]["field"], ".spec.replicas");

        let same_value = apply(&api, deployment(5, json!({"a": "1"})), "ci", false).unwrap();
        assert_eq!(
            same_value["spec"]["replicas"], 5,
            "agreeing on a value is no conflict"
        );
        let forced = apply(&api, deployment(3, json!({"a": "1"})), "ci", true).unwrap();
        assert_eq!(forced["spec"]["replicas"], 3);
        let editor = managed::entries(&forced)
            .into_iter()
            .find(|e| e.manager == "kubectl-edit");
        assert!(
            editor.is_none(),
            "the forced field left its old manager: {forced}"
        );
    }

    #[test]
    fn conflicts_with_several_fields_are_listed_by_manager() {
        let conflicts = vec![
            (
                "\"b\"".to_string(),
                vec!["f:spec".to_string(), "f:replicas".to_string()],
            ),
            (
                "\"a\"".to_string(),
                vec![
                    "f:metadata".to_string(),
                    "f:labels".to_string(),
                    "f:x".to_string(),
                ],
            ),
        ];
        assert_eq!(
            conflict_error(&conflicts).to_string(),
            "Apply failed with 2 conflicts: conflicts with \"a\":\n- .metadata.labels.x\nconflicts with \"b\":\n- .spec.replicas"
        );
    }

    #[test]
    fn an_apply_without_a_field_manager_is_refused() {
        let (_dir, api) = Api::scratch();
        let body = deployment(1, json!({}));
        let error = api
            .apply(
                &DEPLOYMENTS,
                Some("default"),
                "web",
                body,
                &WriteOptions::default(),
            )
            .unwrap_err();
        assert_eq!(error.code(), 400);
    }
}
