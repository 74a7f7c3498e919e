//! The columns `get` prints per kind, filled the way kubectl's printers fill them.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Event, Namespace, Node, Pod};
use k8s_openapi::jiff::Timestamp;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::kinds::ResourceKind;
use super::pod_summary::summarize;
use super::table::since;

/// The columns `get` prints for one kind.
#[derive(Clone, Copy, Debug)]
pub struct Columns {
    pub kind: &'static ResourceKind,
    pub wide: bool,
    /// A NAMESPACE column first (`-A`).
    pub namespace: bool,
    /// A LABELS column last (`--show-labels`).
    pub labels: bool,
}

impl Columns {
    pub fn headers(&self) -> Vec<String> {
        let (mut headers, wide): (Vec<&str>, Vec<&str>) = match self.kind.kind {
            "Pod" => (
                vec!["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
                vec!["IP", "NODE", "NOMINATED NODE", "READINESS GATES"],
            ),
            "Node" => (
                vec!["NAME", "STATUS", "ROLES", "AGE", "VERSION"],
                vec![
                    "INTERNAL-IP",
                    "EXTERNAL-IP",
                    "OS-IMAGE",
                    "KERNEL-VERSION",
                    "CONTAINER-RUNTIME",
                ],
            ),
            "Namespace" => (vec!["NAME", "STATUS", "AGE"], vec![]),
            "Event" => (
                vec!["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
                vec![],
            ),
            "ReplicaSet" => (
                vec!["NAME", "DESIRED", "CURRENT", "READY", "AGE"],
                vec!["CONTAINERS", "IMAGES", "SELECTOR"],
            ),
            "Deployment" => (
                vec!["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
                vec!["CONTAINERS", "IMAGES", "SELECTOR"],
            ),
            "Lease" => (vec!["NAME", "HOLDER", "AGE"], vec![]),
            _ => (vec!["NAME", "AGE"], vec![]),
        };
        if self.wide {
            headers.extend(wide);
        }
        self.decorate(
            headers.into_iter().map(str::to_string).collect(),
            "NAMESPACE",
            "LABELS",
        )
    }

    /// The cells of one object; an object of an unexpected shape gets what can be read.
    pub fn row(&self, object: &Value, now: Timestamp) -> Vec<String> {
        let cells = match self.kind.kind {
            "Pod" => pod_row(&decode(object), self.wide, now),
            "Node" => node_row(&decode(object), self.wide, now),
            "Namespace" => namespace_row(&decode(object), now),
            "Event" => event_row(&decode(object), now),
            "ReplicaSet" => workload_row(object, WorkloadKind::ReplicaSet, self.wide, now),
            "Deployment" => workload_row(object, WorkloadKind::Deployment, self.wide, now),
            "Lease" => vec![
                text(object, "/metadata/name"),
                text(object, "/spec/holderIdentity"),
                since(timestamp(object, "/metadata/creationTimestamp"), now),
            ],
            _ => vec![
                text(object, "/metadata/name"),
                since(timestamp(object, "/metadata/creationTimestamp"), now),
            ],
        };
        let namespace = text(object, "/metadata/namespace");
        let labels = object
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .map(|labels| {
                let pairs: BTreeMap<_, _> = labels
                    .iter()
                    .map(|(k, v)| (k, v.as_str().unwrap_or_default()))
                    .collect();
                pairs
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .filter(|l| !l.is_empty())
            .unwrap_or_else(|| "<none>".into());
        self.decorate(cells, &namespace, &labels)
    }

    fn decorate(&self, mut cells: Vec<String>, namespace: &str, labels: &str) -> Vec<String> {
        if self.namespace {
            cells.insert(0, namespace.to_string());
        }
        if self.labels {
            cells.push(labels.to_string());
        }
        cells
    }
}

fn decode<T: DeserializeOwned + Default>(object: &Value) -> T {
    serde_json::from_value(object.clone()).unwrap_or_else(|error| {
        tracing::warn!(%error, "object does not have the expected shape");
        T::default()
    })
}

fn text(object: &Value, pointer: &str) -> String {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn timestamp(object: &Value, pointer: &str) -> Option<Timestamp> {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .and_then(|t| t.parse().ok())
}

fn or_none(value: Option<String>) -> String {
    value
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "<none>".into())
}

fn pod_row(pod: &Pod, wide: bool, now: Timestamp) -> Vec<String> {
    let summary = summarize(pod);
    let mut row = vec![
        pod.metadata.name.clone().unwrap_or_default(),
        summary.ready_column(),
        summary.status.clone(),
        summary.restarts_column(now),
        since(pod.metadata.creation_timestamp.as_ref().map(|t| t.0), now),
    ];
    if wide {
        let status = pod.status.clone().unwrap_or_default();
        let spec = pod.spec.clone().unwrap_or_default();
        let gates = spec.readiness_gates.unwrap_or_default();
        row.push(or_none(status.pod_ip));
        row.push(or_none(spec.node_name));
        row.push(or_none(status.nominated_node_name));
        row.push(if gates.is_empty() {
            "<none>".into()
        } else {
            let conditions = status.conditions.unwrap_or_default();
            let ready = gates
                .iter()
                .filter(|g| {
                    conditions
                        .iter()
                        .any(|c| c.type_ == g.condition_type && c.status == "True")
                })
                .count();
            format!("{ready}/{}", gates.len())
        });
    }
    row
}

/// `Ready`, `NotReady` or `Unknown`, with `,SchedulingDisabled` for a cordoned node.
pub fn node_status(node: &Node) -> String {
    let conditions = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let mut status = match conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status.as_str())
    {
        Some("True") => "Ready".to_string(),
        Some("False") => "NotReady".to_string(),
        _ => "Unknown".to_string(),
    };
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

fn node_row(node: &Node, wide: bool, now: Timestamp) -> Vec<String> {
    let info = node
        .status
        .as_ref()
        .and_then(|s| s.node_info.clone())
        .unwrap_or_default();
    let mut row = vec![
        node.metadata.name.clone().unwrap_or_default(),
        node_status(node),
        node_roles(node),
        since(node.metadata.creation_timestamp.as_ref().map(|t| t.0), now),
        info.kubelet_version.clone(),
    ];
    if wide {
        let addresses = node
            .status
            .as_ref()
            .and_then(|s| s.addresses.clone())
            .unwrap_or_default();
        let address = |kind: &str| {
            or_none(
                addresses
                    .iter()
                    .find(|a| a.type_ == kind)
                    .map(|a| a.address.clone()),
            )
        };
        row.push(address("InternalIP"));
        row.push(address("ExternalIP"));
        row.push(or_none(Some(info.os_image)));
        row.push(or_none(Some(info.kernel_version)));
        row.push(or_none(Some(info.container_runtime_version)));
    }
    row
}

fn namespace_row(namespace: &Namespace, now: Timestamp) -> Vec<String> {
    vec![
        namespace.metadata.name.clone().unwrap_or_default(),
        namespace
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_default(),
        since(
            namespace.metadata.creation_timestamp.as_ref().map(|t| t.0),
            now,
        ),
    ]
}

/// When an event was last seen: lastTimestamp, else eventTime, else firstTimestamp, else
/// its creation.
pub fn event_last_seen(event: &Event) -> Option<Timestamp> {
    event
        .last_timestamp
        .as_ref()
        .map(|t| t.0)
        .or_else(|| {
            event
                .series
                .as_ref()
                .and_then(|s| s.last_observed_time.as_ref())
                .map(|t| t.0)
        })
        .or_else(|| event.event_time.as_ref().map(|t| t.0))
        .or_else(|| event.first_timestamp.as_ref().map(|t| t.0))
        .or_else(|| event.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum WorkloadKind {
    ReplicaSet,
    Deployment,
}

/// A ReplicaSet (DESIRED CURRENT READY) or Deployment (READY UP-TO-DATE AVAILABLE) row,
/// read from the JSON so a status missing a field reads as 0, as kubectl prints it.
fn workload_row(object: &Value, kind: WorkloadKind, wide: bool, now: Timestamp) -> Vec<String> {
    let count = |pointer: &str| object.pointer(pointer).and_then(Value::as_i64).unwrap_or(0);
    let desired = count("/spec/replicas");
    let ready = count("/status/readyReplicas");
    let mut row = vec![text(object, "/metadata/name")];
    match kind {
        WorkloadKind::ReplicaSet => row.extend([
            desired.to_string(),
            count("/status/replicas").to_string(),
            ready.to_string(),
        ]),
        WorkloadKind::Deployment => row.extend([
            format!("{ready}/{desired}"),
            count("/status/updatedReplicas").to_string(),
            count("/status/availableReplicas").to_string(),
        ]),
    }
    row.push(since(timestamp(object, "/metadata/creationTimestamp"), now));
    if wide {
        let containers = object
            .pointer("/spec/template/spec/containers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let join = |field: &str| {
            let values: Vec<&str> = containers
                .iter()
                .filter_map(|c| c.get(field).and_then(Value::as_str))
                .collect();
            or_none(Some(values.join(",")))
        };
        row.push(join("name"));
        row.push(join("image"));
        row.push(selector_text(object.pointer("/spec/selector")));
    }
    row
}

/// A label selector as kubectl prints it: `app=web,tier in (a,b)`.
pub fn selector_text(selector: Option<&Value>) -> String {
    let Some(selector) = selector else {
        return "<none>".into();
    };
    let mut terms: Vec<String> = selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    for expression in selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = expression["key"].as_str().unwrap_or_default();
        let values: Vec<&str> = expression["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        terms.push(match expression["operator"].as_str().unwrap_or_default() {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            other => format!("{key} {other}"),
        });
    }
    or_none(Some(terms.join(",")))
}

fn event_row(event: &Event, now: Timestamp) -> Vec<String> {
    let object = &event.involved_object;
    vec![
        since(event_last_seen(event), now),
        event.type_.clone().unwrap_or_default(),
        event.reason.clone().unwrap_or_default(),
        format!(
            "{}/{}",
            object.kind.clone().unwrap_or_default().to_lowercase(),
            object.name.clone().unwrap_or_default()
        ),
        event
            .message
            .clone()
            .unwrap_or_default()
            .trim_end()
            .to_string(),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::kinds::{EVENT, NODE, POD};
    use super::*;
    use serde_json::json;

    fn now() -> Timestamp {
        "2024-01-10T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn pod_rows_follow_the_columns() {
        let pod = json!({
            "metadata": {"name": "demo", "namespace": "team", "creationTimestamp": "2024-01-09T23:59:55Z", "labels": {"b": "2", "a": "1"}},
            "spec": {"nodeName": "node-1", "containers": [{"name": "a"}]},
            "status": {"phase": "Running", "podIP": "10.0.0.5", "containerStatuses": [
                {"name": "a", "ready": true, "restartCount": 0, "state": {"running": {}}}
            ]}
        });
        let columns = Columns {
            kind: &POD,
            wide: true,
            namespace: true,
            labels: true,
        };
        assert_eq!(columns.headers()[..3], ["NAMESPACE", "NAME", "READY"]);
        assert_eq!(
            columns.row(&pod, now()),
            [
                "team", "demo", "1/1", "Running", "0", "5s", "10.0.0.5", "node-1", "<none>",
                "<none>", "a=1,b=2"
            ]
        );
    }

    #[test]
    fn node_rows_show_readiness_and_roles() {
        let node = json!({
            "metadata": {"name": "n1", "creationTimestamp": "2024-01-08T00:00:00Z",
                         "labels": {"node-role.kubernetes.io/control-plane": ""}},
            "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "Ready", "status": "True"}], "nodeInfo": {"kubeletVersion": "v0.1.0"}}
        });
        let columns = Columns {
            kind: &NODE,
            wide: false,
            namespace: false,
            labels: false,
        };
        assert_eq!(
            columns.row(&node, now()),
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
    fn deployment_rows_show_ready_of_desired_and_wide_images() {
        let deployment = json!({
            "metadata": {"name": "web", "creationTimestamp": "2024-01-09T23:00:00Z"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"spec": {"containers": [{"name": "c", "image": "web.wasm"}]}}},
            "status": {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}
        });
        let columns = Columns {
            kind: &super::super::kinds::DEPLOYMENT,
            wide: true,
            namespace: false,
            labels: false,
        };
        assert_eq!(
            columns.headers(),
            [
                "NAME",
                "READY",
                "UP-TO-DATE",
                "AVAILABLE",
                "AGE",
                "CONTAINERS",
                "IMAGES",
                "SELECTOR"
            ]
        );
        assert_eq!(
            columns.row(&deployment, now()),
            ["web", "2/3", "3", "2", "60m", "c", "web.wasm", "app=web"]
        );
    }

    #[test]
    fn replica_set_rows_read_a_missing_status_as_zero() {
        let replica_set = json!({
            "metadata": {"name": "web-abc", "creationTimestamp": "2024-01-09T23:59:00Z"},
            "spec": {"replicas": 2}
        });
        let columns = Columns {
            kind: &super::super::kinds::REPLICA_SET,
            wide: false,
            namespace: false,
            labels: false,
        };
        assert_eq!(
            columns.row(&replica_set, now()),
            ["web-abc", "2", "0", "0", "60s"]
        );
    }

    #[test]
    fn event_rows_name_the_object() {
        let event = json!({
            "metadata": {"name": "e1", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "demo"},
            "reason": "Started", "type": "Normal", "message": "Started container writer",
            "lastTimestamp": "2024-01-09T23:58:00Z"
        });
        let columns = Columns {
            kind: &EVENT,
            wide: false,
            namespace: false,
            labels: false,
        };
        assert_eq!(
            columns.row(&event, now()),
            [
                "2m",
                "Normal",
                "Started",
                "pod/demo",
                "Started container writer"
            ]
        );
    }
}
