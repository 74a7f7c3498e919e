//! What the Kubernetes types say about each field beyond its JSON shape: its protobuf tag,
//! and how lists, maps and structs merge (strategic merge patch, server-side apply).
//!
//! The facts come from one generated table, `types.json`, made from the `k8s-pb` crate's
//! prost types (tags, and the `+patchMergeKey`/`+patchStrategy`/`+listType`/`+listMapKey`/
//! `+mapType`/`+structType` markers its generator copied from the Kubernetes sources) with
//! JSON names taken from the k8s-openapi schemas. `generate.rs` remakes it; its test fails
//! when the table no longer matches those crates.

#[cfg(test)]
mod generate;

use std::collections::HashMap;
use std::sync::LazyLock;

use serde::Deserialize;

use super::kinds::Resource;

/// The table, parsed once.
static TYPES: LazyLock<Types> = LazyLock::new(|| {
    serde_json::from_str(include_str!("types.json")).expect("types.json is generated valid")
});

/// Every message of the table by its protobuf name (`k8s.io.api.core.v1.Pod`).
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct Types {
    messages: HashMap<String, Message>,
}

/// One protobuf message: a Kubernetes struct.
#[derive(Debug, Deserialize, serde::Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    /// `+structType=atomic`: replaced whole by a merge, owned whole by an apply.
    #[serde(default, skip_serializing_if = "is_false")]
    pub atomic: bool,
    pub fields: Vec<Field>,
}

/// One field of a message.
#[derive(Clone, Debug, Deserialize, serde::Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Field {
    /// The JSON name.
    pub name: String,
    pub tag: u32,
    /// A scalar (`string`, `bool`, `int32`, `int64`, `double`, `bytes`) or a message name.
    #[serde(rename = "type")]
    pub ty: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub repeated: bool,
    /// A `map<string, ty>`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub map: bool,
    /// The message's fields appear in the parent's JSON object (Go's `json:",inline"`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub inline: bool,
    /// `merge`, `replace`, `retainKeys` or `merge,retainKeys`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch_strategy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch_merge_key: Option<String>,
    /// `atomic`, `set` or `map`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_type: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub list_map_keys: Vec<String>,
    /// `atomic` or `granular`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map_type: Option<String>,
    /// `atomic` on the field itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub struct_type: Option<String>,
}

fn is_false(value: &bool) -> bool {
    !value
}

/// The scalar types; anything else in `Field::ty` names a message.
const SCALARS: &[&str] = &["string", "bool", "int32", "int64", "double", "bytes"];

impl Types {
    /// The one table compiled into the binary.
    pub fn get() -> &'static Types {
        &TYPES
    }

    /// The message named `name`.
    pub fn message(&self, name: &str) -> Option<&Message> {
        self.messages.get(name)
    }

    /// The message of a served kind, or `None` for a kind Kubernetes has no protobuf type for
    /// (a custom resource).
    pub fn of_resource(&self, resource: &Resource) -> Option<&'static str> {
        self.of_kind(&resource.api_version(), resource.kind)
    }

    /// The message name of `kind` in `api_version`: a type of an API group, or one of the
    /// meta types every group shares (`DeleteOptions`).
    pub fn of_kind(&self, api_version: &str, kind: &str) -> Option<&'static str> {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let package = group.split('.').next().filter(|g| !g.is_empty());
        let package = package.unwrap_or("core");
        let candidates = [
            format!("k8s.io.api.{package}.{version}.{kind}"),
            // CustomResourceDefinitions live in apiextensions-apiserver's own tree.
            format!("k8s.io.apiextensions-apiserver.pkg.apis.{package}.{version}.{kind}"),
            format!("k8s.io.apimachinery.pkg.apis.meta.{version}.{kind}"),
        ];
        candidates
            .into_iter()
            .find_map(|name| TYPES.messages.get_key_value(&name).map(|(k, _)| k.as_str()))
    }
}

impl Message {
    /// The field with JSON name `name`, looking into inline fields.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find_map(|field| {
            if field.inline {
                Types::get().message(&field.ty)?.field(name)
            } else {
                (field.name == name).then_some(field)
            }
        })
    }

    /// The field with protobuf tag `tag`.
    pub fn by_tag(&self, tag: u32) -> Option<&Field> {
        self.fields.iter().find(|f| f.tag == tag)
    }
}

impl Field {
    /// The message of the field's values, when they are messages.
    pub fn message(&self) -> Option<&'static Message> {
        if SCALARS.contains(&self.ty.as_str()) {
            None
        } else {
            Types::get().message(&self.ty)
        }
    }

    /// Whether a list field is merged element by element: by a key (`Some(keys)`), or as a
    /// set of scalars (`Some([])`); `None` for a list replaced whole. Server-side apply reads
    /// `listType`, strategic merge patch `patchStrategy`; `strategic` picks which.
    pub fn list_keys(&self, strategic: bool) -> Option<Vec<&str>> {
        if strategic {
            let merge = self
                .patch_strategy
                .as_deref()
                .is_some_and(|s| s.split(',').any(|s| s == "merge"));
            return merge.then(|| self.patch_merge_key.iter().map(String::as_str).collect());
        }
        match self.list_type.as_deref() {
            Some("map") => Some(self.list_map_keys.iter().map(String::as_str).collect()),
            Some("set") => Some(Vec::new()),
            _ => None,
        }
    }

    /// Whether a map or struct field is one value to a merge (`+mapType=atomic`,
    /// `+structType=atomic` on the field or its message).
    pub fn atomic(&self) -> bool {
        self.map_type.as_deref() == Some("atomic")
            || self.struct_type.as_deref() == Some("atomic")
            || self.message().is_some_and(|m| m.atomic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::kinds::{BUILT_IN, DEPLOYMENTS, PODS};

    #[test]
    fn every_built_in_kind_has_a_message() {
        for resource in BUILT_IN {
            let name = Types::get().of_resource(resource);
            assert!(name.is_some(), "{} has no protobuf message", resource.kind);
        }
        assert_eq!(
            Types::get().of_kind("apps/v1", "DeleteOptions"),
            Some("k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions")
        );
        assert_eq!(Types::get().of_kind("example.com/v1", "Widget"), None);
    }

    #[test]
    fn containers_merge_by_name_and_ports_by_port_and_protocol() {
        let types = Types::get();
        let pod = types.message(types.of_resource(&PODS).unwrap()).unwrap();
        let spec = pod.field("spec").unwrap().message().unwrap();
        let containers = spec.field("containers").unwrap();
        assert_eq!(containers.list_keys(true), Some(vec!["name"]));
        assert_eq!(containers.list_keys(false), Some(vec!["name"]));
        let ports = containers.message().unwrap().field("ports").unwrap();
        assert_eq!(ports.list_keys(true), Some(vec!["containerPort"]));
        assert_eq!(
            ports.list_keys(false),
            Some(vec!["containerPort", "protocol"])
        );
        let args = containers.message().unwrap().field("args").unwrap();
        assert_eq!(args.list_keys(true), None);
    }

    #[test]
    fn volume_sources_are_inline_and_selectors_atomic() {
        let types = Types::get();
        let volume = types.message("k8s.io.api.core.v1.Volume").unwrap();
        assert_eq!(volume.field("emptyDir").unwrap().name, "emptyDir");
        let deployment = types.message(types.of_resource(&DEPLOYMENTS).unwrap());
        let spec = deployment
            .unwrap()
            .field("spec")
            .unwrap()
            .message()
            .unwrap();
        assert!(spec.field("selector").unwrap().atomic());
        assert!(!spec.field("template").unwrap().atomic());
    }
}
