//! Turning a pod's container spec into what the sandbox runs: argv, env, mounts and limits.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, Pod};

use super::sandbox::Mount;
use crate::api::quantity;

/// The host file a container's `image` names: a path (relative to the node's working
/// directory) or a `file://` URL.
pub fn image_path(image: &str) -> PathBuf {
    PathBuf::from(image.strip_prefix("file://").unwrap_or(image))
}

/// The directory backing one `emptyDir` volume of one pod.
pub fn volume_dir(pod_dir: &Path, volume: &str) -> PathBuf {
    pod_dir.join("volumes").join(volume)
}

/// Environment variables in order, with `valueFrom.fieldRef` resolved and `$(VAR)` expanded.
pub fn environment(
    pod: &Pod,
    container: &Container,
    pod_ip: &str,
    host_ip: &str,
) -> Vec<(String, String)> {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let mut resolved: Vec<(String, String)> = Vec::new();
    for var in container.env.iter().flatten() {
        let field = var
            .value_from
            .as_ref()
            .and_then(|f| f.field_ref.as_ref())
            .map(|f| f.field_path.as_str());
        let value = match field {
            Some("metadata.name") => meta.name.clone().unwrap_or_default(),
            Some("metadata.namespace") => meta.namespace.clone().unwrap_or_default(),
            Some("metadata.uid") => meta.uid.clone().unwrap_or_default(),
            Some("spec.nodeName") => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
            Some("spec.serviceAccountName") => spec
                .and_then(|s| s.service_account_name.clone())
                .unwrap_or_default(),
            Some("status.podIP") => pod_ip.to_string(),
            Some("status.hostIP") => host_ip.to_string(),
            _ => {
                let known: HashMap<&str, &str> = resolved
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                expand(var.value.as_deref().unwrap_or_default(), &known)
            }
        };
        resolved.retain(|(name, _)| name != &var.name);
        resolved.push((var.name.clone(), value));
    }
    resolved
}

/// The guest's arguments after argv[0]: `command` then `args`, with `$(VAR)` expanded.
pub fn arguments(container: &Container, env: &[(String, String)]) -> Vec<String> {
    let known: HashMap<&str, &str> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    container
        .command
        .iter()
        .flatten()
        .chain(container.args.iter().flatten())
        .map(|arg| expand(arg, &known))
        .collect()
}

/// Kubernetes' `$(VAR)` expansion: known variables are replaced, `$$` escapes, the rest stays.
fn expand(text: &str, vars: &HashMap<&str, &str>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$$") {
            out.push('$');
            rest = after;
        } else if let Some(reference) = tail.strip_prefix("$(").and_then(|t| t.split_once(')')) {
            let (name, after) = reference;
            match vars.get(name) {
                Some(value) => out.push_str(value),
                None => out.push_str(&tail[..name.len() + 3]),
            }
            rest = after;
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// The container's `volumeMounts` as host directories.
pub fn mounts(pod_dir: &Path, container: &Container) -> Vec<Mount> {
    container
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| Mount {
            host_path: volume_dir(pod_dir, &m.name),
            guest_path: m.mount_path.clone(),
            read_only: m.read_only.unwrap_or(false),
        })
        .collect()
}

/// `resources.limits.memory` in bytes and `resources.limits.cpu` in millicores.
pub fn limits(container: &Container) -> (Option<u64>, Option<u64>) {
    let limits = container.resources.as_ref().and_then(|r| r.limits.as_ref());
    let memory = limits
        .and_then(|l| l.get("memory"))
        .and_then(|q| quantity::bytes(&q.0));
    let cpu = limits
        .and_then(|l| l.get("cpu"))
        .and_then(|q| quantity::millicores(&q.0));
    (memory, cpu)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn field_refs_resolve_and_references_expand() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"containers": [{"name": "c", "image": "x.wasm",
                "env": [
                    {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "GREETING", "value": "hi $(POD) in $(MISSING) $$(POD)"},
                ],
                "command": ["serve"], "args": ["--name=$(POD)"]}]}
        }))
        .unwrap();
        let container = &pod.spec.as_ref().unwrap().containers[0];
        let env = environment(&pod, container, "10.0.0.1", "127.0.0.1");
        assert_eq!(env[0], ("POD".into(), "web".into()));
        assert_eq!(env[1].1, "hi web in $(MISSING) $(POD)");
        assert_eq!(arguments(container, &env), ["serve", "--name=web"]);
    }

    #[test]
    fn images_may_be_file_urls() {
        assert_eq!(image_path("file:///a/b.wasm"), PathBuf::from("/a/b.wasm"));
        assert_eq!(image_path("b.wasm"), PathBuf::from("b.wasm"));
    }
}
