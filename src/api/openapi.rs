//! OpenAPI v3 discovery (`/openapi/v3`, `/openapi/v3/api/v1`), just enough for kubectl: it
//! reads the PATCH operation of each kind to learn that the server validates fields itself
//! (`fieldValidation`) and which patch types it takes.
//!
//! The documents describe paths and operations but carry no object schemas: kubectl then
//! computes apply patches from its built-in types, and `kubectl explain` has nothing to show.

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
    let mut paths = Map::new();
    for resource in served
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let base = prefix(group, version);
        let scope = if resource.namespaced {
            format!("{base}/namespaces/{{namespace}}")
        } else {
            base.clone()
        };
        paths.insert(
            format!("{scope}/{}/{{name}}", resource.plural),
            object_path(resource),
        );
        paths.insert(
            format!("{scope}/{}", resource.plural),
            collection_path(resource),
        );
        if resource.namespaced {
            paths.insert(
                format!("{base}/{}", resource.plural),
                json!({"get": operation(resource, "list", "ListForAllNamespaces", vec![])}),
            );
        }
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": format!("v{major}.{minor}.0")},
        "paths": paths,
        "components": {"schemas": {}},
    })
}

fn object_path(resource: &Resource) -> Value {
    let write = vec![query("fieldManager"), query("fieldValidation")];
    let mut patch = operation(resource, "patch", "", write.clone());
    let content: Map<String, Value> = MEDIA_TYPES
        .iter()
        .map(|(t, _)| (t.to_string(), json!({"schema": {"type": "object"}})))
        .collect();
    patch["requestBody"] = json!({"content": content, "required": true});
    let mut path = json!({
        "get": operation(resource, "get", "", vec![]),
        "put": operation(resource, "put", "", write),
        "patch": patch,
        "delete": operation(resource, "delete", "", vec![query("gracePeriodSeconds")]),
    });
    path["parameters"] = json!(path_parameters(resource, true));
    path
}

fn collection_path(resource: &Resource) -> Value {
    let list_params = [
        "labelSelector",
        "fieldSelector",
        "resourceVersion",
        "watch",
        "timeoutSeconds",
    ];
    let mut path = json!({
        "get": operation(resource, "list", "", list_params.iter().map(|p| query(p)).collect()),
        "post": operation(resource, "post", "", vec![query("fieldManager"), query("fieldValidation")]),
        "delete": operation(resource, "deletecollection", "", vec![query("labelSelector"), query("fieldSelector")]),
    });
    path["parameters"] = json!(path_parameters(resource, false));
    path
}

/// One operation, with the extensions kubectl matches kinds by.
fn operation(resource: &Resource, action: &str, suffix: &str, parameters: Vec<Value>) -> Value {
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
    json!({
        "operationId": format!("{verb}{}{version}{scope}{kind}{suffix}", capitalize(group)),
        "parameters": parameters,
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": resource.group, "version": resource.version, "kind": kind},
    })
}

fn path_parameters(resource: &Resource, named: bool) -> Vec<Value> {
    let mut parameters = Vec::new();
    if named {
        parameters.push(
            json!({"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}),
        );
    }
    if resource.namespaced {
        parameters.push(json!({"name": "namespace", "in": "path", "required": true, "schema": {"type": "string"}}));
    }
    parameters
}

fn query(name: &str) -> Value {
    json!({"name": name, "in": "query", "schema": {"type": "string"}})
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
