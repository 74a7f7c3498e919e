//! The collector's mirror of the ownership graph, kept by its watches, and the objects each
//! change may have affected: a pass from the mirror judges those alone, so its cost follows
//! the changes, not the size of the cluster (Kubernetes' graph builder and its work queues).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::{Node, Pass};
use crate::api::Resource;
use crate::api::watch::WatchEvent;

/// Every object the watches have seen, with its owner edges, and what changed since the last
/// pass.
#[derive(Default)]
pub(super) struct Graph {
    nodes: HashMap<String, Node>,
    /// Owner uid → the uids of the objects naming it in their ownerReferences (the owner may
    /// be gone: that is how its orphans are found).
    dependents: HashMap<String, HashSet<String>>,
    /// The uids whose objects the next pass judges again.
    changed: HashSet<String>,
}

impl Graph {
    /// Takes in one watch event and notes whom it may concern:
    /// - the object itself;
    /// - once it is gone, its dependents (their owner may have been their last) and its
    ///   owners (a foreground deletion may have waited on it);
    /// - while it lives, its owners that are being deleted (they wait on their dependents).
    pub fn observe(&mut self, resource: &'static Resource, event: WatchEvent) {
        let node = Node {
            resource,
            value: Arc::new(event.object),
        };
        let uid = node.uid().to_string();
        self.unlink(&uid);
        if event.kind == "DELETED" {
            let dependents = self.dependents.get(&uid).into_iter().flatten();
            self.changed.extend(dependents.cloned());
            self.changed.extend(node.owner_uids().map(str::to_string));
            return;
        }
        for owner in node.owner_uids() {
            let dependents = self.dependents.entry(owner.to_string()).or_default();
            dependents.insert(uid.clone());
            if self.nodes.get(owner).is_some_and(Node::marked) {
                self.changed.insert(owner.to_string());
            }
        }
        self.changed.insert(uid.clone());
        self.nodes.insert(uid, node);
    }

    /// Forgets the object `uid` and its edges to its owners.
    fn unlink(&mut self, uid: &str) {
        let Some(old) = self.nodes.remove(uid) else {
            return;
        };
        for owner in old.owner_uids() {
            if let Some(dependents) = self.dependents.get_mut(owner) {
                dependents.remove(uid);
                if dependents.is_empty() {
                    self.dependents.remove(owner);
                }
            }
        }
    }

    /// A pass over what changed since the last one, and what judging it needs: each changed
    /// object's owners and dependents, and for a foreground deletion every dependent it may
    /// wait on, down its chain of foreground deletions.
    pub fn take_changed(&mut self) -> Pass {
        let judged: Vec<String> = self
            .changed
            .drain()
            .filter(|uid| self.nodes.contains_key(uid))
            .collect();
        let mut context: HashSet<&str> = HashSet::new();
        let mut chains: Vec<&str> = Vec::new();
        for uid in &judged {
            let node = &self.nodes[uid];
            context.extend(node.owner_uids().filter(|o| self.nodes.contains_key(*o)));
            context.extend(self.dependents_of(uid));
            if node.deleting_in_foreground() {
                chains.push(uid);
            }
        }
        let mut followed: HashSet<&str> = HashSet::new();
        while let Some(uid) = chains.pop() {
            if !followed.insert(uid) {
                continue;
            }
            for dependent in self.dependents_of(uid) {
                context.insert(dependent);
                if self.nodes[dependent].deleting_in_foreground() {
                    chains.push(dependent);
                }
            }
        }
        for uid in &judged {
            context.remove(uid.as_str());
        }
        let judged_count = judged.len();
        let nodes = judged
            .iter()
            .map(String::as_str)
            .chain(context)
            .map(|uid| self.nodes[uid].clone())
            .collect();
        Pass::judging_first(nodes, judged_count)
    }

    /// Has the next pass judge `uids` again (a pass that failed part way).
    pub fn judge_again<'a>(&mut self, uids: impl Iterator<Item = &'a str>) {
        self.changed.extend(uids.map(str::to_string));
    }

    /// The uids of the live objects naming `owner` in their ownerReferences.
    fn dependents_of(&self, owner: &str) -> impl Iterator<Item = &str> {
        self.dependents
            .get(owner)
            .into_iter()
            .flatten()
            .map(String::as_str)
            .filter(|uid| self.nodes.contains_key(*uid))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::api::kinds::PODS;
    use crate::api::objects::FOREGROUND_FINALIZER;

    fn object(uid: &str, owners: &[&str]) -> Value {
        let refs: Vec<Value> = owners
            .iter()
            .map(|o| json!({"kind": "ReplicaSet", "name": o, "uid": o, "blockOwnerDeletion": true}))
            .collect();
        json!({"metadata": {"name": uid, "uid": uid, "ownerReferences": refs}})
    }

    fn deleting_in_foreground(mut object: Value) -> Value {
        object["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        object["metadata"]["finalizers"] = json!([FOREGROUND_FINALIZER]);
        object
    }

    fn observe(graph: &mut Graph, kind: &'static str, object: Value) {
        graph.observe(&PODS, WatchEvent { kind, object });
    }

    /// The uids a pass judges, sorted, and how many objects it holds in all.
    fn judged(pass: &Pass) -> (Vec<&str>, usize) {
        let mut uids: Vec<&str> = pass.judged().map(|n| n.uid()).collect();
        uids.sort();
        (uids, pass.nodes.len())
    }

    #[test]
    fn a_change_to_a_dependent_judges_it_alone_with_its_owner_beside_it() {
        let mut graph = Graph::default();
        observe(&mut graph, "ADDED", object("rs", &[]));
        for pod in ["a", "b", "c"] {
            observe(&mut graph, "ADDED", object(pod, &["rs"]));
        }
        graph.take_changed();
        observe(&mut graph, "MODIFIED", object("b", &["rs"]));
        assert_eq!(judged(&graph.take_changed()), (vec!["b"], 2));
        assert_eq!(
            judged(&graph.take_changed()),
            (vec![], 0),
            "nothing changed since"
        );
    }

    #[test]
    fn an_owner_gone_judges_its_dependents() {
        let mut graph = Graph::default();
        observe(&mut graph, "ADDED", object("rs", &[]));
        observe(&mut graph, "ADDED", object("a", &["rs"]));
        observe(&mut graph, "ADDED", object("b", &["rs"]));
        observe(&mut graph, "ADDED", object("other", &[]));
        graph.take_changed();
        observe(&mut graph, "DELETED", object("rs", &[]));
        assert_eq!(judged(&graph.take_changed()), (vec!["a", "b"], 2));
    }

    #[test]
    fn a_foreground_deletion_is_judged_again_when_a_dependent_changes_or_goes() {
        let mut graph = Graph::default();
        observe(
            &mut graph,
            "ADDED",
            deleting_in_foreground(object("rs", &[])),
        );
        observe(&mut graph, "ADDED", object("a", &["rs"]));
        observe(&mut graph, "ADDED", object("b", &["rs"]));
        graph.take_changed();
        observe(&mut graph, "MODIFIED", object("a", &["rs"]));
        assert_eq!(judged(&graph.take_changed()), (vec!["a", "rs"], 3));
        observe(&mut graph, "DELETED", object("a", &["rs"]));
        assert_eq!(judged(&graph.take_changed()), (vec!["rs"], 2));
    }

    #[test]
    fn a_foreground_deletion_sees_down_its_chain_of_foreground_dependents() {
        let mut graph = Graph::default();
        observe(
            &mut graph,
            "ADDED",
            deleting_in_foreground(object("d", &[])),
        );
        observe(
            &mut graph,
            "ADDED",
            deleting_in_foreground(object("rs", &["d"])),
        );
        observe(&mut graph, "ADDED", object("pod", &["rs"]));
        observe(&mut graph, "ADDED", object("unrelated", &[]));
        graph.take_changed();
        observe(
            &mut graph,
            "MODIFIED",
            deleting_in_foreground(object("d", &[])),
        );
        assert_eq!(judged(&graph.take_changed()), (vec!["d"], 3));
    }
}
