//! A node as the scheduler sees it: what its Node object offers, and what is placed on it.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{Node, Taint};
use serde_json::Value;

use super::pod_info::{Requests, Resources};

/// The taint Kubernetes' node lifecycle controller puts on a node whose Ready condition is False.
pub const NOT_READY_TAINT: &str = "node.kubernetes.io/not-ready";
/// ... and on one whose Ready condition is Unknown (or was never reported).
pub const UNREACHABLE_TAINT: &str = "node.kubernetes.io/unreachable";

/// The scheduling-relevant part of a Node object. A heartbeat that changes nothing here
/// leaves it equal, so it does not wake unschedulable pods.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeInfo {
    pub labels: BTreeMap<String, String>,
    /// The node's taints, plus the not-ready or unreachable taint when it is not Ready.
    pub taints: Vec<Taint>,
    /// Cordoned (`spec.unschedulable`).
    pub unschedulable: bool,
    pub allocatable: Resources,
    pub allocatable_pods: u64,
}

impl NodeInfo {
    /// Reads a stored Node; `None` when it does not decode.
    pub fn of(node: &Value) -> Option<NodeInfo> {
        let node: Node = serde::Deserialize::deserialize(node).ok()?;
        let spec = node.spec.unwrap_or_default();
        let status = node.status.unwrap_or_default();
        let ready = status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Ready")
            .map(|c| c.status.clone());
        let mut taints = spec.taints.unwrap_or_default();
        let readiness_taint = match ready.as_deref() {
            Some("True") => None,
            Some("False") => Some(NOT_READY_TAINT),
            _ => Some(UNREACHABLE_TAINT),
        };
        if let Some(key) = readiness_taint.filter(|k| !taints.iter().any(|t| t.key == *k)) {
            taints.push(Taint {
                key: key.into(),
                effect: "NoSchedule".into(),
                ..Default::default()
            });
        }
        let allocatable = status.allocatable;
        let pods = allocatable
            .as_ref()
            .and_then(|a| a.get("pods"))
            .and_then(|q| crate::api::quantity::parse(&q.0, 1.0))
            .unwrap_or(0);
        Some(NodeInfo {
            labels: node.metadata.labels.unwrap_or_default(),
            taints,
            unschedulable: spec.unschedulable.unwrap_or(false),
            allocatable: Resources::from_list(allocatable.as_ref()),
            allocatable_pods: pods,
        })
    }
}

/// What the pods placed on a node (bound, or assumed while their binding is written) take.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Usage {
    pub requests: Requests,
    pub pods: u64,
    /// Pods per controlling owner uid, for spreading.
    pub owners: HashMap<String, u32>,
}

impl Usage {
    pub fn add(&mut self, requests: Requests, owner: Option<&str>) {
        self.requests = self.requests.plus(requests);
        self.pods += 1;
        if let Some(owner) = owner {
            *self.owners.entry(owner.to_string()).or_default() += 1;
        }
    }

    pub fn remove(&mut self, requests: Requests, owner: Option<&str>) {
        self.requests = self.requests.minus(requests);
        self.pods = self.pods.saturating_sub(1);
        if let Some(owner) = owner
            && let Some(count) = self.owners.get_mut(owner)
        {
            *count -= 1;
            if *count == 0 {
                self.owners.remove(owner);
            }
        }
    }

    /// Pods of `owner` here; 0 for a pod without one.
    pub fn owned_by(&self, owner: Option<&str>) -> u32 {
        owner.and_then(|o| self.owners.get(o)).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(status: Value, spec: Value) -> NodeInfo {
        NodeInfo::of(&json!({"metadata": {"name": "n", "labels": {"zone": "a"}},
                             "spec": spec, "status": status}))
        .unwrap()
    }

    fn taint_keys(info: &NodeInfo) -> Vec<&str> {
        info.taints.iter().map(|t| t.key.as_str()).collect()
    }

    #[test]
    fn a_ready_node_offers_its_allocatable() {
        let info = node(
            json!({"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                   "capacity": {"cpu": "8", "memory": "16Gi", "pods": "220"},
                   "conditions": [{"type": "Ready", "status": "True"}]}),
            json!({"unschedulable": true, "taints": [{"key": "k", "value": "v", "effect": "NoSchedule"}]}),
        );
        assert_eq!(info.allocatable.milli_cpu, 4000);
        assert_eq!(info.allocatable.memory, 8 << 30);
        assert_eq!(info.allocatable_pods, 110);
        assert!(info.unschedulable);
        assert_eq!(taint_keys(&info), ["k"]);
        assert_eq!(info.labels["zone"], "a");
    }

    #[test]
    fn a_node_not_ready_is_tainted_as_the_node_lifecycle_controller_would() {
        let not_ready = node(
            json!({"conditions": [{"type": "Ready", "status": "False"}]}),
            json!({}),
        );
        assert_eq!(taint_keys(&not_ready), [NOT_READY_TAINT]);
        assert_eq!(not_ready.allocatable_pods, 0);
        let silent = node(json!({}), json!({}));
        assert_eq!(taint_keys(&silent), [UNREACHABLE_TAINT]);
        let already = node(
            json!({"conditions": [{"type": "Ready", "status": "Unknown"}]}),
            json!({"taints": [{"key": UNREACHABLE_TAINT, "effect": "NoExecute"}]}),
        );
        assert_eq!(taint_keys(&already), [UNREACHABLE_TAINT]);
    }

    #[test]
    fn usage_counts_pods_requests_and_owners_both_ways() {
        let requests = Requests {
            fit: Resources {
                milli_cpu: 100,
                memory: 1,
            },
            scoring: Resources {
                milli_cpu: 100,
                memory: 2,
            },
        };
        let mut usage = Usage::default();
        usage.add(requests, Some("rs"));
        usage.add(requests, None);
        assert_eq!((usage.pods, usage.owned_by(Some("rs"))), (2, 1));
        assert_eq!(usage.requests.scoring.memory, 4);
        usage.remove(requests, Some("rs"));
        usage.remove(requests, None);
        assert_eq!(usage, Usage::default());
        assert_eq!(usage.owned_by(None), 0);
    }
}
