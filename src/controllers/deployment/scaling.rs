//! Resizing a Deployment's ReplicaSets when only `replicas` changed: the one active set takes
//! it all, or, mid-rollout, the change is spread over them in proportion (Kubernetes' `sync.go`
//! `scale`).

use std::sync::Arc;

use serde_json::Value;

use super::rollout::{self, Scalable, Size};
use super::{Context, DESIRED_REPLICAS, Error, MAX_REPLICAS, annotation, replicas, size};

impl Context {
    /// Resizes the ReplicaSets for a changed `replicas` (Kubernetes' `sync.go` `scale`).
    pub(super) fn scale(
        &self,
        deployment: &Value,
        new: Option<&Value>,
        old: &[Arc<Value>],
    ) -> Result<(), Error> {
        let desired = replicas(deployment);
        let mut all: Vec<&Value> = old.iter().map(|rs| &**rs).chain(new).collect();
        let active: Vec<&Value> = all.iter().copied().filter(|rs| replicas(rs) > 0).collect();
        let only = match active.len() {
            0 => new.or(old.last().map(|rs| &**rs)),
            1 => Some(active[0]),
            _ => None,
        };
        if let Some(rs) = only {
            if replicas(rs) != desired {
                self.scale_replica_set(deployment, rs, desired)?;
            }
            return Ok(());
        }
        let saturated = new.is_some_and(|rs| {
            annotation(rs, DESIRED_REPLICAS) == Some(i64::from(desired))
                && size(rs)
                    == Size {
                        replicas: desired,
                        available: desired,
                    }
        });
        if saturated {
            for rs in old.iter().filter(|rs| replicas(rs) > 0) {
                self.scale_replica_set(deployment, rs, 0)?;
            }
            return Ok(());
        }
        if deployment["spec"]["strategy"]["type"] == "Recreate" {
            return Ok(());
        }
        all.retain(|rs| replicas(rs) > 0);
        let limits = rollout::limits(&deployment["spec"]["strategy"], desired);
        let sets: Vec<Scalable> = all
            .iter()
            .map(|rs| Scalable {
                replicas: replicas(rs),
                max_replicas: annotation(rs, MAX_REPLICAS).map(|m| m as i32),
            })
            .collect();
        let status_replicas = deployment["status"]["replicas"].as_i64().unwrap_or(0) as i32;
        let sizes = rollout::proportional(desired, limits.max_surge, status_replicas, &sets);
        for (rs, n) in all.into_iter().zip(sizes) {
            self.scale_replica_set(deployment, rs, n)?;
        }
        Ok(())
    }
}
