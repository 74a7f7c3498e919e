//! The kinds' JSON schemas (JSON Schema 2020-12 from k8s-openapi's schemars support, or a
//! registered kind's own) as OpenAPI definitions: `$defs` become `components/schemas` (v3) or
//! `definitions` (v2), a `$ref` with siblings becomes `allOf` as kube-apiserver writes it, and
//! each kind's schema carries `x-kubernetes-group-version-kind`, which `kubectl explain` looks
//! kinds up by. Fields get the merge extensions (`x-kubernetes-patch-merge-key`,
//! `x-kubernetes-list-type`, ...) from the type table: kubectl's client-side apply computes
//! its strategic merge patch from them.

use serde_json::{Map, Value, json};

use crate::api::kinds::Resource;
use crate::api::types::Types;

/// Which document the definitions go in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V2,
    V3,
}

impl Version {
    fn ref_prefix(self) -> &'static str {
        match self {
            Version::V2 => "#/definitions/",
            Version::V3 => "#/components/schemas/",
        }
    }
}

/// The name a kind's schema is defined under: its title (`io.k8s.api.core.v1.Pod`), else the
/// reversed group, version and kind (`com.example.v1.Widget`), as Kubernetes names CRDs.
pub fn definition_name(resource: &Resource, schema: &Value) -> String {
    if let Some(title) = schema["title"].as_str() {
        return title.to_string();
    }
    let group: Vec<&str> = match resource.group {
        "" => vec!["core"],
        group => group.split('.').rev().collect(),
    };
    format!("{}.{}.{}", group.join("."), resource.version, resource.kind)
}

/// The definitions of `resources`' schemas and of everything they refer to.
pub fn definitions(resources: &[&Resource], version: Version) -> Map<String, Value> {
    let mut definitions = Map::new();
    for resource in resources {
        let mut schema = resource.strategy.schema();
        let name = definition_name(resource, &schema);
        if let Some(Value::Object(defs)) = schema.as_object_mut().and_then(|s| s.remove("$defs")) {
            for (def_name, def) in defs {
                if !definitions.contains_key(&def_name) {
                    let def = with_merge_extensions(&def_name, convert(def, version));
                    definitions.insert(def_name, def);
                }
            }
        }
        if let Some(root) = schema.as_object_mut() {
            root.remove("$schema");
            root.remove("title");
            root.insert(
                "x-kubernetes-group-version-kind".into(),
                json!([{"group": resource.group, "version": resource.version, "kind": resource.kind}]),
            );
        }
        let schema = with_merge_extensions(&name, convert(schema, version));
        definitions.insert(name, schema);
    }
    definitions
}

/// `definition` (named `io.k8s.api.core.v1.PodSpec`) with the merge extensions of its fields
/// as kube-apiserver publishes them.
fn with_merge_extensions(name: &str, mut definition: Value) -> Value {
    let message_name = format!("k8s.io.{}", name.trim_start_matches("io.k8s."));
    let Some(message) = Types::get().message(&message_name) else {
        return definition;
    };
    if message.atomic {
        definition["x-kubernetes-map-type"] = json!("atomic");
    }
    let Some(properties) = definition["properties"].as_object_mut() else {
        return definition;
    };
    for (property, schema) in properties.iter_mut() {
        let Some(field) = message.field(property) else {
            continue;
        };
        let extensions = [
            (
                "x-kubernetes-patch-strategy",
                field.patch_strategy.clone().map(Value::from),
            ),
            (
                "x-kubernetes-patch-merge-key",
                field.patch_merge_key.clone().map(Value::from),
            ),
            (
                "x-kubernetes-list-type",
                field.list_type.clone().map(Value::from),
            ),
            (
                "x-kubernetes-list-map-keys",
                (!field.list_map_keys.is_empty()).then(|| json!(field.list_map_keys)),
            ),
            (
                "x-kubernetes-map-type",
                field.map_type.clone().map(Value::from),
            ),
        ];
        for (extension, value) in extensions {
            if let (Some(value), Some(schema)) = (value, schema.as_object_mut()) {
                schema.insert(extension.into(), value);
            }
        }
    }
    definition
}

/// Rewrites references for `version` throughout `schema`.
fn convert(schema: Value, version: Version) -> Value {
    match schema {
        Value::Object(mut object) => {
            if let Some(Value::String(reference)) = object.remove("$ref") {
                let name = reference.rsplit('/').next().unwrap_or_default();
                let reference = json!({"$ref": format!("{}{name}", version.ref_prefix())});
                if object.is_empty() || version == Version::V2 {
                    let mut plain = reference;
                    plain
                        .as_object_mut()
                        .expect("an object")
                        .extend(convert_all(object, version));
                    return plain;
                }
                let mut wrapped = convert_all(object, version);
                wrapped.insert("allOf".into(), json!([reference]));
                return Value::Object(wrapped);
            }
            Value::Object(convert_all(object, version))
        }
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|i| convert(i, version)).collect())
        }
        other => other,
    }
}

fn convert_all(object: Map<String, Value>, version: Version) -> Map<String, Value> {
    object
        .into_iter()
        .map(|(key, value)| (key, convert(value, version)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::kinds::{DEPLOYMENTS, PODS};

    #[test]
    fn a_kinds_schema_is_defined_under_its_kubernetes_name_with_its_group_version_kind() {
        let definitions = definitions(&[&PODS, &DEPLOYMENTS], Version::V3);
        let pod = &definitions["io.k8s.api.core.v1.Pod"];
        assert_eq!(
            pod["x-kubernetes-group-version-kind"],
            json!([{"group": "", "version": "v1", "kind": "Pod"}])
        );
        assert_eq!(
            pod["properties"]["spec"]["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.api.core.v1.PodSpec"
        );
        assert!(pod["properties"]["spec"]["description"].is_string());
        assert!(definitions.contains_key("io.k8s.api.core.v1.Container"));
        let containers = &definitions["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
        assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
        assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
        assert_eq!(containers["x-kubernetes-list-type"], "map");
        assert!(definitions.contains_key("io.k8s.api.apps.v1.Deployment"));
        let text = Value::Object(definitions).to_string();
        assert!(!text.contains("#/$defs/"), "every reference is rewritten");
    }

    #[test]
    fn v2_references_point_at_definitions() {
        let definitions = definitions(&[&PODS], Version::V2);
        assert_eq!(
            definitions["io.k8s.api.core.v1.Pod"]["properties"]["spec"]["$ref"],
            "#/definitions/io.k8s.api.core.v1.PodSpec"
        );
    }
}
