//! The ReplicaSet controller: keeps `spec.replicas` pods matching `spec.selector` alive.
//!
//! Each reconcile claims the namespace's pods (adopting matching orphans, releasing owned pods
//! that no longer match), creates pods from the template or deletes the surplus, and writes
//! the status. Pod events wake the ReplicaSet that owns the pod, or for an orphan every
//! ReplicaSet whose selector matches it.

mod ownership;
pub mod pods;
pub mod status;

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::api::kinds::{PODS, REPLICA_SETS};
use crate::api::selectors::LabelSelector;
use crate::api::{Api, ApiError, DeleteOptions, Part};
use crate::controller_runtime::cache::{Cache, Change, ObjectKey};
use crate::controller_runtime::informer::Informer;
use crate::controller_runtime::queue::{DEFAULT_BACKOFF, WorkQueue};
use crate::controller_runtime::reconcile::{Action, run_workers};
use crate::events::{EventType, Recorder};

/// ReplicaSets reconciled at once (kube-controller-manager's `--concurrent-replicaset-syncs`).
const WORKERS: usize = 5;
/// Most pods one reconcile creates or deletes; the rest wait for the next.
const BURST: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("ReplicaSet {key} has an unusable selector: {source}")]
    SelectorInvalid { key: ObjectKey, source: ApiError },
    #[error("creating a pod for ReplicaSet {key} failed: {source}")]
    CreatePodFailed { key: ObjectKey, source: ApiError },
    #[error("deleting pod {pod} failed: {source}")]
    DeletePodFailed { pod: ObjectKey, source: ApiError },
    #[error("adopting or releasing pod {pod} failed: {source}")]
    ClaimPodFailed { pod: ObjectKey, source: ApiError },
    #[error("writing the status of ReplicaSet {key} failed: {source}")]
    StatusUpdateFailed { key: ObjectKey, source: ApiError },
}

/// What every reconcile shares: the API, the two caches and the event recorder.
struct Context {
    api: Arc<Api>,
    replica_sets: Cache,
    pods: Cache,
    recorder: Recorder,
}

/// Runs the controller until `shutdown`.
pub async fn run(api: Arc<Api>, shutdown: CancellationToken) {
    let replica_set_informer = Informer::new(api.clone(), &REPLICA_SETS);
    let pod_informer = Informer::new(api.clone(), &PODS);
    let context = Arc::new(Context {
        recorder: Recorder::new(api.clone(), "replicaset-controller", ""),
        api,
        replica_sets: replica_set_informer.cache(),
        pods: pod_informer.cache(),
    });
    let queue = Arc::new(WorkQueue::new(DEFAULT_BACKOFF));
    let on_replica_set = {
        let queue = queue.clone();
        move |change: &Change| {
            ObjectKey::of(change.object())
                .into_iter()
                .for_each(|key| queue.add(key))
        }
    };
    let on_pod = {
        let (queue, replica_sets) = (queue.clone(), context.replica_sets.clone());
        move |change: &Change| {
            replica_sets_to_wake(&replica_sets, change)
                .into_iter()
                .for_each(|key| queue.add(key))
        }
    };
    let workers = async {
        tokio::select! {
            _ = async { context.replica_sets.wait_synced().await; context.pods.wait_synced().await } => {}
            _ = shutdown.cancelled() => return,
        }
        let report = context.clone();
        let context = context.clone();
        let reconcile = move |key| reconcile(context.clone(), key);
        let report_panic = move |key: &ObjectKey, message: &str| {
            if let Some(replica_set) = report.replica_sets.get(key) {
                report.recorder.reconcile_panicked(&replica_set, message);
            }
        };
        run_workers(
            "replicaset",
            queue,
            WORKERS,
            shutdown.clone(),
            reconcile,
            report_panic,
        )
        .await;
    };
    tokio::join!(
        replica_set_informer.run(shutdown.clone(), on_replica_set),
        pod_informer.run(shutdown.clone(), on_pod),
        workers,
    );
}

/// The ReplicaSets a pod change concerns: its controller's before and after the change, or for
/// an orphan, those whose selector matches it.
fn replica_sets_to_wake(replica_sets: &Cache, change: &Change) -> Vec<ObjectKey> {
    let versions = match change {
        Change::Applied { old, new } => [old.as_deref(), Some(&**new)],
        Change::Deleted(pod) => [None, Some(&**pod)],
    };
    let mut keys = Vec::new();
    for pod in versions.into_iter().flatten() {
        let namespace = pod["metadata"]["namespace"].as_str();
        match pods::controller_ref(pod) {
            Some(owner) if REPLICA_SETS.is_kind_of(owner) => {
                keys.extend(
                    owner["name"]
                        .as_str()
                        .map(|name| ObjectKey::new(namespace, name)),
                );
            }
            Some(_) => {}
            None => {
                let candidates = replica_sets.list_in(namespace.unwrap_or_default());
                let matching = candidates
                    .iter()
                    .filter(|rs| selector_of(rs).is_ok_and(|s| s.matches(pod)));
                keys.extend(matching.filter_map(|rs| ObjectKey::of(rs)));
            }
        }
    }
    keys.sort();
    keys.dedup();
    keys
}

fn selector_of(replica_set: &Value) -> Result<LabelSelector, ApiError> {
    let selector = serde::Deserialize::deserialize(&replica_set["spec"]["selector"])
        .map_err(|e| ApiError::BadRequest(format!("spec.selector: {e}")))?;
    LabelSelector::from_k8s(&selector)
}

/// Brings one ReplicaSet's pods and status in line with its spec.
async fn reconcile(context: Arc<Context>, key: ObjectKey) -> Result<Action, Error> {
    let Some(replica_set) = context.replica_sets.get(&key) else {
        return Ok(Action::Done);
    };
    let selector = selector_of(&replica_set).map_err(|source| Error::SelectorInvalid {
        key: key.clone(),
        source,
    })?;
    let uid = replica_set["metadata"]["uid"].as_str().unwrap_or_default();
    let namespace = key.namespace.as_deref().unwrap_or_default();
    let deleting = pods::is_terminating(&replica_set);
    let claim = pods::claim(context.pods.list_in(namespace), uid, &selector, deleting);
    let mut outcome = Ok(());
    for pod in &claim.strays {
        outcome = outcome.and(context.release(pod, uid));
    }
    for pod in &claim.orphans {
        outcome = outcome.and(context.adopt(pod, &replica_set, &selector));
    }
    if !deleting && outcome.is_ok() {
        outcome = context.scale(&key, &replica_set, &selector);
    }
    let owned = pods::claim(context.pods.list_in(namespace), uid, &selector, true).owned;
    let (status, wait) = status::compute(&replica_set, &owned, chrono::Utc::now());
    context.write_status(&key, &replica_set, status)?;
    outcome?;
    Ok(match wait {
        // Timestamps have whole seconds: look a little after the pod must have become available.
        Some(wait) => Action::RequeueAfter(wait + Duration::from_millis(100)),
        None => Action::Done,
    })
}

impl Context {
    /// Creates or deletes pods until as many are active as `spec.replicas` asks.
    fn scale(
        &self,
        key: &ObjectKey,
        replica_set: &Value,
        selector: &LabelSelector,
    ) -> Result<(), Error> {
        let uid = replica_set["metadata"]["uid"].as_str().unwrap_or_default();
        let namespace = key.namespace.as_deref();
        let owned = pods::claim(
            self.pods.list_in(namespace.unwrap_or_default()),
            uid,
            selector,
            true,
        )
        .owned;
        let mut active: Vec<Arc<Value>> =
            owned.into_iter().filter(|p| pods::is_active(p)).collect();
        let wanted = replica_set
            .pointer("/spec/replicas")
            .and_then(Value::as_u64)
            .unwrap_or(1) as usize;
        if active.len() < wanted {
            return self.create_pods(key, replica_set, (wanted - active.len()).min(BURST));
        }
        pods::sort_for_deletion(&mut active);
        for pod in active.iter().take((active.len() - wanted).min(BURST)) {
            self.delete_pod(pod)?;
            let name = pod["metadata"]["name"].as_str().unwrap_or_default();
            self.recorder.record(
                replica_set,
                None,
                EventType::Normal,
                "SuccessfulDelete",
                &format!("Deleted pod: {name}"),
            );
        }
        Ok(())
    }

    /// Creates `count` pods from the template in one write; records each, and the first
    /// refusal.
    fn create_pods(&self, key: &ObjectKey, replica_set: &Value, count: usize) -> Result<(), Error> {
        let namespace = key.namespace.as_deref();
        let pods = (0..count)
            .map(|_| pods::from_template(replica_set))
            .collect();
        let outcomes = match self.api.create_many(&PODS, namespace, pods) {
            Ok(outcomes) => outcomes,
            Err(source) => vec![Err(source)],
        };
        let mut result = Ok(());
        for outcome in outcomes {
            match outcome {
                Ok(pod) => {
                    let name = pod["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    self.pods.apply(pod);
                    self.recorder.record(
                        replica_set,
                        None,
                        EventType::Normal,
                        "SuccessfulCreate",
                        &format!("Created pod: {name}"),
                    );
                }
                Err(source) if result.is_ok() => {
                    self.recorder.record(
                        replica_set,
                        None,
                        EventType::Warning,
                        "FailedCreate",
                        &format!("Error creating: {source}"),
                    );
                    result = Err(Error::CreatePodFailed {
                        key: key.clone(),
                        source,
                    });
                }
                Err(_) => {}
            }
        }
        result
    }

    fn delete_pod(&self, pod: &Value) -> Result<(), Error> {
        let key = ObjectKey::of(pod).expect("cached objects have names");
        let options = DeleteOptions {
            precondition_uid: pod["metadata"]["uid"].as_str().map(str::to_string),
            ..Default::default()
        };
        match self
            .api
            .delete(&PODS, key.namespace.as_deref(), &key.name, &options)
        {
            // A scheduled pod is marked for its node to stop; an unscheduled one is gone at once.
            Ok(deleted) if pods::is_terminating(&deleted) => self.pods.apply(deleted),
            Ok(deleted) => self.pods.delete(deleted),
            // Already gone, or replaced by another pod of the same name.
            Err(ApiError::NotFound { .. } | ApiError::Conflict { .. }) => None,
            Err(source) => return Err(Error::DeletePodFailed { pod: key, source }),
        };
        Ok(())
    }

    /// Writes `status` through the status subresource unless it is already there.
    fn write_status(
        &self,
        key: &ObjectKey,
        replica_set: &Value,
        status: Value,
    ) -> Result<(), Error> {
        if replica_set.get("status") == Some(&status) {
            return Ok(());
        }
        let mut updated = replica_set.clone();
        updated["status"] = status;
        // The status is this controller's alone: no resourceVersion, so a concurrent spec change
        // does not make it fail (the change wakes another reconcile anyway).
        if let Some(metadata) = updated["metadata"].as_object_mut() {
            metadata.remove("resourceVersion");
        }
        match self.api.update(
            &REPLICA_SETS,
            key.namespace.as_deref(),
            &key.name,
            updated,
            Part::Status,
        ) {
            Ok(stored) => {
                self.replica_sets.apply(stored);
                Ok(())
            }
            Err(ApiError::NotFound { .. }) => Ok(()),
            Err(source) => Err(Error::StatusUpdateFailed {
                key: key.clone(),
                source,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ListOptions;
    use crate::api::patch::PatchType;
    use serde_json::json;

    fn pod_count(api: &Api) -> usize {
        let list = api
            .list(&PODS, Some("default"), &ListOptions::default())
            .unwrap();
        list["items"].as_array().unwrap().len()
    }

    async fn wait_for_pods(api: &Api, count: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while pod_count(api) != count {
            assert!(
                tokio::time::Instant::now() < deadline,
                "never {count} pods, {} instead",
                pod_count(api)
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Without a node or scheduler: pods stay unscheduled, so surplus ones go at once.
    #[tokio::test]
    async fn replicas_are_created_and_deleted_to_the_count_without_overshooting() {
        let (_dir, api) = Api::scratch();
        let shutdown = CancellationToken::new();
        let controller = tokio::spawn(run(api.clone(), shutdown.clone()));
        let rs = json!({"metadata": {"name": "web"}, "spec": {"replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "c", "image": "c.wasm"}]}}}});
        api.create(&REPLICA_SETS, Some("default"), rs).unwrap();
        wait_for_pods(&api, 3).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(pod_count(&api), 3, "no more than asked for");

        let patch = json!({"spec": {"replicas": 1}});
        api.patch(
            &REPLICA_SETS,
            Some("default"),
            "web",
            &patch,
            PatchType::Merge,
            Part::Main,
        )
        .unwrap();
        wait_for_pods(&api, 1).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let rs = api.get(&REPLICA_SETS, Some("default"), "web").unwrap();
            if rs["status"]["replicas"] == 1 && rs["status"]["observedGeneration"] == 2 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "status never caught up: {}",
                rs["status"]
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        shutdown.cancel();
        controller.await.unwrap();
    }

    #[test]
    fn a_pod_change_wakes_its_old_and_new_controller_or_the_replica_sets_matching_an_orphan() {
        let replica_sets = Cache::default();
        for (name, app) in [("web", "web"), ("db", "db")] {
            replica_sets.apply(
                json!({"metadata": {"namespace": "default", "name": name, "resourceVersion": "1"},
                                      "spec": {"selector": {"matchLabels": {"app": app}}}}),
            );
        }
        let owned = |owner: &str| {
            Arc::new(
                json!({"metadata": {"namespace": "default", "name": "p", "labels": {"app": "web"},
                "ownerReferences": [{"kind": "ReplicaSet", "name": owner, "uid": "u", "controller": true}]}}),
            )
        };
        let orphan = Arc::new(
            json!({"metadata": {"namespace": "default", "name": "p", "labels": {"app": "web"}}}),
        );
        let wake = |change: Change| -> Vec<String> {
            replica_sets_to_wake(&replica_sets, &change)
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert_eq!(wake(Change::Deleted(owned("db"))), ["default/db"]);
        assert_eq!(
            wake(Change::Applied {
                old: None,
                new: orphan.clone()
            }),
            ["default/web"]
        );
        assert_eq!(
            wake(Change::Applied {
                old: Some(owned("db")),
                new: orphan
            }),
            ["default/db", "default/web"]
        );
    }
}
