//! The scheduler's picture of the cluster: the nodes, and the pods placed on each, fed by the
//! informers and, ahead of them, by the scheduler's own decisions ("assumed" pods).

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::filters::{fit_error, unfit_reasons};
use super::node_info::{NodeInfo, Usage};
use super::pod_info::{PodInfo, Requests};
use super::score::{Candidate, best, scores};
use crate::controller_runtime::cache::ObjectKey;

/// A pod counted on a node.
struct Placement {
    node: String,
    requests: Requests,
    owner: Option<String>,
    /// Decided by this scheduler but not yet seen bound: kept while the pod still looks unbound.
    assumed: bool,
}

/// Nodes by name (ordered, so diagnostics and ties are stable), usage per node name (also for
/// nodes not, or no longer, known), and where each counted pod is.
#[derive(Default)]
pub struct ClusterView {
    nodes: BTreeMap<String, NodeInfo>,
    usage: HashMap<String, Usage>,
    placements: HashMap<ObjectKey, Placement>,
}

/// The node a pod occupies: its `spec.nodeName`, unless it has finished (Succeeded or Failed
/// pods hold no resources).
fn occupied_node(pod: &Value) -> Option<&str> {
    let node = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty())?;
    let finished = matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    );
    (!finished).then_some(node)
}

impl ClusterView {
    /// Takes a node's state (`None`: deleted or unreadable). Returns whether anything
    /// scheduling looks at changed.
    pub fn set_node(&mut self, name: &str, node: Option<NodeInfo>) -> bool {
        match node {
            Some(node) => self.nodes.insert(name.to_string(), node.clone()) != Some(node),
            None => self.nodes.remove(name).is_some(),
        }
    }

    /// Takes the newest known state of a pod (`None`: deleted). Returns whether it freed room
    /// on a node (the pod is gone or finished), which may let a waiting pod fit.
    pub fn observe_pod(&mut self, key: &ObjectKey, pod: Option<&Value>) -> bool {
        let node = pod.and_then(occupied_node);
        match (self.placements.get_mut(key), node) {
            (Some(placement), Some(node)) if placement.node == node => {
                placement.assumed = false;
                false
            }
            (Some(placement), None) if placement.assumed && pod.is_some_and(is_unbound) => false,
            (_, node) => {
                let freed = self.unplace(key);
                if let (Some(node), Some(pod)) = (node, pod) {
                    self.place(key, node, &PodInfo::of(pod), false);
                }
                freed
            }
        }
    }

    /// Whether the pod is counted on a node (bound, or assumed).
    pub fn is_placed(&self, key: &ObjectKey) -> bool {
        self.placements.contains_key(key)
    }

    /// The highest-scoring nodes `pod` fits; or, when it fits none, the `FailedScheduling`
    /// message saying why.
    pub fn best_nodes(&self, pod: &PodInfo) -> Result<Vec<String>, String> {
        let empty = Usage::default();
        let mut reasons = Vec::new();
        let mut names = Vec::new();
        let mut candidates = Vec::new();
        for (name, node) in &self.nodes {
            let usage = self.usage.get(name).unwrap_or(&empty);
            let unfit = unfit_reasons(node, usage, pod);
            if !unfit.is_empty() {
                reasons.extend(unfit);
                continue;
            }
            names.push(name);
            candidates.push(Candidate {
                allocatable: node.allocatable,
                requested: usage.requests.scoring.plus(pod.requests.scoring),
                siblings: usage.owned_by(pod.owner.as_deref()),
            });
        }
        if candidates.is_empty() {
            return Err(fit_error(self.nodes.len(), &reasons));
        }
        Ok(best(&scores(&candidates))
            .into_iter()
            .map(|i| names[i].clone())
            .collect())
    }

    /// Counts the pod on `node` at once, before its binding is written, so the next decision
    /// sees it.
    pub fn assume(&mut self, key: &ObjectKey, node: &str, pod: &PodInfo) {
        self.unplace(key);
        self.place(key, node, pod, true);
    }

    /// Drops an assumption whose binding failed.
    pub fn forget(&mut self, key: &ObjectKey) {
        if self.placements.get(key).is_some_and(|p| p.assumed) {
            self.unplace(key);
        }
    }

    fn place(&mut self, key: &ObjectKey, node: &str, pod: &PodInfo, assumed: bool) {
        let usage = self.usage.entry(node.to_string()).or_default();
        usage.add(pod.requests, pod.owner.as_deref());
        let placement = Placement {
            node: node.to_string(),
            requests: pod.requests,
            owner: pod.owner.clone(),
            assumed,
        };
        self.placements.insert(key.clone(), placement);
    }

    fn unplace(&mut self, key: &ObjectKey) -> bool {
        let Some(placement) = self.placements.remove(key) else {
            return false;
        };
        if let Some(usage) = self.usage.get_mut(&placement.node) {
            usage.remove(placement.requests, placement.owner.as_deref());
            if usage.pods == 0 {
                self.usage.remove(&placement.node);
            }
        }
        true
    }
}

fn is_unbound(pod: &Value) -> bool {
    pod["spec"]["nodeName"].as_str().is_none_or(str::is_empty)
}

#[cfg(test)]
mod tests {
    use super::super::pod_info::Resources;
    use super::*;
    use serde_json::json;

    fn node(pods: u64) -> NodeInfo {
        NodeInfo {
            allocatable: Resources {
                milli_cpu: 4000,
                memory: 8 << 30,
            },
            allocatable_pods: pods,
            ..Default::default()
        }
    }

    fn view(nodes: &[&str], pods: u64) -> ClusterView {
        let mut view = ClusterView::default();
        for name in nodes {
            assert!(view.set_node(name, Some(node(pods))));
        }
        view
    }

    fn key(name: &str) -> ObjectKey {
        ObjectKey::new(Some("default"), name)
    }

    fn pod(node: &str, phase: &str) -> Value {
        json!({"metadata": {"name": "p", "namespace": "default"},
               "spec": {"nodeName": node, "containers": [{"name": "c",
                        "resources": {"requests": {"cpu": "1"}}}]},
               "status": {"phase": phase}})
    }

    fn owned_by(owner: &str) -> PodInfo {
        PodInfo {
            owner: Some(owner.into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_replica_sets_pods_spread_evenly_over_equal_nodes() {
        let mut view = view(&["a", "b", "c"], 110);
        for i in 0..6 {
            let pod = owned_by("rs");
            let chosen = view.best_nodes(&pod).unwrap()[0].clone();
            view.assume(&key(&format!("p{i}")), &chosen, &pod);
        }
        let counts: Vec<u32> = ["a", "b", "c"]
            .iter()
            .map(|n| view.usage[*n].owned_by(Some("rs")))
            .collect();
        assert_eq!(counts, [2, 2, 2]);
    }

    #[test]
    fn an_assumed_pod_counts_until_its_binding_fails() {
        let mut view = view(&["a"], 1);
        view.assume(&key("p"), "a", &PodInfo::default());
        assert_eq!(
            view.best_nodes(&PodInfo::default()),
            Err("0/1 nodes are available: 1 Too many pods.".into())
        );
        assert!(
            !view.observe_pod(&key("p"), Some(&pod("", "Pending"))),
            "a late event of the unbound pod keeps the assumption"
        );
        assert!(view.is_placed(&key("p")));
        view.forget(&key("p"));
        assert!(!view.is_placed(&key("p")));
        assert!(view.best_nodes(&PodInfo::default()).is_ok());
    }

    #[test]
    fn bound_pods_count_until_they_finish_or_go() {
        let mut view = view(&["a"], 10);
        assert!(!view.observe_pod(&key("p"), Some(&pod("a", "Running"))));
        assert_eq!(view.usage["a"].requests.fit.milli_cpu, 1000);
        assert!(!view.observe_pod(&key("p"), Some(&pod("a", "Running"))));
        assert_eq!(view.usage["a"].pods, 1, "seen twice, counted once");
        assert!(view.observe_pod(&key("p"), Some(&pod("a", "Succeeded"))));
        assert!(!view.usage.contains_key("a"));
        view.observe_pod(&key("p"), Some(&pod("a", "Running")));
        assert!(view.observe_pod(&key("p"), None));
        assert!(!view.is_placed(&key("p")));
    }

    #[test]
    fn an_assumed_pod_seen_bound_is_confirmed() {
        let mut view = view(&["a"], 10);
        view.assume(&key("p"), "a", &PodInfo::of(&pod("", "Pending")));
        assert!(!view.observe_pod(&key("p"), Some(&pod("a", "Pending"))));
        view.forget(&key("p"));
        assert!(
            view.is_placed(&key("p")),
            "confirmed, no longer forgettable"
        );
        assert_eq!(view.usage["a"].pods, 1);
    }

    #[test]
    fn only_changes_scheduling_looks_at_count_as_node_changes() {
        let mut view = view(&["a"], 10);
        assert!(!view.set_node("a", Some(node(10))), "a heartbeat");
        assert!(view.set_node("a", Some(node(11))));
        assert!(view.set_node("a", None));
        assert!(!view.set_node("a", None));
        assert_eq!(
            view.best_nodes(&PodInfo::default()),
            Err("0/0 nodes are available: no nodes available to schedule pods.".into())
        );
    }
}
