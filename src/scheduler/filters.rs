//! The fit predicates (Kubernetes' filter plugins) and the message that explains a pod that
//! fits nowhere.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::{Taint, Toleration};

use super::node_info::{NodeInfo, Usage};
use super::pod_info::PodInfo;

/// The taint a cordoned node is treated as having; a pod tolerating it ignores the cordon.
const UNSCHEDULABLE_TAINT: &str = "node.kubernetes.io/unschedulable";

/// Why a node does not fit a pod, worded as Kubernetes' plugins word it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    Unschedulable,
    UntoleratedTaint { key: String, value: String },
    SelectorMismatch,
    TooManyPods,
    InsufficientCpu,
    InsufficientMemory,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Unschedulable => f.write_str("node(s) were unschedulable"),
            Reason::UntoleratedTaint { key, value } => {
                write!(f, "node(s) had untolerated taint {{{key}: {value}}}")
            }
            Reason::SelectorMismatch => {
                f.write_str("node(s) didn't match Pod's node affinity/selector")
            }
            Reason::TooManyPods => f.write_str("Too many pods"),
            Reason::InsufficientCpu => f.write_str("Insufficient cpu"),
            Reason::InsufficientMemory => f.write_str("Insufficient memory"),
        }
    }
}

/// Kubernetes' `Toleration.ToleratesTaint`: an empty effect matches every effect, an empty key
/// (with `Exists`) every key; `Equal` (the default operator) also compares the value.
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    let effect = toleration.effect.as_deref().unwrap_or_default();
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or_default();
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or_default() {
        "" | "Equal" => toleration.value.as_deref().unwrap_or_default() == value_of(taint),
        "Exists" => true,
        _ => false,
    }
}

fn value_of(taint: &Taint) -> &str {
    taint.value.as_deref().unwrap_or_default()
}

/// The first taint that keeps the pod off the node: one with effect NoSchedule or NoExecute
/// that none of its tolerations tolerates (PreferNoSchedule only affects scoring).
fn untolerated_taint<'a>(taints: &'a [Taint], tolerations: &[Toleration]) -> Option<&'a Taint> {
    taints.iter().find(|taint| {
        matches!(taint.effect.as_str(), "NoSchedule" | "NoExecute")
            && !tolerations.iter().any(|t| tolerates(t, taint))
    })
}

/// Why `pod` does not fit `node` with `usage` already on it; empty when it fits. As in
/// Kubernetes, the checks run in plugin order (NodeUnschedulable, TaintToleration, NodeAffinity,
/// NodeResourcesFit) and stop at the first that fails; the resource check names every resource
/// that is short.
pub fn unfit_reasons(node: &NodeInfo, usage: &Usage, pod: &PodInfo) -> Vec<Reason> {
    let cordon = Taint {
        key: UNSCHEDULABLE_TAINT.into(),
        effect: "NoSchedule".into(),
        ..Default::default()
    };
    if node.unschedulable && !pod.tolerations.iter().any(|t| tolerates(t, &cordon)) {
        return vec![Reason::Unschedulable];
    }
    if let Some(taint) = untolerated_taint(&node.taints, &pod.tolerations) {
        return vec![Reason::UntoleratedTaint {
            key: taint.key.clone(),
            value: value_of(taint).to_string(),
        }];
    }
    let selected = pod
        .node_selector
        .iter()
        .all(|(key, value)| node.labels.get(key) == Some(value));
    if !selected {
        return vec![Reason::SelectorMismatch];
    }
    insufficient_resources(node, usage, pod)
}

/// NodeResourcesFit: one more pod, and the pod's requests, within what is left of allocatable.
/// A resource the pod does not request is not checked.
fn insufficient_resources(node: &NodeInfo, usage: &Usage, pod: &PodInfo) -> Vec<Reason> {
    let mut reasons = Vec::new();
    if usage.pods + 1 > node.allocatable_pods {
        reasons.push(Reason::TooManyPods);
    }
    let (wanted, free) = (pod.requests.fit, node.allocatable.minus(usage.requests.fit));
    if wanted.milli_cpu > 0 && wanted.milli_cpu > free.milli_cpu {
        reasons.push(Reason::InsufficientCpu);
    }
    if wanted.memory > 0 && wanted.memory > free.memory {
        reasons.push(Reason::InsufficientMemory);
    }
    reasons
}

/// The `FailedScheduling` message, Kubernetes' `FitError`: every node's reasons counted, the
/// "count reason" strings sorted (as strings), e.g. `0/3 nodes are available: 1 node(s) had
/// untolerated taint {dedicated: gpu}, 2 Insufficient memory.`
pub fn fit_error<'a>(nodes: usize, reasons: impl IntoIterator<Item = &'a Reason>) -> String {
    if nodes == 0 {
        return "0/0 nodes are available: no nodes available to schedule pods.".into();
    }
    let mut histogram: BTreeMap<&Reason, usize> = BTreeMap::new();
    for reason in reasons {
        *histogram.entry(reason).or_default() += 1;
    }
    let mut counted: Vec<String> = histogram
        .into_iter()
        .map(|(reason, count)| format!("{count} {reason}"))
        .collect();
    counted.sort();
    format!("0/{nodes} nodes are available: {}.", counted.join(", "))
}

#[cfg(test)]
mod tests {
    use super::super::pod_info::{Requests, Resources};
    use super::*;
    use serde_json::json;

    fn taint(key: &str, value: &str, effect: &str) -> Taint {
        serde_json::from_value(json!({"key": key, "value": value, "effect": effect})).unwrap()
    }

    fn toleration(spec: serde_json::Value) -> Toleration {
        serde_json::from_value(spec).unwrap()
    }

    fn node() -> NodeInfo {
        NodeInfo {
            labels: [("disk".to_string(), "ssd".to_string())].into(),
            allocatable: Resources {
                milli_cpu: 1000,
                memory: 1 << 30,
            },
            allocatable_pods: 2,
            ..Default::default()
        }
    }

    fn pod_requesting(milli_cpu: u64, memory: u64) -> PodInfo {
        let fit = Resources { milli_cpu, memory };
        PodInfo {
            requests: Requests { fit, scoring: fit },
            ..Default::default()
        }
    }

    #[test]
    fn toleration_matching_follows_kubernetes() {
        let gpu = taint("dedicated", "gpu", "NoSchedule");
        let cases = [
            (
                json!({"key": "dedicated", "operator": "Equal", "value": "gpu"}),
                true,
            ),
            (json!({"key": "dedicated", "value": "gpu"}), true),
            (json!({"key": "dedicated", "value": "cpu"}), false),
            (json!({"key": "dedicated", "operator": "Exists"}), true),
            (json!({"key": "other", "operator": "Exists"}), false),
            (json!({"operator": "Exists"}), true),
            (json!({"operator": "Exists", "effect": "NoExecute"}), false),
            (
                json!({"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}),
                true,
            ),
            (
                json!({"key": "dedicated", "operator": "Lt", "value": "gpu"}),
                false,
            ),
        ];
        for (spec, expected) in cases {
            assert_eq!(
                tolerates(&toleration(spec.clone()), &gpu),
                expected,
                "{spec}"
            );
        }
        let bare = taint("node.kubernetes.io/unreachable", "", "NoSchedule");
        let equal_empty = json!({"key": "node.kubernetes.io/unreachable", "operator": "Equal"});
        assert!(tolerates(&toleration(equal_empty), &bare));
    }

    #[test]
    fn a_cordoned_node_is_skipped_unless_the_pod_tolerates_the_cordon() {
        let cordoned = NodeInfo {
            unschedulable: true,
            ..node()
        };
        let pod = PodInfo::default();
        assert_eq!(
            unfit_reasons(&cordoned, &Usage::default(), &pod),
            [Reason::Unschedulable]
        );
        let tolerant = PodInfo {
            tolerations: vec![toleration(
                json!({"key": UNSCHEDULABLE_TAINT, "operator": "Exists"}),
            )],
            ..pod
        };
        assert!(unfit_reasons(&cordoned, &Usage::default(), &tolerant).is_empty());
    }

    #[test]
    fn only_no_schedule_and_no_execute_taints_keep_a_pod_off() {
        let mut tainted = node();
        tainted.taints = vec![
            taint("soft", "x", "PreferNoSchedule"),
            taint("hard", "y", "NoExecute"),
        ];
        let reasons = unfit_reasons(&tainted, &Usage::default(), &PodInfo::default());
        let expected = Reason::UntoleratedTaint {
            key: "hard".into(),
            value: "y".into(),
        };
        assert_eq!(reasons, [expected]);
        let tolerant = PodInfo {
            tolerations: vec![toleration(json!({"key": "hard", "value": "y"}))],
            ..Default::default()
        };
        assert!(unfit_reasons(&tainted, &Usage::default(), &tolerant).is_empty());
    }

    #[test]
    fn every_selected_label_must_match() {
        let mut pod = PodInfo::default();
        pod.node_selector.insert("disk".into(), "ssd".into());
        assert!(unfit_reasons(&node(), &Usage::default(), &pod).is_empty());
        pod.node_selector.insert("gpu".into(), "true".into());
        assert_eq!(
            unfit_reasons(&node(), &Usage::default(), &pod),
            [Reason::SelectorMismatch]
        );
    }

    #[test]
    fn requests_must_fit_in_what_is_left_of_allocatable() {
        let mut usage = Usage::default();
        usage.add(pod_requesting(600, 512 << 20).requests, None);
        let fits = pod_requesting(400, 512 << 20);
        assert!(unfit_reasons(&node(), &usage, &fits).is_empty());
        let too_big = pod_requesting(401, (512 << 20) + 1);
        assert_eq!(
            unfit_reasons(&node(), &usage, &too_big),
            [Reason::InsufficientCpu, Reason::InsufficientMemory]
        );
        usage.add(pod_requesting(0, 0).requests, None);
        assert_eq!(
            unfit_reasons(&node(), &usage, &pod_requesting(0, 0)),
            [Reason::TooManyPods]
        );
    }

    #[test]
    fn a_pod_requesting_nothing_fits_an_overcommitted_node() {
        let mut usage = Usage::default();
        usage.add(pod_requesting(5000, 4 << 30).requests, None);
        assert!(unfit_reasons(&node(), &usage, &pod_requesting(0, 0)).is_empty());
    }

    #[test]
    fn the_fit_error_counts_reasons_and_sorts_them_as_strings() {
        let unreachable = Reason::UntoleratedTaint {
            key: "node.kubernetes.io/unreachable".into(),
            value: String::new(),
        };
        let reasons = [
            Reason::InsufficientMemory,
            unreachable,
            Reason::InsufficientMemory,
        ];
        assert_eq!(
            fit_error(3, &reasons),
            "0/3 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }, 2 Insufficient memory."
        );
        let mut many = vec![Reason::TooManyPods; 10];
        many.extend([Reason::InsufficientCpu, Reason::InsufficientCpu]);
        assert_eq!(
            fit_error(12, &many),
            "0/12 nodes are available: 10 Too many pods, 2 Insufficient cpu."
        );
    }

    #[test]
    fn without_nodes_the_message_says_so() {
        assert_eq!(
            fit_error(0, &[]),
            "0/0 nodes are available: no nodes available to schedule pods."
        );
    }
}
