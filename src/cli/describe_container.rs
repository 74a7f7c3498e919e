//! Containers as `describe` shows them: a pod's with their state, or a pod template's.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, ContainerPort, ContainerState, ContainerStatus};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::describe::{Out, format_time};

/// Whose containers are described: a pod's, with their statuses, or a pod template's.
#[derive(Clone, Copy, Debug)]
pub enum ContainersOf<'a> {
    Pod(&'a [ContainerStatus]),
    Template,
}

/// One block per container: image, ports, command, state (for a pod), resources,
/// environment and mounts.
pub fn containers(out: &mut Out, containers: &[Container], of: ContainersOf) {
    for container in containers {
        match of {
            ContainersOf::Pod(statuses) => {
                out.line(1, format!("{}:", container.name));
                let status = statuses.iter().find(|s| s.name == container.name);
                image(out, container, status);
            }
            // kubectl indents a template's container names one space more than their fields.
            ContainersOf::Template => {
                out.line(1, format!(" {}:", container.name));
                image(out, container, None);
            }
        }
        ports(out, container);
        for (title, words) in [("Command", &container.command), ("Args", &container.args)] {
            if let Some(words) = words.as_ref().filter(|w| !w.is_empty()) {
                out.line(2, format!("{title}:"));
                for word in words {
                    out.line(3, word);
                }
            }
        }
        if let ContainersOf::Pod(statuses) = of {
            status(out, statuses.iter().find(|s| s.name == container.name));
        }
        let resources = container.resources.clone().unwrap_or_default();
        quantities(out, "Limits", resources.limits);
        quantities(out, "Requests", resources.requests);
        environment(out, container);
        mounts(out, container);
    }
}

/// `Container ID`, `Image` and `Image ID` (the IDs once the container has a status).
fn image(out: &mut Out, container: &Container, status: Option<&ContainerStatus>) {
    if let Some(id) = status.and_then(|s| s.container_id.as_deref()) {
        out.field(2, "Container ID", id);
    }
    out.field(2, "Image", container.image.as_deref().unwrap_or_default());
    if let Some(status) = status.filter(|s| !s.image_id.is_empty()) {
        out.field(2, "Image ID", &status.image_id);
    }
}

/// `Port: 8080/TCP` and `Host Port: 0/TCP` (plural with several, `<none>` with none).
fn ports(out: &mut Out, container: &Container) {
    let ports = container.ports.as_deref().unwrap_or_default();
    let protocol = |p: &ContainerPort| p.protocol.clone().unwrap_or_else(|| "TCP".into());
    let container_ports: Vec<String> = ports
        .iter()
        .map(|p| format!("{}/{}", p.container_port, protocol(p)))
        .collect();
    let host_ports: Vec<String> = ports
        .iter()
        .map(|p| format!("{}/{}", p.host_port.unwrap_or(0), protocol(p)))
        .collect();
    for (title, list) in [("Port", container_ports), ("Host Port", host_ports)] {
        match list.as_slice() {
            [] => out.field(2, title, "<none>"),
            [one] => out.field(2, title, one),
            many => out.field(2, &format!("{title}s"), many.join(", ")),
        }
    }
}

fn status(out: &mut Out, status: Option<&ContainerStatus>) {
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
}

fn mounts(out: &mut Out, container: &Container) {
    let mounts = container.volume_mounts.as_deref().unwrap_or_default();
    if mounts.is_empty() {
        out.field(2, "Mounts", "<none>");
        return;
    }
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
