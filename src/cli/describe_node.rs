//! `describe node`: conditions, capacity, system info, and the pods it runs with what they
//! request, as kubectl's node describer prints them.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Node, NodeStatus, NodeSystemInfo, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::jiff::Timestamp;

use super::describe::{Out, format_time, labels_and_annotations, metadata};
use crate::api::printers::node::node_roles;
use crate::api::printers::since;
use crate::api::quantity;

pub fn node(out: &mut Out, node: &Node, pods: &[Pod], now: Timestamp) {
    metadata(out, &node.metadata, false);
    out.field(0, "Roles", node_roles(node));
    labels_and_annotations(out, &node.metadata);
    out.field(
        0,
        "CreationTimestamp",
        format_time(node.metadata.creation_timestamp.as_ref()),
    );
    let spec = node.spec.clone().unwrap_or_default();
    let taints: Vec<String> = spec
        .taints
        .unwrap_or_default()
        .iter()
        .map(|t| {
            let value = t.value.as_deref().unwrap_or_default();
            format!("{}={value}:{}", t.key, t.effect)
        })
        .collect();
    let taints = match taints.is_empty() {
        true => "<none>".to_string(),
        false => taints.join(", "),
    };
    out.field(0, "Taints", taints);
    out.field(0, "Unschedulable", spec.unschedulable.unwrap_or(false));
    let status = node.status.clone().unwrap_or_default();
    conditions(out, &status);
    out.line(0, "Addresses:");
    for address in status.addresses.iter().flatten() {
        out.field(1, &address.type_, &address.address);
    }
    // Where the API server reads the node's logs and other nodes open tunnels (the kubelet's
    // port); 0 until the node listens.
    let port = status
        .daemon_endpoints
        .as_ref()
        .and_then(|d| d.kubelet_endpoint.as_ref());
    out.field(0, "KubeletPort", port.map_or(0, |e| e.port));
    for (title, quantities) in [
        ("Capacity", &status.capacity),
        ("Allocatable", &status.allocatable),
    ] {
        out.line(0, format!("{title}:"));
        for (resource, quantity) in quantities.iter().flatten() {
            out.field(1, resource, &quantity.0);
        }
    }
    if let Some(info) = &status.node_info {
        system_info(out, info);
    }
    out.field(0, "PodCIDR", spec.pod_cidr.as_deref().unwrap_or_default());
    out.field(0, "PodCIDRs", spec.pod_cidrs.unwrap_or_default().join(","));
    let allocatable = Usage::allocatable(status.allocatable.as_ref());
    non_terminated_pods(out, pods, &allocatable, now);
    allocated_resources(out, pods, &allocatable);
}

fn conditions(out: &mut Out, status: &NodeStatus) {
    out.line(0, "Conditions:");
    let header = [
        "Type",
        "Status",
        "LastHeartbeatTime",
        "LastTransitionTime",
        "Reason",
        "Message",
    ];
    out.row(1, &header);
    let underline: Vec<String> = header.iter().map(|h| "-".repeat(h.len())).collect();
    out.row(1, &underline.iter().map(String::as_str).collect::<Vec<_>>());
    for c in status.conditions.iter().flatten() {
        let heartbeat = format_time(c.last_heartbeat_time.as_ref());
        let transition = format_time(c.last_transition_time.as_ref());
        let reason = c.reason.as_deref().unwrap_or_default();
        let message = c.message.as_deref().unwrap_or_default();
        // kubectl ends every cell but the last with a space, which widens the columns.
        let cells = [c.type_.as_str(), &c.status, &heartbeat, &transition, reason]
            .map(|cell| format!("{cell} "));
        let mut row: Vec<&str> = cells.iter().map(String::as_str).collect();
        row.push(message);
        out.row(1, &row);
    }
}

fn system_info(out: &mut Out, info: &NodeSystemInfo) {
    out.line(0, "System Info:");
    out.field(1, "Machine ID", &info.machine_id);
    out.field(1, "System UUID", &info.system_uuid);
    out.field(1, "Boot ID", &info.boot_id);
    out.field(1, "Kernel Version", &info.kernel_version);
    out.field(1, "OS Image", &info.os_image);
    out.field(1, "Operating System", &info.operating_system);
    out.field(1, "Architecture", &info.architecture);
    out.field(
        1,
        "Container Runtime Version",
        &info.container_runtime_version,
    );
    out.field(1, "Kubelet Version", &info.kubelet_version);
    out.field(1, "Kube-Proxy Version", &info.kube_proxy_version);
}

/// A resource describe node accounts: its name, how its quantities read and print.
struct Accounted {
    name: &'static str,
    parse: fn(&str) -> Option<u64>,
    print: fn(u64) -> String,
}

/// The resources of kubectl's tables, in its order: CPU (millicores), memory and
/// ephemeral storage (bytes).
const ACCOUNTED: [Accounted; 3] = [
    Accounted {
        name: "cpu",
        parse: quantity::millicores,
        print: cpu_text,
    },
    Accounted {
        name: "memory",
        parse: quantity::bytes,
        print: memory_text,
    },
    Accounted {
        name: "ephemeral-storage",
        parse: quantity::bytes,
        print: memory_text,
    },
];

/// Requests and limits of each [`ACCOUNTED`] resource.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Usage {
    requests: [u64; 3],
    limits: [u64; 3],
}

impl Usage {
    /// The node's allocatable amounts, as both requests and limits (the totals
    /// percentages are taken of).
    fn allocatable(allocatable: Option<&BTreeMap<String, Quantity>>) -> Usage {
        let amounts = ACCOUNTED.map(|r| amount(allocatable, r.name, r.parse));
        Usage {
            requests: amounts,
            limits: amounts,
        }
    }

    fn of_container(container: &Container) -> Usage {
        let resources = container.resources.clone().unwrap_or_default();
        let (requests, limits) = (resources.requests.as_ref(), resources.limits.as_ref());
        Usage {
            requests: ACCOUNTED.map(|r| amount(requests, r.name, r.parse)),
            limits: ACCOUNTED.map(|r| amount(limits, r.name, r.parse)),
        }
    }

    /// What a pod asks for, as kubectl adds it up: its app containers together, unless one
    /// init container (which runs alone) asks for more.
    fn of_pod(pod: &Pod) -> Usage {
        let spec = pod.spec.clone().unwrap_or_default();
        let apps = spec
            .containers
            .iter()
            .map(Usage::of_container)
            .fold(Usage::default(), |sum, u| {
                sum.combine(u, u64::saturating_add)
            });
        spec.init_containers
            .iter()
            .flatten()
            .map(Usage::of_container)
            .fold(apps, |most, u| most.combine(u, u64::max))
    }

    fn combine(self, other: Usage, op: fn(u64, u64) -> u64) -> Usage {
        let zip = |a: [u64; 3], b: [u64; 3]| [0, 1, 2].map(|i| op(a[i], b[i]));
        Usage {
            requests: zip(self.requests, other.requests),
            limits: zip(self.limits, other.limits),
        }
    }

    /// Resource `index`'s request and limit as `750m (37%)`, shares of `of`.
    fn cells(&self, index: usize, of: &Usage) -> [String; 2] {
        let print = ACCOUNTED[index].print;
        let request = self.requests[index];
        let limit = self.limits[index];
        [
            share(print(request), request, of.requests[index]),
            share(print(limit), limit, of.limits[index]),
        ]
    }
}

fn non_terminated_pods(out: &mut Out, pods: &[Pod], allocatable: &Usage, now: Timestamp) {
    out.field(
        0,
        "Non-terminated Pods",
        format!("({} in total)", pods.len()),
    );
    // kubectl leaves an empty column after Name.
    let header = [
        "Namespace",
        "Name",
        "",
        "CPU Requests",
        "CPU Limits",
        "Memory Requests",
        "Memory Limits",
        "Age",
    ];
    out.row(1, &header);
    let underline: Vec<String> = header.iter().map(|h| "-".repeat(h.len())).collect();
    out.row(1, &underline.iter().map(String::as_str).collect::<Vec<_>>());
    for pod in pods {
        let meta = &pod.metadata;
        let age = since(meta.creation_timestamp.as_ref().map(|t| t.0), now);
        let usage = Usage::of_pod(pod);
        let [cpu_request, cpu_limit] = usage.cells(0, allocatable);
        let [memory_request, memory_limit] = usage.cells(1, allocatable);
        out.row(
            1,
            &[
                meta.namespace.as_deref().unwrap_or_default(),
                meta.name.as_deref().unwrap_or_default(),
                "",
                &cpu_request,
                &cpu_limit,
                &memory_request,
                &memory_limit,
                &age,
            ],
        );
    }
}

fn allocated_resources(out: &mut Out, pods: &[Pod], allocatable: &Usage) {
    let total = pods
        .iter()
        .map(Usage::of_pod)
        .fold(Usage::default(), |sum, u| {
            sum.combine(u, u64::saturating_add)
        });
    out.line(0, "Allocated resources:");
    out.line(
        1,
        "(Total limits may be over 100 percent, i.e., overcommitted.)",
    );
    out.row(1, &["Resource", "Requests", "Limits"]);
    out.row(1, &["--------", "--------", "------"]);
    for (index, resource) in ACCOUNTED.iter().enumerate() {
        let [request, limit] = total.cells(index, allocatable);
        out.row(1, &[resource.name, &request, &limit]);
    }
}

/// The amount of resource `name` in `map`, 0 when absent or unreadable.
fn amount(
    map: Option<&BTreeMap<String, Quantity>>,
    name: &str,
    parse: fn(&str) -> Option<u64>,
) -> u64 {
    map.and_then(|m| m.get(name))
        .and_then(|q| parse(&q.0))
        .unwrap_or(0)
}

/// `text (p%)`, the percentage of `total` truncated as kubectl's; 0% when there is no total.
fn share(text: String, value: u64, total: u64) -> String {
    let percent = if total == 0 {
        0
    } else {
        (value as f64 / total as f64 * 100.0) as u64
    };
    format!("{text} ({percent}%)")
}

/// Millicores as a CPU quantity: `0`, `250m`, `2`.
fn cpu_text(millicores: u64) -> String {
    match millicores {
        m if m.is_multiple_of(1000) => (m / 1000).to_string(),
        m => format!("{m}m"),
    }
}

/// Bytes as a memory quantity, in the largest binary unit that divides them: `64Mi`.
fn memory_text(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("Ti", 1 << 40),
        ("Gi", 1 << 30),
        ("Mi", 1 << 20),
        ("Ki", 1 << 10),
    ];
    UNITS
        .iter()
        .find(|(_, size)| bytes > 0 && bytes.is_multiple_of(*size))
        .map_or(bytes.to_string(), |(unit, size)| {
            format!("{}{unit}", bytes / size)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(containers: serde_json::Value, init: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": containers, "initContainers": init},
        }))
        .unwrap()
    }

    #[test]
    fn pod_usage_adds_app_containers_and_lets_a_bigger_init_container_win() {
        let resources = |cpu: &str, memory: &str| json!({"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory}});
        let pod = pod(
            json!([{"name": "a", "resources": resources("250m", "64Mi")},
                   {"name": "b", "resources": resources("250m", "64Mi")}]),
            json!([{"name": "i", "resources": resources("1", "32Mi")}]),
        );
        let usage = Usage::of_pod(&pod);
        assert_eq!(
            usage,
            Usage {
                requests: [1000, 128 << 20, 0],
                limits: [0, 128 << 20, 0],
            }
        );
        let allocatable = Usage::allocatable(Some(&BTreeMap::from([
            ("cpu".to_string(), Quantity("2".into())),
            ("memory".to_string(), Quantity("1Gi".into())),
        ])));
        assert_eq!(
            usage.cells(0, &allocatable),
            ["1 (50%)", "0 (0%)"].map(String::from)
        );
        assert_eq!(
            usage.cells(1, &allocatable),
            ["128Mi (12%)", "128Mi (12%)"].map(String::from)
        );
    }

    #[test]
    fn quantities_print_in_kubernetes_units() {
        assert_eq!(cpu_text(0), "0");
        assert_eq!(cpu_text(750), "750m");
        assert_eq!(cpu_text(2000), "2");
        assert_eq!(memory_text(0), "0");
        assert_eq!(memory_text(64 << 20), "64Mi");
        assert_eq!(memory_text(1500), "1500");
    }
}
