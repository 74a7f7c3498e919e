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

/// The container's `volumeMounts` as host directories: the volume's directory, or the
/// directory `subPath` (or `subPathExpr` with `$(VAR)` expanded from `env`) names inside it,
/// created if missing as the kubelet does. Blocking: it touches the disk.
///
/// # Errors
/// Kubernetes' message when a sub path is absolute, climbs out with `..`, or passes through a
/// symlink (a guest of the pod could have planted one pointing anywhere on the host).
pub fn mounts(
    pod_dir: &Path,
    container: &Container,
    env: &[(String, String)],
) -> Result<Vec<Mount>, String> {
    let known: HashMap<&str, &str> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut mounts = Vec::new();
    for mount in container.volume_mounts.iter().flatten() {
        let volume = volume_dir(pod_dir, &mount.name);
        let sub_path = match (&mount.sub_path, &mount.sub_path_expr) {
            (Some(path), _) if !path.is_empty() => Some(path.clone()),
            (_, Some(expr)) if !expr.is_empty() => Some(expand(expr, &known)),
            _ => None,
        };
        let host_path = match sub_path {
            Some(sub_path) => sub_path_dir(&volume, &sub_path).map_err(|reason| {
                format!(
                    "failed to prepare subPath for volumeMount \"{}\" of container \"{}\": {reason}",
                    mount.name, container.name
                )
            })?,
            None => volume,
        };
        mounts.push(Mount {
            host_path,
            guest_path: mount.mount_path.clone(),
            read_only: mount.read_only.unwrap_or(false),
        });
    }
    Ok(mounts)
}

/// The directory `sub_path` names under `volume`, created component by component; no
/// component may be `..`, absolute, or a symlink, and the result must still lie in `volume`.
fn sub_path_dir(volume: &Path, sub_path: &str) -> Result<PathBuf, String> {
    if sub_path.starts_with('/') {
        return Err(format!("subPath {sub_path:?} must be a relative path"));
    }
    let mut dir = volume.to_path_buf();
    for part in sub_path.split('/').filter(|p| !p.is_empty() && *p != ".") {
        if part == ".." {
            return Err(format!("subPath {sub_path:?} must not contain '..'"));
        }
        dir.push(part);
        match std::fs::symlink_metadata(&dir) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(format!("subPath {sub_path:?} passes through a symlink"));
            }
            Ok(meta) if !meta.is_dir() => {
                return Err(format!("subPath {sub_path:?} is not a directory"));
            }
            Ok(_) => {}
            Err(_) => super::disk::create_private_dir(&dir)
                .map_err(|e| format!("cannot create subPath {sub_path:?}: {e}"))?,
        }
    }
    let inside = dir
        .canonicalize()
        .ok()
        .zip(volume.canonicalize().ok())
        .is_some_and(|(dir, volume)| dir.starts_with(volume));
    if !inside {
        return Err(format!("subPath {sub_path:?} leads out of its volume"));
    }
    Ok(dir)
}

/// The container's TCP `containerPort`s, each once.
pub fn tcp_ports(container: &Container) -> Vec<u16> {
    let mut ports: Vec<u16> = container
        .ports
        .iter()
        .flatten()
        .filter(|p| p.protocol.as_deref().unwrap_or("TCP") == "TCP")
        .filter_map(|p| u16::try_from(p.container_port).ok())
        .filter(|p| *p != 0)
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
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
    use serde_json::{Value, json};

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

    fn container_mounting(sub_path: Value) -> Container {
        let mut mount = json!({"name": "data", "mountPath": "/data"});
        mount
            .as_object_mut()
            .unwrap()
            .extend(sub_path.as_object().unwrap().clone());
        serde_json::from_value(json!({"name": "c", "volumeMounts": [mount]})).unwrap()
    }

    #[test]
    fn a_sub_path_mounts_a_directory_inside_the_volume_created_on_demand() {
        let pod_dir = tempfile::tempdir().unwrap();
        let container = container_mounting(json!({"subPath": "a/b"}));
        let mounts = mounts(pod_dir.path(), &container, &[]).unwrap();
        let expected = volume_dir(pod_dir.path(), "data").join("a/b");
        assert_eq!(mounts[0].host_path, expected);
        assert!(expected.is_dir());
    }

    #[test]
    fn a_sub_path_expr_expands_the_containers_environment() {
        let pod_dir = tempfile::tempdir().unwrap();
        let container = container_mounting(json!({"subPathExpr": "logs/$(POD)"}));
        let env = [("POD".to_string(), "web-1".to_string())];
        let mounts = mounts(pod_dir.path(), &container, &env).unwrap();
        assert!(mounts[0].host_path.ends_with("volumes/data/logs/web-1"));
    }

    #[test]
    fn sub_paths_that_leave_the_volume_are_refused() {
        let pod_dir = tempfile::tempdir().unwrap();
        let volume = volume_dir(pod_dir.path(), "data");
        std::fs::create_dir_all(&volume).unwrap();
        std::os::unix::fs::symlink("/", volume.join("escape")).unwrap();
        let env = [("UP".to_string(), "..".to_string())];
        for (sub_path, why) in [
            (json!({"subPath": "/etc"}), "must be a relative path"),
            (json!({"subPath": "a/../../x"}), "must not contain '..'"),
            (json!({"subPathExpr": "$(UP)/x"}), "must not contain '..'"),
            (json!({"subPath": "escape/etc"}), "passes through a symlink"),
        ] {
            let error = mounts(pod_dir.path(), &container_mounting(sub_path), &env).unwrap_err();
            assert!(error.contains(why), "{error}");
            assert!(
                error.contains("volumeMount \"data\" of container \"c\""),
                "{error}"
            );
        }
    }

    #[test]
    fn images_may_be_file_urls() {
        assert_eq!(image_path("file:///a/b.wasm"), PathBuf::from("/a/b.wasm"));
        assert_eq!(image_path("b.wasm"), PathBuf::from("b.wasm"));
    }
}
