//! OpenAPI documents: v3 per group-version (`/openapi/v3`, `/openapi/v3/api/v1`) and v2 for
//! the whole API (`/openapi/v2`), with the full schema of every served kind. kubectl reads a
//! kind's PATCH operation to learn that the server validates fields itself
//! (`fieldValidation`), its schema for `kubectl explain` and client-side validation.

mod proto_v2;
mod schemas;

pub use proto_v2::{
    MEDIA_TYPE as V2_PROTOBUF, encode as v2_protobuf, wanted as v2_protobuf_wanted,
};
pub use schemas::Version;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::discovery::KUBERNETES_VERSION;
use super::kinds::Resource;
use super::patch::MEDIA_TYPES;

/// `GET /openapi/v3`: each served group-version and where its document lives, with a hash
/// of the document in the URL as kube-apiserver gives it.
pub fn index(served: &[&Resource]) -> Value {
    let mut paths = Map::new();
    for (group, version) in group_versions(served) {
        let path = prefix(group, version).trim_start_matches('/').to_string();
        let hash = hash(&document(served, group, version));
        paths.insert(
            path.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={hash}")}),
        );
    }
    json!({"paths": paths})
}

/// `GET /openapi/v3/{api/v1 | apis/GROUP/VERSION}`, or `None` when nothing is served there.
pub fn group_version(served: &[&Resource], segments: &[&str]) -> Option<Value> {
    let (group, version) = match segments {
        ["api", version] => ("", *version),
        ["apis", group, version] => (*group, *version),
        _ => return None,
    };
    group_versions(served)
        .into_iter()
        .any(|gv| gv == (group, version))
        .then(|| document(served, group, version))
}

fn group_versions(served: &[&Resource]) -> Vec<(&'static str, &'static str)> {
    let mut versions: Vec<(&str, &str)> = served.iter().map(|r| (r.group, r.version)).collect();
    versions.sort_unstable();
    versions.dedup();
    versions
}

fn prefix(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    }
}

fn hash(document: &Value) -> String {
    hex::encode_upper(Sha256::digest(document.to_string().as_bytes()))
}

fn document(served: &[&Resource], group: &str, version: &str) -> Value {
    let (major, minor) = KUBERNETES_VERSION;
    let here: Vec<&Resource> = served
        .iter()
        .copied()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": format!("v{major}.{minor}.0")},
        "paths": paths(&here, Version::V3),
        "components": {"schemas": schemas::definitions(&here, Version::V3)},
    })
}

/// `GET /openapi/v2`: every served kind in one Swagger 2.0 document.
pub fn v2_document(served: &[&Resource]) -> Value {
    let (major, minor) = KUBERNETES_VERSION;
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": format!("v{major}.{minor}.0")},
        "paths": paths(served, Version::V2),
        "definitions": schemas::definitions(served, Version::V2),
    })
}

fn paths(resources: &[&Resource], version: Version) -> Map<String, Value> {
    let mut paths = Map::new();
    for resource in resources {
        let base = prefix(resource.group, resource.version);
        let scope = if resource.namespaced {
            format!("{base}/namespaces/{{namespace}}")
        } else {
            base.clone()
        };
        let op = Op { resource, version };
        paths.insert(
            format!("{scope}/{}/{{name}}", resource.plural),
            op.object_path(),
        );
        paths.insert(format!("{scope}/{}", resource.plural), op.collection_path());
        if resource.namespaced {
            paths.insert(
                format!("{base}/{}", resource.plural),
                json!({"get": op.operation("list", "ListForAllNamespaces", vec![])}),
            );
        }
    }
    paths
}

/// The operations of one kind in one document version.
struct Op<'a> {
    resource: &'a Resource,
    version: Version,
}

impl Op<'_> {
    fn object_path(&self) -> Value {
        let write = vec![self.query("fieldManager"), self.query("fieldValidation")];
        let mut patch = self.operation("patch", "", write.clone());
        match self.version {
            Version::V3 => {
                let content: Map<String, Value> = MEDIA_TYPES
                    .iter()
                    .map(|(t, _)| (t.to_string(), json!({"schema": {"type": "object"}})))
                    .collect();
                patch["requestBody"] = json!({"content": content, "required": true});
            }
            Version::V2 => {
                let types: Vec<&str> = MEDIA_TYPES.iter().map(|(t, _)| *t).collect();
                patch["consumes"] = json!(types);
            }
        }
        let grace = vec![self.query("gracePeriodSeconds")];
        let mut path = json!({
            "get": self.operation("get", "", vec![]),
            "put": self.operation("put", "", write),
            "patch": patch,
            "delete": self.operation("delete", "", grace),
        });
        path["parameters"] = json!(self.path_parameters(true));
        path
    }

    fn collection_path(&self) -> Value {
        let list = [
            "labelSelector",
            "fieldSelector",
            "resourceVersion",
            "watch",
            "timeoutSeconds",
        ];
        let write = ["fieldManager", "fieldValidation"];
        let selectors = ["labelSelector", "fieldSelector"];
        let queries = |names: &[&str]| names.iter().map(|n| self.query(n)).collect();
        let mut path = json!({
            "get": self.operation("list", "", queries(&list)),
            "post": self.operation("post", "", queries(&write)),
        });
        if self.resource.strategy.deletes_collections() {
            path["delete"] = self.operation("deletecollection", "", queries(&selectors));
        }
        path["parameters"] = json!(self.path_parameters(false));
        path
    }

    /// One operation, with the extensions kubectl matches kinds by.
    fn operation(&self, action: &str, suffix: &str, parameters: Vec<Value>) -> Value {
        let resource = self.resource;
        let verb = match action {
            "post" => "create",
            "put" => "replace",
            "get" => "read",
            other => other,
        };
        let scope = if resource.namespaced && suffix.is_empty() {
            "Namespaced"
        } else {
            ""
        };
        let group = if resource.group.is_empty() {
            "Core"
        } else {
            resource.group
        };
        let version = capitalize(resource.version);
        let kind = resource.kind;
        let schema = if action == "list" || action == "deletecollection" {
            json!({"type": "object"})
        } else {
            let name = schemas::definition_name(resource, &resource.strategy.schema());
            let prefix = match self.version {
                Version::V2 => "#/definitions/",
                Version::V3 => "#/components/schemas/",
            };
            json!({"$ref": format!("{prefix}{name}")})
        };
        let ok = match self.version {
            Version::V3 => {
                json!({"description": "OK", "content": {"application/json": {"schema": schema}}})
            }
            Version::V2 => json!({"description": "OK", "schema": schema}),
        };
        json!({
            "operationId": format!("{verb}{}{version}{scope}{kind}{suffix}", capitalize(group)),
            "parameters": parameters,
            "responses": {"200": ok},
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": {"group": resource.group, "version": resource.version, "kind": kind},
        })
    }

    fn path_parameters(&self, named: bool) -> Vec<Value> {
        let mut parameters = Vec::new();
        if named {
            parameters.push(self.parameter("name", "path"));
        }
        if self.resource.namespaced {
            parameters.push(self.parameter("namespace", "path"));
        }
        parameters
    }

    fn query(&self, name: &str) -> Value {
        self.parameter(name, "query")
    }

    fn parameter(&self, name: &str, place: &str) -> Value {
        let mut parameter = json!({"name": name, "in": place});
        if place == "path" {
            parameter["required"] = json!(true);
        }
        match self.version {
            Version::V3 => parameter["schema"] = json!({"type": "string"}),
            Version::V2 => parameter["type"] = json!("string"),
        }
        parameter
    }
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::kinds::BUILT_IN;

    #[test]
    fn the_index_points_at_each_group_version_with_a_hash() {
        let index = index(BUILT_IN);
        let url = index["paths"]["api/v1"]["serverRelativeURL"]
            .as_str()
            .unwrap();
        assert!(url.starts_with("/openapi/v3/api/v1?hash="), "{url}");
        assert_eq!(url.len(), "/openapi/v3/api/v1?hash=".len() + 64);
    }

    /// What kubectl checks before it leaves field validation to the server.
    #[test]
    fn every_kind_has_a_patch_operation_that_takes_field_validation() {
        let document = group_version(BUILT_IN, &["api", "v1"]).unwrap();
        let paths = document["paths"].as_object().unwrap();
        for resource in BUILT_IN.iter().filter(|r| r.group.is_empty()) {
            let patch = paths
                .values()
                .filter_map(|p| p.get("patch"))
                .find(|op| op["x-kubernetes-group-version-kind"]["kind"] == resource.kind)
                .unwrap_or_else(|| panic!("no PATCH for {}", resource.kind));
            assert_eq!(
                patch["x-kubernetes-group-version-kind"],
                json!({"group": "", "version": "v1", "kind": resource.kind})
            );
            assert!(
                patch["parameters"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|p| p["name"] == "fieldValidation" && p["in"] == "query")
            );
            assert!(
                patch["requestBody"]["content"]["application/strategic-merge-patch+json"]
                    .is_object()
            );
        }
        assert!(paths.contains_key("/api/v1/namespaces/{namespace}/pods/{name}"));
        assert!(paths.contains_key("/api/v1/nodes/{name}"));
    }

    #[test]
    fn unserved_group_versions_have_no_document() {
        assert!(group_version(BUILT_IN, &["api", "v2"]).is_none());
        assert!(group_version(BUILT_IN, &["apis", "example.com", "v1"]).is_none());
    }
}
