//! The garbage collector: deletes dependents whose owners are gone and finishes Foreground and Orphan deletions.
//!
//! Level-triggered: a sweep takes a snapshot of every collected resource, builds the owner
//! uid → dependents index from `metadata.ownerReferences` and judges every object, so an
//! owner deleted while the collector was down is handled on its first pass. Between sweeps,
//! watches keep a mirror of the ownership graph (`graph`) and wake a pass on each burst of
//! changes that judges only the objects those changes concern; the periodic sweep re-lists
//! from the store in case the mirror missed anything. Events are not collected: they never
//! own nor are owned, and there are many of them.

mod graph;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::api::kinds::EVENTS;
use crate::api::objects::{FOREGROUND_FINALIZER, ORPHAN_FINALIZER, PropagationPolicy, take_items};
use crate::api::watch::follow;
use crate::api::{Api, ApiError, DeleteOptions, ListOptions, Part, Resource};

/// How often the whole cluster is re-listed even when nothing was seen to change.
const SWEEP: Duration = Duration::from_secs(30);
/// How long a pass waits after a wake-up, so a burst of changes costs one pass.
const SETTLE: Duration = Duration::from_millis(100);
/// How long after a failed pass the next one comes.
const RETRY: Duration = Duration::from_secs(1);

/// The ownership graph as the watches have seen it.
type Mirror = Arc<Mutex<graph::Graph>>;

/// The resources the collector looks after: every kind served when it starts.
fn collected(api: &Api) -> impl Iterator<Item = &'static Resource> + use<> {
    api.registry().all().into_iter().filter(|r| **r != EVENTS)
}

/// Runs the collector until `shutdown`.
pub async fn run(api: Arc<Api>, shutdown: CancellationToken) {
    let wake = Arc::new(Notify::new());
    let mirror: Mirror = Arc::default();
    for resource in collected(&api) {
        let (api, wake, shutdown) = (api.clone(), wake.clone(), shutdown.clone());
        let mirror = mirror.clone();
        tokio::spawn(async move {
            follow(&api, resource, ListOptions::default(), &shutdown, |event| {
                lock(&mirror).observe(resource, event);
                wake.notify_one();
            })
            .await;
        });
    }
    let mut listed_at: Option<Instant> = None;
    loop {
        let sweep = listed_at.is_none_or(|at| at.elapsed() >= SWEEP);
        if sweep {
            listed_at = Some(Instant::now());
        }
        // A sweep reads every object: on a thread of its own, not on an async worker.
        let passed = {
            let (api, mirror) = (api.clone(), mirror.clone());
            tokio::task::spawn_blocking(move || pass(&api, &mirror, sweep)).await
        };
        let failed = match passed {
            Ok(failed) => failed,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(_) => return, // the runtime is shutting down
        };
        if let Some(error) = failed {
            tracing::warn!(%error, sweep, "garbage collection pass failed; retrying");
            wake.notify_one();
            tokio::time::sleep(RETRY).await;
        }
        tokio::select! {
            _ = wake.notified() => tokio::time::sleep(SETTLE).await,
            _ = tokio::time::sleep(SWEEP) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// One pass, over everything listed afresh when `sweep`, else over what the mirror saw
/// change; why it failed, if it did.
fn pass(api: &Api, mirror: &Mirror, sweep: bool) -> Option<ApiError> {
    let pass = if sweep {
        Pass::listed(api)
    } else {
        Ok(lock(mirror).take_changed())
    };
    match pass {
        Ok(pass) => pass.collect(api).err().inspect(|_| {
            // What this pass had to judge is judged again by the next one.
            lock(mirror).judge_again(pass.judged().map(Node::uid));
        }),
        Err(error) => Some(error),
    }
}

fn lock(mirror: &Mirror) -> std::sync::MutexGuard<'_, graph::Graph> {
    mirror.lock().unwrap_or_else(|p| p.into_inner())
}

/// One object of the snapshot a pass works from.
#[derive(Clone)]
struct Node {
    resource: &'static Resource,
    value: Arc<Value>,
}

impl Node {
    fn uid(&self) -> &str {
        self.value["metadata"]["uid"].as_str().unwrap_or_default()
    }

    fn name(&self) -> &str {
        self.value["metadata"]["name"].as_str().unwrap_or_default()
    }

    fn namespace(&self) -> Option<&str> {
        self.value["metadata"]["namespace"].as_str()
    }

    fn marked(&self) -> bool {
        self.value["metadata"]["deletionTimestamp"].is_string()
    }

    fn has_finalizer(&self, finalizer: &str) -> bool {
        self.value["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|list| list.iter().any(|f| f == finalizer))
    }

    fn deleting_in_foreground(&self) -> bool {
        self.marked() && self.has_finalizer(FOREGROUND_FINALIZER)
    }

    fn owner_references(&self) -> impl Iterator<Item = &Value> {
        self.value["metadata"]["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
    }

    fn owner_uids(&self) -> impl Iterator<Item = &str> {
        self.owner_references()
            .filter_map(|owner| owner["uid"].as_str())
    }
}

/// A snapshot of the cluster, or of the part of it a pass judges, and its ownership graph.
struct Pass {
    /// The objects judged come first; those after them are there to judge them by.
    nodes: Vec<Node>,
    judged: usize,
    by_uid: HashMap<String, usize>,
    /// Owner uid → indices of the objects that name it in their ownerReferences.
    dependents: HashMap<String, Vec<usize>>,
}

impl Pass {
    /// A snapshot listed from the store.
    fn listed(api: &Api) -> Result<Self, ApiError> {
        let mut nodes = Vec::new();
        for resource in collected(api) {
            let mut list = api.list(resource, None, &ListOptions::default())?;
            nodes.extend(take_items(&mut list).into_iter().map(|value| Node {
                resource,
                value: Arc::new(value),
            }));
        }
        Ok(Self::index(nodes))
    }

    /// A pass judging all of `nodes`.
    fn index(nodes: Vec<Node>) -> Self {
        let judged = nodes.len();
        Self::judging_first(nodes, judged)
    }

    /// A pass judging the first `judged` of `nodes`.
    fn judging_first(nodes: Vec<Node>, judged: usize) -> Self {
        let mut by_uid = HashMap::new();
        let mut dependents: HashMap<String, Vec<usize>> = HashMap::new();
        for (index, node) in nodes.iter().enumerate() {
            by_uid.insert(node.uid().to_string(), index);
            for owner in node.owner_uids() {
                dependents.entry(owner.to_string()).or_default().push(index);
            }
        }
        Pass {
            nodes,
            judged,
            by_uid,
            dependents,
        }
    }

    fn judged(&self) -> impl Iterator<Item = &Node> {
        self.nodes[..self.judged].iter()
    }

    fn collect(&self, api: &Api) -> Result<(), ApiError> {
        for (index, node) in self.judged().enumerate() {
            if node.marked() && node.has_finalizer(ORPHAN_FINALIZER) {
                self.orphan_dependents(api, node)?;
            }
            if node.deleting_in_foreground() {
                self.delete_in_foreground(api, index)?;
            }
            self.collect_if_ownerless(api, node)?;
        }
        Ok(())
    }

    fn dependents_of(&self, uid: &str) -> impl Iterator<Item = &Node> {
        self.dependents
            .get(uid)
            .into_iter()
            .flatten()
            .map(|&index| &self.nodes[index])
    }

    /// Orphan: strips the owner's uid from its dependents, then lets the owner go.
    fn orphan_dependents(&self, api: &Api, owner: &Node) -> Result<(), ApiError> {
        let uid = owner.uid();
        for dependent in self.dependents_of(uid) {
            let dead = HashSet::from([uid.to_string()]);
            ignore_gone(drop_owner_references(api, dependent, &dead))?;
        }
        ignore_gone(remove_finalizer(api, owner, ORPHAN_FINALIZER))
    }

    /// Foreground: deletes the dependents, and lets the owner go once no blocking one remains.
    fn delete_in_foreground(&self, api: &Api, index: usize) -> Result<(), ApiError> {
        let owner = &self.nodes[index];
        let options = DeleteOptions {
            propagation_policy: PropagationPolicy::Foreground,
            ..Default::default()
        };
        for dependent in self.dependents_of(owner.uid()) {
            if !dependent.marked() {
                ignore_gone(delete(api, dependent, &options))?;
            }
        }
        if self.blocking(index).next().is_none() || self.waits_on_itself(index) {
            ignore_gone(remove_finalizer(api, owner, FOREGROUND_FINALIZER))?;
        }
        Ok(())
    }

    /// The dependents of `index` that block its deletion.
    fn blocking(&self, index: usize) -> impl Iterator<Item = usize> + '_ {
        let uid = self.nodes[index].uid();
        self.dependents
            .get(uid)
            .into_iter()
            .flatten()
            .copied()
            .filter(move |&d| {
                self.nodes[d].owner_references().any(|owner| {
                    owner["uid"].as_str() == Some(uid) && owner["blockOwnerDeletion"] == true
                })
            })
    }

    /// Whether `start` waits, through dependents also deleted in the foreground, on itself: a
    /// cycle that would never finish, broken by letting `start` go.
    fn waits_on_itself(&self, start: usize) -> bool {
        let mut seen = HashSet::new();
        let mut pending: Vec<usize> = self.blocking(start).collect();
        while let Some(index) = pending.pop() {
            if index == start {
                return true;
            }
            if seen.insert(index) && self.nodes[index].deleting_in_foreground() {
                pending.extend(self.blocking(index));
            }
        }
        false
    }

    /// Background: a dependent whose owners are all gone is deleted; one with a live owner left
    /// only loses the references to the dead ones.
    fn collect_if_ownerless(&self, api: &Api, node: &Node) -> Result<(), ApiError> {
        let dead: HashSet<String> = node
            .owner_references()
            .filter(|owner| !self.owner_alive(api, node, owner))
            .filter_map(|owner| owner["uid"].as_str().map(str::to_string))
            .collect();
        if dead.is_empty() {
            return Ok(());
        }
        let live = node
            .owner_references()
            .filter(|owner| owner["uid"].as_str().is_some_and(|uid| !dead.contains(uid)))
            .count();
        if live > 0 {
            ignore_gone(drop_owner_references(api, node, &dead))
        } else if !node.marked() {
            ignore_gone(delete(api, node, &DeleteOptions::default()))
        } else {
            Ok(())
        }
    }

    /// An owner missing from the snapshot is looked up again before its dependents are touched:
    /// the snapshot lists resources one after another, so an owner created meanwhile may be
    /// missing from it.
    fn owner_alive(&self, api: &Api, dependent: &Node, owner: &Value) -> bool {
        let Some(uid) = owner["uid"].as_str() else {
            return true;
        };
        if self.by_uid.contains_key(uid) {
            return true;
        }
        let kind = owner["kind"].as_str().unwrap_or_default();
        let served = api.registry().all();
        let Some(resource) = served.into_iter().find(|r| r.kind == kind) else {
            return false;
        };
        let namespace = dependent.namespace().filter(|_| resource.namespaced);
        let name = owner["name"].as_str().unwrap_or_default();
        match api.get(resource, namespace, name) {
            Ok(found) => found["metadata"]["uid"].as_str() == Some(uid),
            Err(ApiError::NotFound { .. }) => false,
            Err(_) => true,
        }
    }
}

fn delete(api: &Api, node: &Node, options: &DeleteOptions) -> Result<Value, ApiError> {
    let options = DeleteOptions {
        precondition_uid: Some(node.uid().to_string()),
        ..options.clone()
    };
    api.delete(node.resource, node.namespace(), node.name(), &options)
}

/// Rewrites the object without the ownerReferences whose uid is in `dead`.
fn drop_owner_references(
    api: &Api,
    node: &Node,
    dead: &HashSet<String>,
) -> Result<Value, ApiError> {
    edit(api, node, |metadata| {
        if let Some(owners) = metadata
            .get_mut("ownerReferences")
            .and_then(Value::as_array_mut)
        {
            owners.retain(|o| o["uid"].as_str().is_none_or(|uid| !dead.contains(uid)));
        }
    })
}

fn remove_finalizer(api: &Api, node: &Node, finalizer: &str) -> Result<Value, ApiError> {
    edit(api, node, |metadata| {
        if let Some(list) = metadata.get_mut("finalizers").and_then(Value::as_array_mut) {
            list.retain(|f| f != finalizer);
        }
    })
}

/// Reads the object afresh, changes its metadata and writes it back; a conflict is left for
/// the next pass.
fn edit(api: &Api, node: &Node, change: impl FnOnce(&mut Value)) -> Result<Value, ApiError> {
    let mut current = api.get(node.resource, node.namespace(), node.name())?;
    if current["metadata"]["uid"].as_str() != Some(node.uid()) {
        return Ok(current);
    }
    change(&mut current["metadata"]);
    api.update(
        node.resource,
        node.namespace(),
        node.name(),
        current,
        Part::Main,
    )
}

/// An object that vanished or changed under us is the next pass's business.
fn ignore_gone(result: Result<Value, ApiError>) -> Result<(), ApiError> {
    match result {
        Ok(_) | Err(ApiError::NotFound { .. } | ApiError::Conflict { .. }) => Ok(()),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::kinds::REPLICA_SETS;

    /// A ReplicaSet `uid` owned (blocking) by `owners`, being deleted in the foreground when
    /// `foreground`.
    fn node(uid: &str, owners: &[&str], foreground: bool) -> Node {
        let refs: Vec<Value> = owners
            .iter()
            .map(|o| json!({"kind": "ReplicaSet", "name": o, "uid": o, "blockOwnerDeletion": true}))
            .collect();
        let mut value = json!({"metadata": {"name": uid, "uid": uid, "ownerReferences": refs}});
        if foreground {
            value["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
            value["metadata"]["finalizers"] = json!([FOREGROUND_FINALIZER]);
        }
        Node {
            resource: &REPLICA_SETS,
            value: Arc::new(value),
        }
    }

    #[test]
    fn an_owner_and_dependent_owning_each_other_wait_on_themselves() {
        let pass = Pass::index(vec![node("a", &["b"], true), node("b", &["a"], true)]);
        assert!(pass.waits_on_itself(0));
        assert!(pass.waits_on_itself(1));
    }

    #[test]
    fn a_chain_without_a_cycle_waits_on_its_dependents() {
        let pass = Pass::index(vec![
            node("a", &[], true),
            node("b", &["a"], true),
            node("c", &["b"], false),
        ]);
        assert!(!pass.waits_on_itself(0));
        assert_eq!(pass.blocking(0).collect::<Vec<_>>(), vec![1]);
        assert_eq!(pass.blocking(1).collect::<Vec<_>>(), vec![2]);
        assert_eq!(pass.blocking(2).count(), 0);
    }

    #[test]
    fn a_cycle_through_a_dependent_not_deleted_in_the_foreground_is_not_followed() {
        let pass = Pass::index(vec![node("a", &["b"], true), node("b", &["a"], false)]);
        assert!(!pass.waits_on_itself(0));
    }
}
