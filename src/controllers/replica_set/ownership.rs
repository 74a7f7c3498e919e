//! Adopting orphans and releasing strays: a ReplicaSet's owner reference on a pod, written
//! against the pod as stored (not as cached), so that a concurrent change is never undone.

use serde_json::Value;

use super::{Context, Error, pods};
use crate::api::kinds::PODS;
use crate::api::selectors::LabelSelector;
use crate::api::{ApiError, Part};
use crate::controller_runtime::cache::ObjectKey;

/// How often a pod update that raced with another writer is tried again at once.
const POD_UPDATE_ATTEMPTS: usize = 3;

impl Context {
    /// Makes the ReplicaSet the controller of an orphan that (still) matches.
    pub(super) fn adopt(
        &self,
        pod: &Value,
        replica_set: &Value,
        selector: &LabelSelector,
    ) -> Result<(), Error> {
        self.update_pod(pod, |fresh| {
            if pods::controller_ref(fresh).is_some()
                || pods::is_terminating(fresh)
                || !selector.matches(fresh)
            {
                return false;
            }
            let references = &mut fresh["metadata"]["ownerReferences"];
            if !references.is_array() {
                *references = Value::Array(Vec::new());
            }
            references
                .as_array_mut()
                .expect("made an array")
                .push(pods::owner_ref(replica_set));
            true
        })
    }

    /// Drops the ReplicaSet's owner reference from a pod it no longer selects.
    pub(super) fn release(&self, pod: &Value, uid: &str) -> Result<(), Error> {
        self.update_pod(pod, |fresh| {
            let Some(references) = fresh
                .pointer_mut("/metadata/ownerReferences")
                .and_then(Value::as_array_mut)
            else {
                return false;
            };
            let before = references.len();
            references.retain(|r| r["uid"].as_str() != Some(uid));
            references.len() != before
        })
    }

    /// Reads the pod afresh, lets `change` edit it (false: nothing to do) and writes it back,
    /// trying again when another writer got there first.
    fn update_pod(&self, pod: &Value, change: impl Fn(&mut Value) -> bool) -> Result<(), Error> {
        let key = ObjectKey::of(pod).expect("cached objects have names");
        let namespace = key.namespace.as_deref();
        let mut last_error = None;
        for _ in 0..POD_UPDATE_ATTEMPTS {
            let mut fresh = match self.api.get(&PODS, namespace, &key.name) {
                Ok(fresh) => fresh,
                Err(ApiError::NotFound { .. }) => return Ok(()),
                Err(source) => return Err(Error::ClaimPodFailed { pod: key, source }),
            };
            if !change(&mut fresh) {
                self.pods.apply(fresh);
                return Ok(());
            }
            match self
                .api
                .update(&PODS, namespace, &key.name, fresh, Part::Main)
            {
                Ok(stored) => {
                    self.pods.apply(stored);
                    return Ok(());
                }
                Err(ApiError::NotFound { .. }) => return Ok(()),
                Err(error @ ApiError::Conflict { .. }) => last_error = Some(error),
                Err(source) => return Err(Error::ClaimPodFailed { pod: key, source }),
            }
        }
        let source = last_error.expect("only conflicts loop");
        Err(Error::ClaimPodFailed { pod: key, source })
    }
}
