//! Discovery documents (`/api`, `/apis`, `/api/v1`, `/version`) that clients read before anything else.

use serde_json::{Value, json};
use sha2::Digest as _;

use super::kinds::Resource;

/// kube-apiserver's opaque `storageVersionHash`: the first 8 bytes of the SHA-256 of the
/// storage group/version/kind, base64-encoded (clients compare it to notice a migration).
fn storage_version_hash(resource: &Resource) -> String {
    use base64::Engine as _;
    let gvk = format!("{}/{}/{}", resource.group, resource.version, resource.kind);
    let digest = sha2::Sha256::digest(gvk.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(&digest[..8])
}

/// What every served kind allows.
const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// The Kubernetes release whose API we follow.
pub const KUBERNETES_VERSION: (&str, &str) = ("1", "37");

pub fn version() -> Value {
    let (major, minor) = KUBERNETES_VERSION;
    json!({
        "major": major,
        "minor": minor,
        "gitVersion": format!("v{major}.{minor}.0-wasmkube.{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "",
        "goVersion": "",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH),
    })
}

pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

/// The named groups (everything outside the core group) of the `served` kinds.
pub fn api_groups(served: &[&Resource]) -> Value {
    let mut groups: Vec<(&str, &str)> = served
        .iter()
        .filter(|r| !r.group.is_empty())
        .map(|r| (r.group, r.version))
        .collect();
    groups.dedup();
    json!({
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": groups.iter().map(|(group, version)| group_entry(group, version)).collect::<Vec<_>>(),
    })
}

fn group_entry(group: &str, version: &str) -> Value {
    let version = json!({"groupVersion": format!("{group}/{version}"), "version": version});
    json!({"name": group, "versions": [version], "preferredVersion": version})
}

pub fn api_group(served: &[&Resource], group: &str) -> Option<Value> {
    let resource = served.iter().find(|r| r.group == group)?;
    let mut entry = group_entry(group, resource.version);
    entry["kind"] = json!("APIGroup");
    entry["apiVersion"] = json!("v1");
    Some(entry)
}

/// The APIResourceList of one group version, or `None` when nothing is served there.
pub fn resource_list(served: &[&Resource], group: &str, version: &str) -> Option<Value> {
    let served: Vec<&&Resource> = served
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    if served.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for resource in served {
        let verbs: Vec<&str> = VERBS
            .iter()
            .copied()
            .filter(|v| *v != "deletecollection" || resource.strategy.deletes_collections())
            .collect();
        resources.push(json!({
            "name": resource.plural,
            "singularName": resource.singular,
            "namespaced": resource.namespaced,
            "kind": resource.kind,
            "verbs": verbs,
            "shortNames": resource.short_names,
            "categories": resource.categories,
            "storageVersionHash": storage_version_hash(resource),
        }));
        for subresource in resource.subresources {
            let info = subresource.info();
            let mut entry = json!({
                "name": format!("{}/{}", resource.plural, info.name),
                "singularName": "",
                "namespaced": resource.namespaced,
                "kind": resource.kind,
                "verbs": info.verbs,
            });
            // A kind of another group version (`pods/eviction` is a `policy/v1` Eviction);
            // clients such as `kubectl drain` read that group version here.
            if let Some((group, version, kind)) = info.group_version_kind {
                entry["kind"] = json!(kind);
                if !group.is_empty() {
                    entry["group"] = json!(group);
                    entry["version"] = json!(version);
                }
            }
            resources.push(entry);
        }
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}
