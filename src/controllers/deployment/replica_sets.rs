//! The Deployment controller's writes to ReplicaSets: creating the new one, carrying the
//! revision and annotations over, scaling, and deleting old ones beyond the history limit.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::{
    Context, DESIRED_REPLICAS, Error, MAX_REPLICAS, REVISION, annotation, hash, replicas, rollout,
};
use crate::api::kinds::{DEPLOYMENTS, REPLICA_SETS};
use crate::api::patch::PatchType;
use crate::api::{ApiError, DeleteOptions, Part};
use crate::controller_runtime::cache::ObjectKey;
use crate::controllers::replica_set::pods::{controller_ref, is_terminating};
use crate::events::EventType;

/// Deployment annotations that are not copied to its ReplicaSets.
const NOT_COPIED: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    "deployment.kubernetes.io/revision-history",
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
];

type Started = Option<(&'static str, String)>;

fn name(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or_default()
}

fn max_revision(old: &[Arc<Value>]) -> i64 {
    old.iter()
        .filter_map(|rs| annotation(rs, REVISION))
        .max()
        .unwrap_or(0)
}

/// The annotations the Deployment passes on (change-cause among them).
fn copied_annotations(deployment: &Value) -> Map<String, Value> {
    let mut copied = deployment["metadata"]["annotations"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    copied.retain(|k, _| !NOT_COPIED.contains(&k.as_str()));
    copied
}

/// The ReplicaSet a Deployment's current template runs in: `<deployment>-<hash>`, the hash
/// label added to its selector and template, controlled by the Deployment.
fn replica_set_of(deployment: &Value, size: i32, annotations: Map<String, Value>) -> Value {
    let collisions = deployment["status"]["collisionCount"]
        .as_u64()
        .map(|c| c as u32);
    let template_hash = hash::of_template(&deployment["spec"]["template"], collisions);
    let mut template = deployment["spec"]["template"].clone();
    template["metadata"]["labels"][hash::LABEL] = json!(template_hash);
    let mut selector = deployment["spec"]["selector"].clone();
    selector["matchLabels"][hash::LABEL] = json!(template_hash);
    json!({
        "apiVersion": REPLICA_SETS.api_version(), "kind": REPLICA_SETS.kind,
        "metadata": {
            "name": format!("{}-{template_hash}", name(deployment)),
            "namespace": deployment["metadata"]["namespace"],
            "labels": template["metadata"]["labels"],
            "annotations": annotations,
            "ownerReferences": [DEPLOYMENTS.controller_reference(deployment)],
        },
        "spec": {
            "replicas": size,
            "minReadySeconds": deployment["spec"]["minReadySeconds"].as_i64().unwrap_or(0),
            "selector": selector,
            "template": template,
        },
    })
}

impl Context {
    /// The ReplicaSet of the Deployment's template, created if there is none, with the next
    /// revision; returns it and the `Progressing` condition the rollout starts with, if new.
    pub(super) fn new_replica_set(
        &self,
        deployment: &Value,
        existing: Option<&Arc<Value>>,
        old: &[Arc<Value>],
    ) -> Result<(Arc<Value>, Started), Error> {
        if let Some(rs) = existing {
            let rs = self.sync_revision(deployment, rs, old)?;
            let started = deployment["status"]["conditions"]
                .as_array()
                .is_none_or(|c| !c.iter().any(|c| c["type"] == "Progressing"))
                .then(|| {
                    (
                        "FoundNewReplicaSet",
                        format!("Found new replica set {:?}", name(&rs)),
                    )
                });
            return Ok((rs, started));
        }
        let desired = replicas(deployment);
        let limits = rollout::limits(&deployment["spec"]["strategy"], desired);
        let size = if deployment["spec"]["strategy"]["type"] == "Recreate" {
            desired
        } else {
            let old_total: i32 = old.iter().map(|rs| replicas(rs)).sum();
            rollout::new_size(desired, limits, 0, old_total)
        };
        let mut annotations = copied_annotations(deployment);
        annotations.insert(REVISION.into(), json!((max_revision(old) + 1).to_string()));
        annotations.insert(DESIRED_REPLICAS.into(), json!(desired.to_string()));
        let max = desired + limits.max_surge;
        annotations.insert(MAX_REPLICAS.into(), json!(max.to_string()));
        let replica_set = replica_set_of(deployment, size, annotations);
        let rs_name = name(&replica_set).to_string();
        let namespace = deployment["metadata"]["namespace"].as_str();
        let key = ObjectKey::new(namespace, &rs_name);
        let created = match self.api.create(&REPLICA_SETS, namespace, replica_set) {
            Ok(created) => created,
            Err(ApiError::AlreadyExists { .. }) => {
                return self.claim_existing(deployment, key, old);
            }
            Err(source) => return Err(Error::CreateReplicaSetFailed { key, source }),
        };
        self.replica_sets.apply(created.clone());
        let message = format!("Scaled up replica set {rs_name} from 0 to {size}");
        self.recorder.record(
            deployment,
            None,
            EventType::Normal,
            "ScalingReplicaSet",
            &message,
        );
        self.sync_deployment_revision(deployment, &created)?;
        let started = Some((
            "NewReplicaSetCreated",
            format!("Created new replica set {rs_name:?}"),
        ));
        Ok((Arc::new(created), started))
    }

    /// A ReplicaSet of the new name exists: ours with this template (a cache behind the
    /// store), or another's, which is a hash collision — the next hash is tried.
    fn claim_existing(
        &self,
        deployment: &Value,
        key: ObjectKey,
        old: &[Arc<Value>],
    ) -> Result<(Arc<Value>, Started), Error> {
        let namespace = key.namespace.as_deref();
        let existing = self
            .api
            .get(&REPLICA_SETS, namespace, &key.name)
            .map_err(|source| Error::CreateReplicaSetFailed {
                key: key.clone(),
                source,
            })?;
        let ours =
            controller_ref(&existing).is_some_and(|o| o["uid"] == deployment["metadata"]["uid"]);
        if ours
            && hash::same_template(
                &existing["spec"]["template"],
                &deployment["spec"]["template"],
            )
        {
            self.replica_sets.apply(existing.clone());
            let rs = self.sync_revision(deployment, &Arc::new(existing), old)?;
            return Ok((rs, None));
        }
        let collisions = deployment["status"]["collisionCount"].as_i64().unwrap_or(0) + 1;
        let patch = json!({"status": {"collisionCount": collisions}});
        let deployment_key = ObjectKey::of(deployment).expect("cached objects have names");
        self.api
            .patch(
                &DEPLOYMENTS,
                namespace,
                &deployment_key.name,
                &patch,
                PatchType::Merge,
                Part::Status,
            )
            .map_err(|source| Error::UpdateDeploymentFailed {
                key: deployment_key,
                source,
            })?;
        Err(Error::HashCollided { key })
    }

    /// Gives the Deployment's ReplicaSet the next revision if an older one has a newer one (a
    /// rollback), the Deployment's annotations and `minReadySeconds`; the Deployment gets its
    /// revision.
    pub(super) fn sync_revision(
        &self,
        deployment: &Value,
        rs: &Arc<Value>,
        old: &[Arc<Value>],
    ) -> Result<Arc<Value>, Error> {
        let mut annotations = Map::new();
        for (k, v) in copied_annotations(deployment) {
            if rs["metadata"]["annotations"][&k] != v {
                annotations.insert(k, v);
            }
        }
        let next = max_revision(old) + 1;
        if annotation(rs, REVISION).is_none_or(|r| r < next) {
            annotations.insert(REVISION.into(), json!(next.to_string()));
        }
        let min_ready = deployment["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
        let stale_min_ready = rs["spec"]["minReadySeconds"].as_i64().unwrap_or(0) != min_ready;
        let rs = if annotations.is_empty() && !stale_min_ready {
            rs.clone()
        } else {
            let patch = json!({"metadata": {"annotations": annotations}, "spec": {"minReadySeconds": min_ready}});
            Arc::new(self.patch_replica_set(rs, &patch)?)
        };
        self.sync_deployment_revision(deployment, &rs)?;
        Ok(rs)
    }

    /// Sets the Deployment's revision annotation to its new ReplicaSet's.
    fn sync_deployment_revision(&self, deployment: &Value, rs: &Value) -> Result<(), Error> {
        let revision = &rs["metadata"]["annotations"][REVISION];
        if revision.is_null() || &deployment["metadata"]["annotations"][REVISION] == revision {
            return Ok(());
        }
        let key = ObjectKey::of(deployment).expect("cached objects have names");
        let patch = json!({"metadata": {"annotations": {REVISION: revision}}});
        match self.api.patch(
            &DEPLOYMENTS,
            key.namespace.as_deref(),
            &key.name,
            &patch,
            PatchType::Merge,
            Part::Main,
        ) {
            Ok(stored) => {
                self.deployments.apply(stored);
                Ok(())
            }
            Err(ApiError::NotFound { .. }) => Ok(()),
            Err(source) => Err(Error::UpdateDeploymentFailed { key, source }),
        }
    }

    /// Sets a ReplicaSet's size and the Deployment size and surge it was sized for.
    pub(super) fn scale_replica_set(
        &self,
        deployment: &Value,
        rs: &Value,
        size: i32,
    ) -> Result<(), Error> {
        let desired = replicas(deployment);
        let limits = rollout::limits(&deployment["spec"]["strategy"], desired);
        let max = desired + limits.max_surge;
        let before = replicas(rs);
        if before == size
            && annotation(rs, DESIRED_REPLICAS) == Some(i64::from(desired))
            && annotation(rs, MAX_REPLICAS) == Some(i64::from(max))
        {
            return Ok(());
        }
        let patch = json!({
            "metadata": {"annotations": {DESIRED_REPLICAS: desired.to_string(), MAX_REPLICAS: max.to_string()}},
            "spec": {"replicas": size},
        });
        self.patch_replica_set(rs, &patch)?;
        if before != size {
            let direction = if size > before { "up" } else { "down" };
            let message = format!(
                "Scaled {direction} replica set {} from {before} to {size}",
                name(rs)
            );
            self.recorder.record(
                deployment,
                None,
                EventType::Normal,
                "ScalingReplicaSet",
                &message,
            );
        }
        Ok(())
    }

    fn patch_replica_set(&self, rs: &Value, patch: &Value) -> Result<Value, Error> {
        let key = ObjectKey::of(rs).expect("cached objects have names");
        let stored = self
            .api
            .patch(
                &REPLICA_SETS,
                key.namespace.as_deref(),
                &key.name,
                patch,
                PatchType::Merge,
                Part::Main,
            )
            .map_err(|source| Error::UpdateReplicaSetFailed { key, source })?;
        self.replica_sets.apply(stored.clone());
        Ok(stored)
    }

    /// Deletes the oldest scaled-down ReplicaSets beyond `revisionHistoryLimit`.
    pub(super) fn clean_up(&self, deployment: &Value, old: &[Arc<Value>]) -> Result<(), Error> {
        let Some(limit) = deployment["spec"]["revisionHistoryLimit"].as_i64() else {
            return Ok(());
        };
        let mut alive: Vec<&Arc<Value>> = old.iter().filter(|rs| !is_terminating(rs)).collect();
        let surplus = alive.len() as i64 - limit;
        if surplus <= 0 {
            return Ok(());
        }
        alive.sort_by_key(|rs| annotation(rs, REVISION).unwrap_or(0));
        for rs in alive.into_iter().take(surplus as usize) {
            let settled = rs["status"]["replicas"].as_i64().unwrap_or(0) == 0
                && replicas(rs) == 0
                && rs["metadata"]["generation"].as_i64()
                    <= rs["status"]["observedGeneration"].as_i64();
            if !settled {
                continue;
            }
            let key = ObjectKey::of(rs).expect("cached objects have names");
            let options = DeleteOptions {
                precondition_uid: rs["metadata"]["uid"].as_str().map(str::to_string),
                ..Default::default()
            };
            match self
                .api
                .delete(&REPLICA_SETS, key.namespace.as_deref(), &key.name, &options)
            {
                Ok(_) | Err(ApiError::NotFound { .. } | ApiError::Conflict { .. }) => {}
                Err(source) => return Err(Error::DeleteReplicaSetFailed { key, source }),
            }
        }
        Ok(())
    }
}
