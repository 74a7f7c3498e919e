//! `describe pod`: status, containers, conditions and volumes in kubectl's layout.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, ContainerState, ContainerStatus, Pod, Volume};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::jiff::Timestamp;

use super::describe::{Out, format_time, labels_and_annotations, metadata};
use super::table::since;

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
        containers(
            out,
            &init_containers,
            status
                .init_container_statuses
                .as_deref()
                .unwrap_or_default(),
        );
    }
    out.line(0, "Containers:");
    containers(
        out,
        &spec.containers,
        status.container_statuses.as_deref().unwrap_or_default(),
    );
    let conditions = status.conditions.clone().unwrap_or_default();
    if !conditions.is_empty() {
        out.line(0, "Conditions:");
        out.row(1, &["Type", "Status"]);
        for condition in &conditions {
            out.row(1, &[&condition.type_, &condition.status]);
        }
    }
    volumes(out, spec.volumes.as_deref().unwrap_or_default());
    out.field(
        0,
        "QoS Class",
        status.qos_class.as_deref().unwrap_or("BestEffort"),
    );
    let selectors = spec.node_selector.clone().filter(|s| !s.is_empty());
    out.map(0, "Node-Selectors", selectors.as_ref());
    let tolerations: Vec<String> = spec
        .tolerations
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
        0,
        "Tolerations",
        if tolerations.is_empty() {
            "<none>".into()
        } else {
            tolerations.join(", ")
        },
    );
}

fn containers(out: &mut Out, containers: &[Container], statuses: &[ContainerStatus]) {
    for container in containers {
        let status = statuses.iter().find(|s| s.name == container.name);
        out.line(1, format!("{}:", container.name));
        if let Some(id) = status.and_then(|s| s.container_id.as_deref()) {
            out.field(2, "Container ID", id);
        }
        out.field(2, "Image", container.image.as_deref().unwrap_or_default());
        if let Some(status) = status.filter(|s| !s.image_id.is_empty()) {
            out.field(2, "Image ID", &status.image_id);
        }
        let ports: Vec<String> = container
            .ports
            .iter()
            .flatten()
            .map(|p| {
                format!(
                    "{}/{}",
                    p.container_port,
                    p.protocol.as_deref().unwrap_or("TCP")
                )
            })
            .collect();
        match ports.as_slice() {
            [] => out.field(2, "Port", "<none>"),
            [one] => out.field(2, "Port", one),
            many => out.field(2, "Ports", many.join(", ")),
        }
        for (title, words) in [("Command", &container.command), ("Args", &container.args)] {
            if let Some(words) = words.as_ref().filter(|w| !w.is_empty()) {
                out.line(2, format!("{title}:"));
                for word in words {
                    out.line(3, word);
                }
            }
        }
        match status {
            Some(status) => {
                state(out, "State", status.state.as_ref());
                if let Some(last) = status.last_state.as_ref().filter(|s| has_state(s)) {
                    state(out, "Last State", Some(last));
                }
                out.field(2, "Ready", if status.ready { "True" } else { "False" });
                out.field(2, "Restart Count", status.restart_count);
            }
            None => {
                out.field(2, "State", "Waiting");
                out.field(2, "Ready", "False");
                out.field(2, "Restart Count", 0);
            }
        }
        let resources = container.resources.clone().unwrap_or_default();
        quantities(out, "Limits", resources.limits);
        quantities(out, "Requests", resources.requests);
        environment(out, container);
        let mounts = container.volume_mounts.clone().unwrap_or_default();
        if mounts.is_empty() {
            out.field(2, "Mounts", "<none>");
        } else {
            out.line(2, "Mounts:");
            for mount in mounts {
                let mode = if mount.read_only == Some(true) {
                    "ro"
                } else {
                    "rw"
                };
                out.line(
                    3,
                    format!("{} from {} ({mode})", mount.mount_path, mount.name),
                );
            }
        }
    }
}

fn has_state(state: &ContainerState) -> bool {
    state.running.is_some() || state.waiting.is_some() || state.terminated.is_some()
}

/// `State:  Running` with the state's details one level deeper.
fn state(out: &mut Out, title: &str, state: Option<&ContainerState>) {
    let state = state.cloned().unwrap_or_default();
    if let Some(running) = state.running {
        out.field(2, title, "Running");
        out.field(3, "Started", format_time(running.started_at.as_ref()));
    } else if let Some(terminated) = state.terminated {
        out.field(2, title, "Terminated");
        if let Some(reason) = terminated.reason.as_deref().filter(|r| !r.is_empty()) {
            out.field(3, "Reason", reason);
        }
        if let Some(message) = terminated.message.as_deref().filter(|m| !m.is_empty()) {
            out.field(3, "Message", message.trim_end());
        }
        out.field(3, "Exit Code", terminated.exit_code);
        if let Some(signal) = terminated.signal.filter(|&s| s != 0) {
            out.field(3, "Signal", signal);
        }
        out.field(3, "Started", format_time(terminated.started_at.as_ref()));
        out.field(3, "Finished", format_time(terminated.finished_at.as_ref()));
    } else {
        out.field(2, title, "Waiting");
        let waiting = state.waiting.unwrap_or_default();
        if let Some(reason) = waiting.reason.as_deref().filter(|r| !r.is_empty()) {
            out.field(3, "Reason", reason);
        }
        if let Some(message) = waiting.message.as_deref().filter(|m| !m.is_empty()) {
            out.field(3, "Message", message);
        }
    }
}

fn quantities(out: &mut Out, title: &str, quantities: Option<BTreeMap<String, Quantity>>) {
    let Some(quantities) = quantities.filter(|q| !q.is_empty()) else {
        return;
    };
    out.line(2, format!("{title}:"));
    for (resource, quantity) in quantities {
        out.field(3, &resource, &quantity.0);
    }
}

fn environment(out: &mut Out, container: &Container) {
    let env = container.env.clone().unwrap_or_default();
    if env.is_empty() {
        out.field(2, "Environment", "<none>");
        return;
    }
    out.line(2, "Environment:");
    for var in env {
        let value = match (&var.value, &var.value_from) {
            (Some(value), _) => value.clone(),
            (None, Some(from)) => match &from.field_ref {
                Some(field) => format!(
                    " ({}:{})",
                    field.api_version.as_deref().unwrap_or("v1"),
                    field.field_path
                ),
                None => " (from a reference)".into(),
            },
            (None, None) => String::new(),
        };
        out.field(3, &var.name, value);
    }
}

fn volumes(out: &mut Out, volumes: &[Volume]) {
    if volumes.is_empty() {
        out.field(0, "Volumes", "<none>");
        return;
    }
    out.line(0, "Volumes:");
    for volume in volumes {
        out.line(1, format!("{}:", volume.name));
        if let Some(empty_dir) = &volume.empty_dir {
            out.field(
                2,
                "Type",
                "EmptyDir (a temporary directory that shares a pod's lifetime)",
            );
            out.field(2, "Medium", empty_dir.medium.as_deref().unwrap_or_default());
            let limit = empty_dir
                .size_limit
                .as_ref()
                .map_or("<unset>".to_string(), |q| q.0.clone());
            out.field(2, "SizeLimit", limit);
        } else if let Some(config_map) = &volume.config_map {
            out.field(2, "Type", "ConfigMap (a volume populated by a ConfigMap)");
            out.field(2, "Name", &config_map.name);
            out.field(2, "Optional", config_map.optional.unwrap_or(false));
        } else if let Some(secret) = &volume.secret {
            out.field(2, "Type", "Secret (a volume populated by a Secret)");
            out.field(
                2,
                "SecretName",
                secret.secret_name.as_deref().unwrap_or_default(),
            );
            out.field(2, "Optional", secret.optional.unwrap_or(false));
        } else {
            out.field(2, "Type", "<unknown>");
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::cli::describe::describe;
    use crate::cli::kinds::POD;
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
        let text = describe(&POD, &pod, &[event], now);
        for expected in [
            "Name:             demo\n",
            "Node:             node-1\n",
            "Status:           Running\n",
            "IP:               10.42.0.5\n",
            "    Image:  /w/exerciser.wasm\n",
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
