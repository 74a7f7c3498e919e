//! The kinds' JSON schemas (JSON Schema 2020-12 from k8s-openapi's schemars support, or a
//! registered kind's own) as OpenAPI definitions: `$defs` become `components/schemas` (v3) or
//! `definitions` (v2), a `$ref` with siblings becomes `allOf` as kube-apiserver writes it, and
//! each kind's schema carries `x-kubernetes-group-version-kind`, which `kubectl explain` looks
//! kinds up by.

use serde_json::{Map, Value, json};

use crate::api::kinds::Resource;

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
                definitions
                    .entry(def_name)
                    .or_insert_with(|| convert(def, version));
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
        definitions.insert(name, convert(schema, version));
    }
    definitions
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
