//! Adopting orphan ReplicaSets a Deployment's selector matches, and releasing owned ones it no
//! longer matches (Kubernetes' `ClaimReplicaSets`). Written against the ReplicaSet as stored,
//! so a concurrent change is never undone.

use serde_json::Value;

use super::{Context, Error};
use crate::api::kinds::{DEPLOYMENTS, REPLICA_SETS};
use crate::api::selectors::LabelSelector;
use crate::api::{ApiError, Part};
use crate::controller_runtime::cache::{Cache, ObjectKey};
use crate::controllers::replica_set::pods::{controller_ref, is_terminating};

/// The Deployment's selector, when it is a usable one (admission makes sure it is).
pub(super) fn selector_of(deployment: &Value) -> Option<LabelSelector> {
    let selector = serde::Deserialize::deserialize(&deployment["spec"]["selector"]).ok()?;
    LabelSelector::from_k8s(&selector)
        .ok()
        .filter(|s| !s.is_empty())
}

/// The Deployments whose selector matches an orphan ReplicaSet.
pub(super) fn adopters(deployments: &Cache, replica_set: &Value) -> Vec<ObjectKey> {
    if controller_ref(replica_set).is_some() || is_terminating(replica_set) {
        return Vec::new();
    }
    let namespace = replica_set["metadata"]["namespace"].as_str();
    deployments
        .list_in(namespace.unwrap_or_default())
        .iter()
        .filter(|d| selector_of(d).is_some_and(|s| s.matches(replica_set)))
        .filter_map(|d| ObjectKey::of(d))
        .collect()
}

impl Context {
    /// Adopts the namespace's matching orphans and releases owned ReplicaSets that stopped
    /// matching; returns whether anything changed.
    pub(super) fn claim_replica_sets(&self, deployment: &Value) -> Result<bool, Error> {
        let Some(selector) = selector_of(deployment) else {
            return Ok(false);
        };
        let uid = &deployment["metadata"]["uid"];
        let namespace = deployment["metadata"]["namespace"].as_str();
        let mut changed = false;
        for rs in self.replica_sets.list_in(namespace.unwrap_or_default()) {
            let owner = controller_ref(&rs);
            let ours = owner.is_some_and(|o| &o["uid"] == uid);
            let matches = selector.matches(&rs);
            if owner.is_none() && matches && !is_terminating(&rs) {
                changed |= self.update_owner(&rs, |fresh| adopt(fresh, deployment, &selector))?;
            } else if ours && !matches {
                changed |= self.update_owner(&rs, |fresh| release(fresh, uid))?;
            }
        }
        Ok(changed)
    }

    /// Reads the ReplicaSet afresh, lets `change` edit it (false: nothing to do) and writes it
    /// back; a conflict fails the reconcile, which is retried.
    fn update_owner(&self, rs: &Value, change: impl Fn(&mut Value) -> bool) -> Result<bool, Error> {
        let key = ObjectKey::of(rs).expect("cached objects have names");
        let namespace = key.namespace.as_deref();
        let failed = |source| Error::UpdateReplicaSetFailed {
            key: key.clone(),
            source,
        };
        let mut fresh = match self.api.get(&REPLICA_SETS, namespace, &key.name) {
            Ok(fresh) => fresh,
            Err(ApiError::NotFound { .. }) => return Ok(false),
            Err(source) => return Err(failed(source)),
        };
        if !change(&mut fresh) {
            return Ok(false);
        }
        match self
            .api
            .update(&REPLICA_SETS, namespace, &key.name, fresh, Part::Main)
        {
            Ok(stored) => {
                self.replica_sets.apply(stored);
                Ok(true)
            }
            Err(ApiError::NotFound { .. }) => Ok(false),
            Err(source) => Err(failed(source)),
        }
    }
}

fn adopt(rs: &mut Value, deployment: &Value, selector: &LabelSelector) -> bool {
    if controller_ref(rs).is_some() || is_terminating(rs) || !selector.matches(rs) {
        return false;
    }
    let references = &mut rs["metadata"]["ownerReferences"];
    if !references.is_array() {
        *references = Value::Array(Vec::new());
    }
    references
        .as_array_mut()
        .expect("made an array")
        .push(DEPLOYMENTS.controller_reference(deployment));
    true
}

fn release(rs: &mut Value, uid: &Value) -> bool {
    let Some(references) = rs
        .pointer_mut("/metadata/ownerReferences")
        .and_then(Value::as_array_mut)
    else {
        return false;
    };
    let before = references.len();
    references.retain(|r| &r["uid"] != uid);
    references.len() != before
}
