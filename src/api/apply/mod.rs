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
            let leaf = path.last().is_some_and(|e| e != ".");
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
