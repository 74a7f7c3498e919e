//! `metadata.managedFields`: which manager set which fields, by operation (`Apply` or
//! `Update`) and subresource, each set in `FieldsV1` form.

use serde_json::{Value, json};

use super::fieldset::{self, Path};
use crate::api::Part;
use crate::api::clock;
use crate::api::kinds::{Resource, Subresource};
use crate::api::types::{Message, Types};

/// One `managedFields` entry, its field set read out.
#[derive(Clone, Debug)]
pub struct Entry {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub subresource: Option<String>,
    pub paths: Vec<Path>,
    time: Option<Value>,
}

impl Entry {
    pub fn new(manager: &str, operation: &str, api_version: String, part: Part) -> Self {
        Self {
            manager: manager.to_string(),
            operation: operation.to_string(),
            api_version,
            subresource: (part == Part::Status).then(|| "status".to_string()),
            paths: Vec::new(),
            time: None,
        }
    }

    fn same_writer(&self, other: &Entry) -> bool {
        (&self.manager, &self.operation, &self.subresource)
            == (&other.manager, &other.operation, &other.subresource)
    }

    /// How a conflict names this manager: `"kubectl" using apps/v1` for an update.
    pub fn label(&self) -> String {
        let mut label = format!("{:?}", self.manager);
        if let Some(subresource) = &self.subresource {
            label.push_str(&format!(" with subresource {subresource:?}"));
        }
        if self.operation == "Update" {
            label.push_str(&format!(" using {}", self.api_version));
        }
        label
    }
}

/// The entries of `object`.
pub fn entries(object: &Value) -> Vec<Entry> {
    let listed = object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array);
    listed
        .into_iter()
        .flatten()
        .map(|entry| {
            let text = |field: &str| entry[field].as_str().unwrap_or_default().to_string();
            Entry {
                manager: text("manager"),
                operation: text("operation"),
                api_version: text("apiVersion"),
                subresource: entry["subresource"].as_str().map(str::to_string),
                paths: fieldset::from_fields_v1(&entry["fieldsV1"]),
                time: entry.get("time").cloned(),
            }
        })
        .collect()
}

/// Writes `entries` into `object`, each pruned to the fields the object still has; entries
/// left empty go.
pub fn store(object: &mut Value, mut entries: Vec<Entry>) {
    for entry in &mut entries {
        entry
            .paths
            .retain(|path| fieldset::value_at(object, path).is_some());
    }
    entries.retain(|entry| !entry.paths.is_empty());
    let listed: Vec<Value> = entries
        .into_iter()
        .map(|entry| {
            let mut value = json!({
                "manager": entry.manager,
                "operation": entry.operation,
                "apiVersion": entry.api_version,
                "time": entry.time.unwrap_or_else(|| json!(clock::now())),
                "fieldsType": "FieldsV1",
                "fieldsV1": fieldset::to_fields_v1(&entry.paths),
            });
            if let Some(subresource) = entry.subresource {
                value["subresource"] = json!(subresource);
            }
            value
        })
        .collect();
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.insert("managedFields".into(), Value::Array(listed));
    }
}

/// Puts `entry` in the place of the entry of the same writer (or last), stamped now.
pub fn replace(entries: &mut Vec<Entry>, mut entry: Entry) {
    entry.time = None;
    match entries.iter_mut().find(|e| e.same_writer(&entry)) {
        Some(slot) => *slot = entry,
        None => entries.push(entry),
    }
}

/// The message of `resource`'s objects, when the type table has one.
pub fn message_of(resource: &Resource) -> Option<&'static Message> {
    let types = Types::get();
    types
        .of_resource(resource)
        .and_then(|name| types.message(name))
}

/// The paths a write of `part` may own: the status for a status write, the rest otherwise
/// (the whole object for a kind without a status subresource).
pub fn paths_of_part(resource: &Resource, object: &Value, part: Part) -> Vec<Path> {
    let status = |path: &Path| path.first().map(String::as_str) == Some("f:status");
    let split = resource.serves(Subresource::Status);
    fieldset::of_object(object, message_of(resource))
        .into_iter()
        .filter(|path| match part {
            Part::Status => status(path),
            Part::Main => !split || !status(path),
        })
        .collect()
}

/// Records an `Update` by `manager` turning `old` (none on a create) into `new`: the fields it
/// changed become its own and no other manager's. Nothing changes when nothing changed.
pub fn record_update(
    resource: &Resource,
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    part: Part,
) {
    let changed: Vec<Path> = paths_of_part(resource, new, part)
        .into_iter()
        .filter(|path| {
            let before = old.and_then(|o| fieldset::value_at(o, path));
            before != fieldset::value_at(new, path)
        })
        .collect();
    if changed.is_empty() {
        return;
    }
    let mut entries = entries(new);
    for entry in &mut entries {
        entry.paths.retain(|path| !changed.contains(path));
    }
    let mut own = Entry::new(manager, "Update", resource.api_version(), part);
    if let Some(previous) = entries.iter().find(|e| e.same_writer(&own)) {
        own.paths = previous.paths.clone();
    }
    own.paths.extend(changed);
    replace(&mut entries, own);
    store(new, entries);
}
