//! Pod defaults and validation: what the API server decides before a pod is stored.

use std::collections::HashSet;

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, PodStatus, Volume, VolumeMount};
use serde_json::Value;

use crate::api::error::Cause;
use crate::api::kinds::meta::dns_label_error;
use crate::api::quantity;

const RESTART_POLICIES: &[&str] = &["Always", "OnFailure", "Never"];
const PROTOCOLS: &[&str] = &["TCP", "UDP", "SCTP"];
/// The `fieldRef` paths an env var may take its value from.
const ENV_FIELD_PATHS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.podIP",
    "status.hostIP",
];
/// Resources a container may request and be limited in.
const RESOURCE_NAMES: &[&str] = &["cpu", "memory", "ephemeral-storage"];
/// Volume sources a wasmkube node can provide.
const SUPPORTED_VOLUMES: &[&str] = &["emptyDir"];

/// Fills what Kubernetes fills on create; the status starts over as Pending.
pub fn default(pod: &mut Pod) {
    let spec = pod.spec.get_or_insert_with(PodSpec::default);
    default_spec(spec);
    pod.status = Some(PodStatus {
        phase: Some("Pending".into()),
        qos_class: Some(qos_class(spec).into()),
        ..Default::default()
    });
}

/// The defaults of a pod spec, also applied to the templates of pod controllers.
pub fn default_spec(spec: &mut PodSpec) {
    spec.restart_policy.get_or_insert_with(|| "Always".into());
    spec.termination_grace_period_seconds.get_or_insert(30);
    spec.dns_policy.get_or_insert_with(|| "ClusterFirst".into());
    spec.scheduler_name
        .get_or_insert_with(|| "default-scheduler".into());
    let init = spec.init_containers.iter_mut().flatten();
    for container in spec.containers.iter_mut().chain(init) {
        container
            .image_pull_policy
            .get_or_insert_with(|| "IfNotPresent".into());
        container
            .termination_message_path
            .get_or_insert_with(|| "/dev/termination-log".into());
        container
            .termination_message_policy
            .get_or_insert_with(|| "File".into());
        for port in container.ports.iter_mut().flatten() {
            port.protocol.get_or_insert_with(|| "TCP".into());
        }
        super::probes::default(container);
    }
}

/// Kubernetes' QoS class: Guaranteed when every container limits and requests equally.
fn qos_class(spec: &PodSpec) -> &'static str {
    let resources: Vec<_> = spec
        .containers
        .iter()
        .map(|c| c.resources.clone().unwrap_or_default())
        .collect();
    if resources
        .iter()
        .all(|r| r.limits.is_none() && r.requests.is_none())
    {
        return "BestEffort";
    }
    let guaranteed = resources.iter().all(|r| {
        let limits = r.limits.clone().unwrap_or_default();
        ["cpu", "memory"].iter().all(|k| limits.contains_key(*k))
            && r.requests
                .as_ref()
                .is_none_or(|req| req.iter().all(|(k, v)| limits.get(k) == Some(v)))
    });
    if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// Checks a pod; `raw` is the JSON as sent, to see which volume sources were named.
pub fn validate(pod: &Pod, raw: &Value, causes: &mut Vec<Cause>) {
    match pod.spec.as_ref() {
        Some(spec) => validate_spec(spec, &raw["spec"], "spec", causes),
        None => causes.push(Cause::required("spec")),
    }
}

/// Checks a pod spec found at `path` (`spec`, or `spec.template.spec` in a pod controller);
/// `raw` is that spec's JSON as sent, and causes name fields under `path`.
pub fn validate_spec(spec: &PodSpec, raw: &Value, path: &str, causes: &mut Vec<Cause>) {
    if spec.containers.is_empty() {
        causes.push(Cause::required(format!("{path}.containers")));
    }
    let volumes = validate_volumes(
        spec.volumes.as_deref().unwrap_or_default(),
        raw,
        path,
        causes,
    );
    let mut names = HashSet::new();
    let init = spec
        .init_containers
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, c)| (format!("{path}.initContainers[{i}]"), c, true));
    let app = spec
        .containers
        .iter()
        .enumerate()
        .map(|(i, c)| (format!("{path}.containers[{i}]"), c, false));
    let grace = spec.termination_grace_period_seconds;
    for (container_path, container, is_init) in init.chain(app) {
        super::probes::validate_lifecycle(container, &container_path, is_init, grace, causes);
        if !container.name.is_empty() && !names.insert(container.name.clone()) {
            causes.push(Cause::duplicate(
                format!("{container_path}.name"),
                &container.name,
            ));
        }
        validate_container(&container_path, container, &volumes, causes);
    }
    if let Some(policy) = spec
        .restart_policy
        .as_deref()
        .filter(|p| !RESTART_POLICIES.contains(p))
    {
        causes.push(Cause::unsupported(
            format!("{path}.restartPolicy"),
            policy,
            RESTART_POLICIES,
        ));
    }
    if let Some(grace) = spec.termination_grace_period_seconds.filter(|g| *g < 0) {
        causes.push(Cause::invalid(
            format!("{path}.terminationGracePeriodSeconds"),
            grace,
            "must be greater than or equal to 0",
        ));
    }
    super::bounds::validate(spec, path, causes);
    if let Some(node) = spec.node_name.as_deref().filter(|n| !n.is_empty())
        && let Some(error) = crate::api::kinds::meta::dns_subdomain_error(node)
    {
        causes.push(Cause::invalid(format!("{path}.nodeName"), node, &error));
    }
}

fn validate_volumes<'a>(
    volumes: &'a [Volume],
    raw: &Value,
    spec_path: &str,
    causes: &mut Vec<Cause>,
) -> HashSet<&'a str> {
    let mut names = HashSet::new();
    for (i, volume) in volumes.iter().enumerate() {
        let path = format!("{spec_path}.volumes[{i}]");
        if volume.name.is_empty() {
            causes.push(Cause::required(format!("{path}.name")));
        } else if let Some(error) = dns_label_error(&volume.name) {
            causes.push(Cause::invalid(format!("{path}.name"), &volume.name, &error));
        } else if !names.insert(volume.name.as_str()) {
            causes.push(Cause::duplicate(format!("{path}.name"), &volume.name));
        }
        let sources: Vec<&String> = raw
            .pointer(&format!("/volumes/{i}"))
            .and_then(Value::as_object)
            .map(|o| o.keys().filter(|k| *k != "name").collect())
            .unwrap_or_default();
        if let Some(limit) = volume
            .empty_dir
            .as_ref()
            .and_then(|e| e.size_limit.as_ref())
            && quantity::bytes(&limit.0).is_none()
        {
            causes.push(Cause::invalid(
                format!("{path}.emptyDir.sizeLimit"),
                &limit.0,
                "must be a valid quantity, e.g. 10Mi",
            ));
        }
        match sources.as_slice() {
            [] => causes.push(Cause::required(format!(
                "{path}: must specify a volume type"
            ))),
            [source] if SUPPORTED_VOLUMES.contains(&source.as_str()) => {}
            [source] => causes.push(Cause::unsupported(
                format!("{path}.{source}"),
                source,
                SUPPORTED_VOLUMES,
            )),
            _ => causes.push(Cause::forbidden(
                path.clone(),
                "may not specify more than 1 volume type",
            )),
        }
    }
    names
}

fn validate_container(
    path: &str,
    container: &Container,
    volumes: &HashSet<&str>,
    causes: &mut Vec<Cause>,
) {
    if container.name.is_empty() {
        causes.push(Cause::required(format!("{path}.name")));
    } else if let Some(error) = dns_label_error(&container.name) {
        causes.push(Cause::invalid(
            format!("{path}.name"),
            &container.name,
            &error,
        ));
    }
    if container
        .image
        .as_deref()
        .is_none_or(|i| i.trim().is_empty())
    {
        causes.push(Cause::required(format!("{path}.image")));
    }
    for (i, port) in container.ports.iter().flatten().enumerate() {
        if !(1..=65535).contains(&port.container_port) {
            causes.push(Cause::invalid(
                format!("{path}.ports[{i}].containerPort"),
                port.container_port,
                "must be between 1 and 65535, inclusive",
            ));
        }
        if let Some(protocol) = port.protocol.as_deref().filter(|p| !PROTOCOLS.contains(p)) {
            causes.push(Cause::unsupported(
                format!("{path}.ports[{i}].protocol"),
                protocol,
                PROTOCOLS,
            ));
        }
    }
    for (i, env) in container.env.iter().flatten().enumerate() {
        if env.name.is_empty() || env.name.contains('=') {
            causes.push(Cause::invalid(
                format!("{path}.env[{i}].name"),
                &env.name,
                "a valid environment variable name must not be empty or contain '='",
            ));
        }
        let field = env.value_from.as_ref().and_then(|f| f.field_ref.as_ref());
        if let Some(field) = field.filter(|f| !ENV_FIELD_PATHS.contains(&f.field_path.as_str())) {
            causes.push(Cause::unsupported(
                format!("{path}.env[{i}].valueFrom.fieldRef.fieldPath"),
                &field.field_path,
                ENV_FIELD_PATHS,
            ));
        }
    }
    let mut mount_paths = HashSet::new();
    for (i, mount) in container.volume_mounts.iter().flatten().enumerate() {
        let field = format!("{path}.volumeMounts[{i}]");
        if !volumes.contains(mount.name.as_str()) {
            causes.push(Cause {
                field: format!("{field}.name"),
                reason: "FieldValueNotFound",
                message: format!("Not found: \"{}\"", mount.name),
            });
        }
        if mount.mount_path.is_empty() {
            causes.push(Cause::required(format!("{field}.mountPath")));
        } else if !mount.mount_path.starts_with('/')
            || mount.mount_path.split('/').any(|p| p == "..")
        {
            causes.push(Cause::invalid(
                format!("{field}.mountPath"),
                &mount.mount_path,
                "must be an absolute path without '..'",
            ));
        } else if !mount_paths.insert(mount.mount_path.as_str()) {
            causes.push(Cause::invalid(
                format!("{field}.mountPath"),
                &mount.mount_path,
                "must be unique",
            ));
        }
        validate_sub_path(&field, mount, causes);
    }
    super::probes::validate(container, path, causes);
    validate_resources(path, container, causes);
}

/// `subPath` and `subPathExpr` name a directory inside the volume: relative, without `..`,
/// and not both.
fn validate_sub_path(field: &str, mount: &VolumeMount, causes: &mut Vec<Cause>) {
    let sub_path = mount.sub_path.as_deref().filter(|p| !p.is_empty());
    let expr = mount.sub_path_expr.as_deref().filter(|p| !p.is_empty());
    if let (Some(_), Some(expr)) = (sub_path, expr) {
        causes.push(Cause::invalid(
            format!("{field}.subPathExpr"),
            expr,
            "subPathExpr and subPath are mutually exclusive",
        ));
    }
    for (name, path) in [("subPath", sub_path), ("subPathExpr", expr)] {
        let Some(path) = path else { continue };
        if path.starts_with('/') {
            causes.push(Cause::invalid(
                format!("{field}.{name}"),
                path,
                "must be a relative path",
            ));
        } else if path.split('/').any(|part| part == "..") {
            causes.push(Cause::invalid(
                format!("{field}.{name}"),
                path,
                "must not contain '..'",
            ));
        }
    }
}

fn validate_resources(path: &str, container: &Container, causes: &mut Vec<Cause>) {
    let Some(resources) = container.resources.as_ref() else {
        return;
    };
    for (kind, map) in [
        ("limits", &resources.limits),
        ("requests", &resources.requests),
    ] {
        for (name, value) in map.iter().flatten() {
            let field = format!("{path}.resources.{kind}[{name}]");
            let parsed = match name.as_str() {
                "memory" | "ephemeral-storage" => quantity::bytes(&value.0),
                "cpu" => quantity::millicores(&value.0),
                _ => {
                    causes.push(Cause::unsupported(field, name, RESOURCE_NAMES));
                    continue;
                }
            };
            if parsed.is_none() {
                causes.push(Cause::invalid(
                    field,
                    &value.0,
                    "must be a valid quantity, e.g. 64Mi or 100m",
                ));
            }
        }
    }
    for name in RESOURCE_NAMES.iter().copied() {
        let parse = |q: &k8s_openapi::apimachinery::pkg::api::resource::Quantity| {
            if name == "cpu" {
                quantity::millicores(&q.0)
            } else {
                quantity::bytes(&q.0)
            }
        };
        let limit = resources.limits.as_ref().and_then(|l| l.get(name));
        let request = resources.requests.as_ref().and_then(|r| r.get(name));
        if let (Some(limit), Some(request)) = (limit, request)
            && request.0 != limit.0
            && parse(request).zip(parse(limit)).is_some_and(|(r, l)| r > l)
        {
            causes.push(Cause::invalid(
                format!("{path}.resources.requests[{name}]"),
                &request.0,
                &format!("must be less than or equal to {name} limit of {}", limit.0),
            ));
        }
    }
}

/// A pod's spec may not change after creation, except binding it to a node once.
pub fn validate_update(old: &Pod, new: &Pod, causes: &mut Vec<Cause>) {
    let (Some(old_spec), Some(new_spec)) = (old.spec.as_ref(), new.spec.as_ref()) else {
        return;
    };
    let mut comparable = new_spec.clone();
    if old_spec.node_name.as_deref().unwrap_or_default().is_empty() {
        comparable.node_name = old_spec.node_name.clone();
    }
    if &comparable != old_spec {
        causes.push(Cause::forbidden(
            "spec",
            "pod updates may not change fields other than `spec.nodeName` (once, when unset)",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(raw: Value) -> Vec<String> {
        let pod: Pod = serde::Deserialize::deserialize(&raw).unwrap();
        let mut causes = Vec::new();
        validate(&pod, &raw, &mut causes);
        causes
            .into_iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect()
    }

    fn pod(spec: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec})
    }

    #[test]
    fn a_well_formed_pod_passes() {
        let raw = pod(json!({
            "volumes": [{"name": "data", "emptyDir": {}}],
            "containers": [{"name": "a", "image": "a.wasm", "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                            "resources": {"limits": {"memory": "64Mi", "cpu": "100m"}}}]
        }));
        assert_eq!(check(raw), Vec::<String>::new());
    }

    #[test]
    fn missing_image_and_duplicate_names_are_named_by_field() {
        let raw = pod(json!({"containers": [{"name": "a", "image": "x.wasm"}, {"name": "a"}]}));
        assert_eq!(
            check(raw),
            [
                "spec.containers[1].name: Duplicate value: \"a\"",
                "spec.containers[1].image: Required value"
            ]
        );
    }

    #[test]
    fn bad_ports_mounts_quantities_and_volumes_are_rejected() {
        let raw = pod(json!({
            "volumes": [{"name": "h", "hostPath": {"path": "/etc"}}],
            "containers": [{"name": "a", "image": "a.wasm", "ports": [{"containerPort": 70000}],
                            "volumeMounts": [{"name": "nope", "mountPath": "rel"}],
                            "resources": {"limits": {"memory": "lots"}}}]
        }));
        let fields: Vec<String> = check(raw)
            .into_iter()
            .map(|c| c.split(':').next().unwrap().to_string())
            .collect();
        assert_eq!(
            fields,
            [
                "spec.volumes[0].hostPath",
                "spec.containers[0].ports[0].containerPort",
                "spec.containers[0].volumeMounts[0].name",
                "spec.containers[0].volumeMounts[0].mountPath",
                "spec.containers[0].resources.limits[memory]",
            ]
        );
    }

    #[test]
    fn ephemeral_storage_and_size_limits_are_quantities() {
        let raw = pod(json!({
            "volumes": [{"name": "data", "emptyDir": {"sizeLimit": "10Mi"}},
                        {"name": "junk", "emptyDir": {"sizeLimit": "lots"}}],
            "containers": [{"name": "a", "image": "a.wasm", "resources": {
                "requests": {"ephemeral-storage": "2Mi"}, "limits": {"ephemeral-storage": "1Mi"}}}]
        }));
        assert_eq!(
            check(raw),
            [
                "spec.volumes[1].emptyDir.sizeLimit: Invalid value: \"lots\": must be a valid quantity, e.g. 10Mi",
                "spec.containers[0].resources.requests[ephemeral-storage]: Invalid value: \"2Mi\": must be less than or equal to ephemeral-storage limit of 1Mi",
            ]
        );
    }

    #[test]
    fn sub_paths_must_stay_inside_their_volume_and_not_come_twice() {
        let mount = |extra: Value| {
            let mut m = json!({"name": "data", "mountPath": "/data"});
            m.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            pod(json!({"volumes": [{"name": "data", "emptyDir": {}}],
                "containers": [{"name": "a", "image": "a.wasm", "volumeMounts": [m]}]}))
        };
        assert!(check(mount(json!({"subPath": "a/b"}))).is_empty());
        assert!(check(mount(json!({"subPathExpr": "$(POD)/logs"}))).is_empty());
        assert_eq!(
            check(mount(json!({"subPath": "/etc"}))),
            [
                "spec.containers[0].volumeMounts[0].subPath: Invalid value: \"/etc\": must be a relative path"
            ]
        );
        assert_eq!(
            check(mount(json!({"subPathExpr": "a/../../b"}))),
            [
                "spec.containers[0].volumeMounts[0].subPathExpr: Invalid value: \"a/../../b\": must not contain '..'"
            ]
        );
        assert_eq!(
            check(mount(json!({"subPath": "a", "subPathExpr": "b"}))),
            [
                "spec.containers[0].volumeMounts[0].subPathExpr: Invalid value: \"b\": subPathExpr and subPath are mutually exclusive"
            ]
        );
    }

    #[test]
    fn only_node_binding_may_change_the_spec() {
        let old: Pod = serde_json::from_value(pod(
            json!({"containers": [{"name": "a", "image": "a.wasm"}]}),
        ))
        .unwrap();
        let mut bound = old.clone();
        bound.spec.as_mut().unwrap().node_name = Some("n1".into());
        let mut causes = Vec::new();
        validate_update(&old, &bound, &mut causes);
        assert!(causes.is_empty());
        let mut moved = bound.clone();
        moved.spec.as_mut().unwrap().node_name = Some("n2".into());
        validate_update(&bound, &moved, &mut causes);
        assert_eq!(causes.len(), 1);
    }

    #[test]
    fn defaults_fill_policy_grace_and_pending_status() {
        let mut p: Pod = serde_json::from_value(pod(
            json!({"containers": [{"name": "a", "image": "a.wasm"}]}),
        ))
        .unwrap();
        default(&mut p);
        let spec = p.spec.unwrap();
        assert_eq!(spec.restart_policy.as_deref(), Some("Always"));
        assert_eq!(spec.termination_grace_period_seconds, Some(30));
        assert_eq!(p.status.unwrap().phase.as_deref(), Some("Pending"));
    }
}
