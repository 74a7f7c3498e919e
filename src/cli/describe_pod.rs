//! `describe pod`: status, containers, conditions and volumes in kubectl's layout.

use k8s_openapi::api::core::v1::{Pod, PodSpec, Volume};
use k8s_openapi::jiff::Timestamp;

use super::describe::{Out, format_time, labels_and_annotations, metadata};
use super::describe_container::{ContainersOf, containers};
use crate::api::printers::since;

pub fn pod(out: &mut Out, pod: &Pod, now: Timestamp) {
    let spec = pod.spec.clone().unwrap_or_default();
    let status = pod.status.clone().unwrap_or_default();
    metadata(out, &pod.metadata, true);
    out.field(0, "Priority", spec.priority.unwrap_or(0));
    out.field(
        0,
        "Service Account",
        spec.service_account_name.as_deref().unwrap_or("default"),
    );
    let node = match (&spec.node_name, &status.host_ip) {
        (Some(node), Some(ip)) => format!("{node}/{ip}"),
        (Some(node), None) => node.clone(),
        _ => "<none>".into(),
    };
    out.field(0, "Node", node);
    if let Some(start) = &status.start_time {
        out.field(0, "Start Time", format_time(Some(start)));
    }
    labels_and_annotations(out, &pod.metadata);
    let phase = status.phase.clone().unwrap_or_default();
    match &pod.metadata.deletion_timestamp {
        Some(deletion) => {
            out.field(
                0,
                "Status",
                format!("Terminating (lasts {})", since(Some(deletion.0), now)),
            );
            let grace = pod.metadata.deletion_grace_period_seconds.unwrap_or(0);
            out.field(0, "Termination Grace Period", format!("{grace}s"));
        }
        None => out.field(0, "Status", &phase),
    }
    if let Some(reason) = status.reason.as_deref().filter(|r| !r.is_empty()) {
        out.field(0, "Reason", reason);
    }
    if let Some(message) = status.message.as_deref().filter(|m| !m.is_empty()) {
        out.field(0, "Message", message);
    }
    out.field(0, "IP", status.pod_ip.as_deref().unwrap_or_default());
    let ips: Vec<String> = status
        .pod_ips
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|ip| ip.ip)
        .collect();
    if ips.is_empty() {
        out.field(0, "IPs", "<none>");
    } else {
        out.line(0, "IPs:");
        for ip in ips {
            out.field(1, "IP", ip);
        }
    }
    if let Some(owner) = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
    {
        out.field(0, "Controlled By", format!("{}/{}", owner.kind, owner.name));
    }
    let init_containers = spec.init_containers.clone().unwrap_or_default();
    if !init_containers.is_empty() {
        out.line(0, "Init Containers:");
        let statuses = status.init_container_statuses.as_deref();
        containers(
            out,
            &init_containers,
            ContainersOf::Pod(statuses.unwrap_or_default()),
        );
    }
    out.line(0, "Containers:");
    let statuses = status.container_statuses.as_deref().unwrap_or_default();
    containers(out, &spec.containers, ContainersOf::Pod(statuses));
    let conditions = status.conditions.clone().unwrap_or_default();
    if !conditions.is_empty() {
        out.line(0, "Conditions:");
        out.row(1, &["Type", "Status"]);
        for condition in &conditions {
            out.row(1, &[&condition.type_, &condition.status]);
        }
    }
    volumes(out, 0, spec.volumes.as_deref().unwrap_or_default());
    out.field(
        0,
        "QoS Class",
        status.qos_class.as_deref().unwrap_or("BestEffort"),
    );
    scheduling(out, 0, &spec);
}

/// `Node-Selectors` and `Tolerations` of a pod (level 0) or a pod template (level 1).
pub fn scheduling(out: &mut Out, level: usize, spec: &PodSpec) {
    let selectors = spec.node_selector.clone().filter(|s| !s.is_empty());
    out.map(level, "Node-Selectors", selectors.as_ref());
    let tolerations: Vec<String> = spec
        .tolerations
        .clone()
        .unwrap_or_default()
        .iter()
        .map(|t| {
            let key = t.key.clone().unwrap_or_default();
            let value = t
                .value
                .as_ref()
                .map(|v| format!("={v}"))
                .unwrap_or_default();
            let effect = t
                .effect
                .as_ref()
                .map(|e| format!(":{e}"))
                .unwrap_or_default();
            let op = t
                .operator
                .as_deref()
                .filter(|o| *o == "Exists")
                .map(|_| " op=Exists")
                .unwrap_or_default();
            format!("{key}{value}{effect}{op}")
        })
        .collect();
    out.field(
        level,
        "Tolerations",
        if tolerations.is_empty() {
            "<none>".into()
        } else {
            tolerations.join(", ")
        },
    );
}

/// The `Volumes` section of a pod (level 0) or a pod template (level 1).
pub fn volumes(out: &mut Out, level: usize, volumes: &[Volume]) {
    if volumes.is_empty() {
        out.field(level, "Volumes", "<none>");
        return;
    }
    out.line(level, "Volumes:");
    for volume in volumes {
        out.line(level + 1, format!("{}:", volume.name));
        if let Some(empty_dir) = &volume.empty_dir {
            out.field(
                level + 2,
                "Type",
                "EmptyDir (a temporary directory that shares a pod's lifetime)",
            );
            out.field(
                level + 2,
                "Medium",
                empty_dir.medium.as_deref().unwrap_or_default(),
            );
            let limit = empty_dir
                .size_limit
                .as_ref()
                .map_or("<unset>".to_string(), |q| q.0.clone());
            out.field(level + 2, "SizeLimit", limit);
        } else if let Some(config_map) = &volume.config_map {
            out.field(
                level + 2,
                "Type",
                "ConfigMap (a volume populated by a ConfigMap)",
            );
            out.field(level + 2, "Name", &config_map.name);
            out.field(level + 2, "Optional", config_map.optional.unwrap_or(false));
        } else if let Some(secret) = &volume.secret {
            out.field(level + 2, "Type", "Secret (a volume populated by a Secret)");
            out.field(
                level + 2,
                "SecretName",
                secret.secret_name.as_deref().unwrap_or_default(),
            );
            out.field(level + 2, "Optional", secret.optional.unwrap_or(false));
        } else {
            out.field(level + 2, "Type", "<unknown>");
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::api::kinds::PODS;
    use crate::cli::describe::describe;
    use k8s_openapi::api::core::v1::Event;
    use serde_json::json;

    // Blocks break at lines without a tab (`Args:`, `Limits:`), as in Go's tabwriter, so
    // kubectl's own output is not aligned across them either.
    #[test]
    fn pod_description_shows_containers_states_volumes_and_events() {
        let pod = json!({
            "metadata": {"name": "demo", "namespace": "default", "uid": "u1"},
            "spec": {
                "nodeName": "node-1",
                "containers": [{
                    "name": "writer", "image": "/w/exerciser.wasm", "args": ["append-every", "1000"],
                    "resources": {"limits": {"memory": "64Mi"}},
                    "volumeMounts": [{"name": "shared", "mountPath": "/shared"}]
                }],
                "volumes": [{"name": "shared", "emptyDir": {}}]
            },
            "status": {
                "phase": "Running", "podIP": "10.42.0.5",
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [{
                    "name": "writer", "ready": true, "restartCount": 2,
                    "state": {"running": {"startedAt": "2024-01-01T00:00:00Z"}},
                    "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}
                }]
            }
        });
        let event: Event = serde_json::from_value(json!({
            "metadata": {"name": "e"}, "involvedObject": {"kind": "Pod", "name": "demo", "uid": "u1"},
            "type": "Normal", "reason": "Started", "message": "Started container writer",
            "lastTimestamp": "2024-01-01T00:00:01Z", "source": {"component": "kubelet"}
        }))
        .unwrap();
        let now = "2024-01-01T00:00:11Z".parse().unwrap();
        let text = describe(&PODS, &pod, Some(&[event]), now);
        for expected in [
            "Name:             demo\n",
            "Node:             node-1\n",
            "Status:           Running\n",
            "IP:               10.42.0.5\n",
            "    Image:      /w/exerciser.wasm\n",
            "    Host Port:  <none>\n",
            "    State:          Running\n",
            "    Last State:     Terminated\n",
            "      Reason:       OOMKilled\n",
            "      Exit Code:    137\n",
            "    Restart Count:  2\n",
            "      memory:     64Mi\n",
            "      /shared from shared (rw)\n",
            "  Ready  True\n",
            "    Type:        EmptyDir (a temporary directory that shares a pod's lifetime)\n",
            "  Normal  Started  10s   kubelet  Started container writer\n",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
    }
}
