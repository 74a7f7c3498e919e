//! The Deployment controller: rolls a Deployment's template out through ReplicaSets.
//!
//! Each Deployment owns one ReplicaSet per template it has had, named
//! `<deployment>-<pod-template-hash>`. A reconcile finds the one of the current template (the
//! new one; it may be an old one brought back, which is a rollback), takes one step of the
//! strategy — or, when only `replicas` changed or the Deployment is paused, resizes the
//! ReplicaSets proportionally — and writes the status. ReplicaSet events wake their owner.

pub mod hash;
mod ownership;
mod replica_sets;
pub mod rollout;
mod scaling;
pub mod status;

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::replica_set::pods::{controller_ref, is_terminating};
use crate::api::kinds::{DEPLOYMENTS, PODS, REPLICA_SETS};
use crate::api::{Api, ApiError, ListOptions, Part};
use crate::controller_runtime::cache::{Cache, Change, ObjectKey};
use crate::controller_runtime::informer::Informer;
use crate::controller_runtime::queue::{DEFAULT_BACKOFF, WorkQueue};
use crate::controller_runtime::reconcile::{Action, run_workers};
use crate::events::Recorder;
use rollout::{Size, Step};
use status::Progress;

/// How often Recreate looks whether the old ReplicaSets' terminating pods are gone.
const OLD_PODS_POLL: Duration = Duration::from_millis(250);

/// Deployments reconciled at once (kube-controller-manager's `--concurrent-deployment-syncs`).
const WORKERS: usize = 5;

pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
pub const CHANGE_CAUSE: &str = "kubernetes.io/change-cause";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("creating ReplicaSet {key} failed: {source}")]
    CreateReplicaSetFailed { key: ObjectKey, source: ApiError },
    #[error("ReplicaSet {key} exists for another template; trying the next hash")]
    HashCollided { key: ObjectKey },
    #[error("updating ReplicaSet {key} failed: {source}")]
    UpdateReplicaSetFailed { key: ObjectKey, source: ApiError },
    #[error("deleting ReplicaSet {key} failed: {source}")]
    DeleteReplicaSetFailed { key: ObjectKey, source: ApiError },
    #[error("updating Deployment {key} failed: {source}")]
    UpdateDeploymentFailed { key: ObjectKey, source: ApiError },
}

/// What every reconcile shares: the API, the two caches and the event recorder.
struct Context {
    api: Arc<Api>,
    deployments: Cache,
    replica_sets: Cache,
    recorder: Recorder,
}

/// Runs the controller until `shutdown`.
pub async fn run(api: Arc<Api>, shutdown: CancellationToken) {
    let deployment_informer = Informer::new(api.clone(), &DEPLOYMENTS);
    let replica_set_informer = Informer::new(api.clone(), &REPLICA_SETS);
    let context = Arc::new(Context {
        recorder: Recorder::new(api.clone(), "deployment-controller", ""),
        api,
        deployments: deployment_informer.cache(),
        replica_sets: replica_set_informer.cache(),
    });
    let queue = Arc::new(WorkQueue::new(DEFAULT_BACKOFF));
    let on_deployment = {
        let queue = queue.clone();
        move |change: &Change| {
            ObjectKey::of(change.object())
                .into_iter()
                .for_each(|k| queue.add(k))
        }
    };
    let on_replica_set = {
        let (queue, deployments) = (queue.clone(), context.deployments.clone());
        move |change: &Change| {
            let orphan_adopters = ownership::adopters(&deployments, change.object());
            owners_to_wake(change)
                .into_iter()
                .chain(orphan_adopters)
                .for_each(|k| queue.add(k))
        }
    };
    let workers = async {
        tokio::select! {
            _ = async { context.deployments.wait_synced().await; context.replica_sets.wait_synced().await } => {}
            _ = shutdown.cancelled() => return,
        }
        let report = context.clone();
        let context = context.clone();
        let reconcile = move |key| reconcile(context.clone(), key);
        let report_panic = move |key: &ObjectKey, message: &str| {
            if let Some(deployment) = report.deployments.get(key) {
                report.recorder.reconcile_panicked(&deployment, message);
            }
        };
        run_workers(
            "deployment",
            queue,
            WORKERS,
            shutdown.clone(),
            reconcile,
            report_panic,
        )
        .await;
    };
    tokio::join!(
        deployment_informer.run(shutdown.clone(), on_deployment),
        replica_set_informer.run(shutdown.clone(), on_replica_set),
        workers,
    );
}

/// The Deployments controlling a ReplicaSet before and after a change.
fn owners_to_wake(change: &Change) -> Vec<ObjectKey> {
    let versions = match change {
        Change::Applied { old, new } => [old.as_deref(), Some(&**new)],
        Change::Deleted(rs) => [None, Some(&**rs)],
    };
    let mut keys: Vec<ObjectKey> = versions
        .into_iter()
        .flatten()
        .filter_map(|rs| {
            let owner = controller_ref(rs).filter(|o| DEPLOYMENTS.is_kind_of(o))?;
            Some(ObjectKey::new(
                rs["metadata"]["namespace"].as_str(),
                owner["name"].as_str()?,
            ))
        })
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// A Deployment's ReplicaSets: the one of its current template, if any, and the others,
/// oldest first.
struct Family {
    new: Option<Arc<Value>>,
    old: Vec<Arc<Value>>,
}

impl Family {
    fn all(&self) -> Vec<Arc<Value>> {
        self.old.iter().chain(&self.new).cloned().collect()
    }
}

fn replicas(object: &Value) -> i32 {
    object
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1) as i32
}

fn annotation(object: &Value, name: &str) -> Option<i64> {
    object["metadata"]["annotations"][name]
        .as_str()?
        .parse()
        .ok()
}

fn size(rs: &Value) -> Size {
    Size {
        replicas: replicas(rs),
        available: rs
            .pointer("/status/availableReplicas")
            .and_then(Value::as_i64)
            .unwrap_or(0) as i32,
    }
}

/// Takes one step towards the Deployment's spec and writes its status.
async fn reconcile(context: Arc<Context>, key: ObjectKey) -> Result<Action, Error> {
    let Some(deployment) = context.deployments.get(&key) else {
        return Ok(Action::Done);
    };
    if is_terminating(&deployment) {
        return context.finish(&deployment, Progress::Untracked);
    }
    context.claim_replica_sets(&deployment)?;
    let family = context.family(&deployment);
    let paused = deployment["spec"]["paused"].as_bool() == Some(true);
    if paused || is_scaling_event(&deployment, &family) {
        let new = match &family.new {
            Some(rs) => Some(context.sync_revision(&deployment, rs, &family.old)?),
            None => None,
        };
        context.scale(&deployment, new.as_deref(), &family.old)?;
        if paused && status::is_complete(replicas(&deployment), &deployment, &deployment["status"])
        {
            context.clean_up(&deployment, &family.old)?;
        }
        return context.finish(&deployment, Progress::Untracked);
    }
    let recreate = deployment["spec"]["strategy"]["type"] == "Recreate";
    let (started, recheck) = if recreate {
        match context.recreate(&deployment, family)? {
            Recreate::Stepped(started) => (started, Action::Done),
            // No pod event reaches this controller: look again for the old pods to be gone.
            Recreate::AwaitingOldPods => (None, Action::RequeueAfter(OLD_PODS_POLL)),
        }
    } else {
        (context.roll(&deployment, family)?, Action::Done)
    };
    Ok(context
        .finish(&deployment, Progress::Tracked { started })?
        .min(recheck))
}

/// What a Recreate step did.
enum Recreate {
    /// Scaled (or had nothing to do); a new rollout may have started.
    Stepped(Option<(&'static str, String)>),
    /// Old pods are still terminating; the new ReplicaSet waits.
    AwaitingOldPods,
}

/// Whether `replicas` changed since the active ReplicaSets were last sized for it.
fn is_scaling_event(deployment: &Value, family: &Family) -> bool {
    let desired = i64::from(replicas(deployment));
    family
        .all()
        .iter()
        .filter(|rs| replicas(rs) > 0)
        .any(|rs| annotation(rs, DESIRED_REPLICAS).is_some_and(|d| d != desired))
}

impl Context {
    /// The ReplicaSets this Deployment controls, split into its template's and the others.
    fn family(&self, deployment: &Value) -> Family {
        let uid = &deployment["metadata"]["uid"];
        let namespace = deployment["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default();
        let mut owned: Vec<Arc<Value>> = self
            .replica_sets
            .list_in(namespace)
            .into_iter()
            .filter(|rs| controller_ref(rs).is_some_and(|o| &o["uid"] == uid))
            .collect();
        owned.sort_by(|a, b| {
            let created = |rs: &Value| {
                rs["metadata"]["creationTimestamp"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            };
            let name = |rs: &Value| {
                rs["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            };
            created(a).cmp(&created(b)).then(name(a).cmp(&name(b)))
        });
        let template = &deployment["spec"]["template"];
        let new = owned
            .iter()
            .position(|rs| hash::same_template(&rs["spec"]["template"], template))
            .map(|i| owned.remove(i));
        Family { new, old: owned }
    }

    /// One rolling-update step; returns the `Progressing` condition a new rollout starts with.
    fn roll(
        &self,
        deployment: &Value,
        family: Family,
    ) -> Result<Option<(&'static str, String)>, Error> {
        let (new, started) = self.new_replica_set(deployment, family.new.as_ref(), &family.old)?;
        let desired = replicas(deployment);
        let limits = rollout::limits(&deployment["spec"]["strategy"], desired);
        let old: Vec<Size> = family.old.iter().map(|rs| size(rs)).collect();
        match rollout::rolling_step(desired, limits, size(&new), &old) {
            Step::ScaleNew(n) => {
                self.scale_replica_set(deployment, &new, n)?;
            }
            Step::ScaleOld(sizes) => {
                for (rs, n) in family.old.iter().zip(sizes) {
                    if n != replicas(rs) {
                        self.scale_replica_set(deployment, rs, n)?;
                    }
                }
            }
            Step::Wait => {
                if status::is_complete(desired, deployment, &deployment["status"]) {
                    self.clean_up(deployment, &family.old)?;
                }
            }
        }
        Ok(started)
    }

    /// One step of Recreate: all old pods go, terminating ones included, before the new
    /// ReplicaSet is scaled up.
    fn recreate(&self, deployment: &Value, family: Family) -> Result<Recreate, Error> {
        let active: Vec<&Arc<Value>> = family.old.iter().filter(|rs| replicas(rs) > 0).collect();
        if !active.is_empty() {
            for rs in active {
                self.scale_replica_set(deployment, rs, 0)?;
            }
            return Ok(Recreate::Stepped(None));
        }
        let counted = family.old.iter().any(|rs| {
            rs.pointer("/status/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                > 0
        });
        if counted {
            // Their ReplicaSets' status changes when they go.
            return Ok(Recreate::Stepped(None));
        }
        // Once the new ReplicaSet has been scaled up the old pods were gone: no need to look.
        let scaled_up = family.new.as_ref().is_some_and(|rs| replicas(rs) > 0);
        if !scaled_up && self.old_pods_remain(deployment, &family.old) {
            return Ok(Recreate::AwaitingOldPods);
        }
        let (new, started) = self.new_replica_set(deployment, family.new.as_ref(), &family.old)?;
        let desired = replicas(deployment);
        if replicas(&new) != desired {
            self.scale_replica_set(deployment, &new, desired)?;
        } else if status::is_complete(desired, deployment, &deployment["status"]) {
            self.clean_up(deployment, &family.old)?;
        }
        Ok(Recreate::Stepped(started))
    }

    /// Whether pods of the old ReplicaSets still exist and have not finished, terminating
    /// ones included (they no longer count in their ReplicaSet's status).
    fn old_pods_remain(&self, deployment: &Value, old: &[Arc<Value>]) -> bool {
        let namespace = deployment["metadata"]["namespace"].as_str();
        let Ok(pods) = self.api.list(&PODS, namespace, &ListOptions::default()) else {
            return true;
        };
        let uids: Vec<&Value> = old.iter().map(|rs| &rs["metadata"]["uid"]).collect();
        pods["items"].as_array().into_iter().flatten().any(|pod| {
            controller_ref(pod).is_some_and(|o| uids.contains(&&o["uid"]))
                && !matches!(
                    pod["status"]["phase"].as_str(),
                    Some("Succeeded" | "Failed")
                )
        })
    }

    /// Computes and writes the status from the ReplicaSets as they are now.
    fn finish(&self, deployment: &Value, progress: Progress) -> Result<Action, Error> {
        let family = self.family(deployment);
        let (status, wait) = status::compute(
            deployment,
            family.new.as_deref(),
            &family.all(),
            progress,
            chrono::Utc::now(),
        );
        self.write_status(deployment, status)?;
        Ok(wait.map_or(Action::Done, Action::RequeueAfter))
    }

    /// Writes `status` through the status subresource unless it is already there.
    fn write_status(&self, deployment: &Value, status: Value) -> Result<(), Error> {
        if deployment.get("status") == Some(&status) {
            return Ok(());
        }
        let key = ObjectKey::of(deployment).expect("cached objects have names");
        let mut updated = deployment.clone();
        updated["status"] = status;
        // The status is this controller's alone: a concurrent spec change wakes another sync.
        if let Some(metadata) = updated["metadata"].as_object_mut() {
            metadata.remove("resourceVersion");
        }
        match self.api.update(
            &DEPLOYMENTS,
            key.namespace.as_deref(),
            &key.name,
            updated,
            Part::Status,
        ) {
            Ok(stored) => {
                self.deployments.apply(stored);
                Ok(())
            }
            Err(ApiError::NotFound { .. }) => Ok(()),
            Err(source) => Err(Error::UpdateDeploymentFailed { key, source }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn replica_set(owner: Option<(&str, &str)>, replicas: i64, desired: Option<&str>) -> Value {
        let mut rs = json!({"metadata": {"namespace": "default", "name": "web-abc"},
                            "spec": {"replicas": replicas}});
        if let Some((kind, name)) = owner {
            rs["metadata"]["ownerReferences"] =
                json!([{"kind": kind, "name": name, "uid": "u", "controller": true}]);
        }
        if let Some(desired) = desired {
            rs["metadata"]["annotations"] = json!({DESIRED_REPLICAS: desired});
        }
        rs
    }

    #[test]
    fn a_replica_set_change_wakes_the_deployments_controlling_it_before_and_after() {
        let wake = |change: Change| -> Vec<String> {
            owners_to_wake(&change)
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        let owned = |name: &str| Arc::new(replica_set(Some(("Deployment", name)), 1, None));
        assert_eq!(wake(Change::Deleted(owned("web"))), ["default/web"]);
        assert_eq!(
            wake(Change::Applied {
                old: Some(owned("a")),
                new: owned("b")
            }),
            ["default/a", "default/b"]
        );
        let other = Arc::new(replica_set(Some(("Other", "x")), 1, None));
        let orphan = Arc::new(replica_set(None, 1, None));
        assert!(
            wake(Change::Applied {
                old: Some(other),
                new: orphan
            })
            .is_empty()
        );
    }

    #[test]
    fn a_scaling_event_is_an_active_replica_set_sized_for_another_replica_count() {
        let deployment = json!({"spec": {"replicas": 5}});
        let family = |sets: Vec<Value>| Family {
            new: None,
            old: sets.into_iter().map(Arc::new).collect(),
        };
        let sized = |replicas, desired| replica_set(None, replicas, Some(desired));
        assert!(!is_scaling_event(&deployment, &family(vec![sized(5, "5")])));
        assert!(is_scaling_event(&deployment, &family(vec![sized(3, "3")])));
        assert!(
            !is_scaling_event(&deployment, &family(vec![sized(0, "3")])),
            "scaled-down sets do not count"
        );
        assert!(
            !is_scaling_event(&deployment, &family(vec![replica_set(None, 3, None)])),
            "nor sets without the annotation"
        );
    }
}
