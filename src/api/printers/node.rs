//! A node's columns: readiness, roles, version; addresses and runtime with `-o wide`.

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

use super::{Column, Columns, decode, or_none, since};

pub static COLUMNS: Columns = Columns {
    columns: &[
        Column::standard("NAME"),
        Column::standard("STATUS"),
        Column::standard("ROLES"),
        Column::standard("AGE"),
        Column::standard("VERSION"),
        Column::wide("INTERNAL-IP"),
        Column::wide("EXTERNAL-IP"),
        Column::wide("OS-IMAGE"),
        Column::wide("KERNEL-VERSION"),
        Column::wide("CONTAINER-RUNTIME"),
    ],
    cells,
};

fn cells(object: &Value, now: Timestamp) -> Vec<String> {
    let node: Node = decode(object);
    let status = node.status.clone().unwrap_or_default();
    let info = status.node_info.clone().unwrap_or_default();
    let addresses = status.addresses.unwrap_or_default();
    let address = |kind: &str| {
        or_none(
            addresses
                .iter()
                .find(|a| a.type_ == kind)
                .map(|a| a.address.clone()),
        )
    };
    vec![
        node.metadata.name.clone().unwrap_or_default(),
        node_status(&node),
        node_roles(&node),
        since(node.metadata.creation_timestamp.as_ref().map(|t| t.0), now),
        info.kubelet_version.clone(),
        address("InternalIP"),
        address("ExternalIP"),
        or_none(Some(info.os_image)),
        or_none(Some(info.kernel_version)),
        or_none(Some(info.container_runtime_version)),
    ]
}

/// `Ready`, or `NotReady` for any other Ready condition (`False`, `Unknown`, none), with
/// `,SchedulingDisabled` for a cordoned node, as kubectl's `printNode` prints it.
pub fn node_status(node: &Node) -> String {
    let conditions = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let ready = conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    let mut status = if ready { "Ready" } else { "NotReady" }.to_string();
    if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
        status.push_str(",SchedulingDisabled");
    }
    status
}

/// Roles from `node-role.kubernetes.io/<role>` and `kubernetes.io/role` labels.
pub fn node_roles(node: &Node) -> String {
    let mut roles: Vec<String> = Vec::new();
    for (key, value) in node.metadata.labels.iter().flatten() {
        if let Some(role) = key
            .strip_prefix("node-role.kubernetes.io/")
            .filter(|r| !r.is_empty())
        {
            roles.push(role.to_string());
        } else if key == "kubernetes.io/role" && !value.is_empty() {
            roles.push(value.clone());
        }
    }
    roles.sort();
    roles.dedup();
    or_none(Some(roles.join(",")))
}

#[cfg(test)]
mod tests {
    use super::super::test_now;
    use super::*;
    use serde_json::json;

    #[test]
    fn rows_show_readiness_and_roles() {
        let node = json!({
            "metadata": {"name": "n1", "creationTimestamp": "2024-01-08T00:00:00Z",
                         "labels": {"node-role.kubernetes.io/control-plane": ""}},
            "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "Ready", "status": "True"}], "nodeInfo": {"kubeletVersion": "v0.1.0"}}
        });
        assert_eq!(
            cells(&node, test_now())[..5],
            [
                "n1",
                "Ready,SchedulingDisabled",
                "control-plane",
                "2d",
                "v0.1.0"
            ]
        );
    }

    #[test]
    fn a_node_not_known_to_be_ready_prints_not_ready() {
        for status in [json!("Unknown"), json!("False")] {
            let node = json!({"metadata": {"name": "n"},
                "status": {"conditions": [{"type": "Ready", "status": status}]}});
            assert_eq!(cells(&node, test_now())[1], "NotReady");
        }
        assert_eq!(
            cells(&json!({"metadata": {"name": "n"}}), test_now())[1],
            "NotReady"
        );
    }
}
