//! Pods bound to a node that no longer exists (`kubectl delete node`): nothing will ever run or
//! finish them, so after a quarantine they are deleted at once, as Kubernetes' pod garbage
//! collector does.

use std::collections::{HashMap, HashSet};

use serde_json::Value;
use tokio::time::{Duration, Instant};

use crate::api::kinds::PODS;
use crate::api::{Api, ApiError, ApiResult, DeleteOptions, ListOptions};

/// Pods seen bound to a missing node, by uid, and since when.
#[derive(Default)]
pub struct Orphans {
    since: HashMap<String, Instant>,
}

impl Orphans {
    /// Force-deletes pods whose node has been missing for `quarantine`.
    pub fn collect(
        &mut self,
        api: &Api,
        nodes: &HashSet<&str>,
        quarantine: Duration,
    ) -> ApiResult<()> {
        // Every pod, every period: read in place, not copied.
        let pods = api.listed(&PODS, None, &ListOptions::default())?;
        let orphaned = orphaned(pods.entries.iter().map(|entry| &entry.value), nodes);
        let now = Instant::now();
        self.since.retain(|uid, _| {
            orphaned
                .iter()
                .any(|p| p["metadata"]["uid"] == uid.as_str())
        });
        for pod in orphaned {
            let uid = pod["metadata"]["uid"].as_str().unwrap_or_default();
            let since = *self.since.entry(uid.to_string()).or_insert(now);
            if now - since < quarantine {
                continue;
            }
            let meta = &pod["metadata"];
            let options = DeleteOptions {
                grace_period_seconds: Some(0),
                precondition_uid: Some(uid.to_string()),
                ..Default::default()
            };
            let (namespace, name) = (
                meta["namespace"].as_str(),
                meta["name"].as_str().unwrap_or_default(),
            );
            match api.delete(&PODS, namespace, name, &options) {
                Ok(_) => {
                    tracing::info!(pod = name, node = %pod["spec"]["nodeName"], "deleted a pod of a deleted node")
                }
                Err(ApiError::NotFound { .. } | ApiError::Conflict { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }
}

/// The pods bound to a node not in `nodes`.
fn orphaned<'a>(
    pods: impl IntoIterator<Item = &'a Value>,
    nodes: &HashSet<&str>,
) -> Vec<&'a Value> {
    pods.into_iter()
        .filter(|pod| {
            pod["spec"]["nodeName"]
                .as_str()
                .is_some_and(|node| !node.is_empty() && !nodes.contains(node))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_pods_bound_to_a_missing_node_are_orphans() {
        let pods = vec![
            json!({"metadata": {"name": "a"}, "spec": {"nodeName": "n1"}}),
            json!({"metadata": {"name": "b"}, "spec": {"nodeName": "gone"}}),
            json!({"metadata": {"name": "c"}, "spec": {}}),
            json!({"metadata": {"name": "d"}, "spec": {"nodeName": ""}}),
        ];
        let nodes = HashSet::from(["n1"]);
        let names: Vec<&Value> = orphaned(&pods, &nodes)
            .into_iter()
            .map(|p| &p["metadata"]["name"])
            .collect();
        assert_eq!(names, vec!["b"]);
    }
}
