//! The node lifecycle controller: a node whose agent falls silent turns `Ready=Unknown`, is
//! tainted `node.kubernetes.io/unreachable`, and its pods are evicted so their controllers
//! recreate them elsewhere; when it speaks again the taints go. Pods of a deleted node are
//! deleted after a quarantine.
//!
//! Silence is measured on this controller's own clock, from the last change it saw in the
//! node's Lease or status heartbeat — as Kubernetes does — so a control plane that was down
//! itself gives every node a full grace period after it comes back instead of evicting all.

mod eviction;
mod orphans;
mod taints;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::api::kinds::{LEASES, NODE_LEASE_NAMESPACE, NODES};
use crate::api::objects::{now, take_items};
use crate::api::{Api, ApiResult, ListOptions, Part};
use crate::controller_runtime::reconcile::catch_panic;
use crate::events::{EventType, Recorder};

/// Timings of the controller (`--node-monitor-grace-period`, `--pod-eviction-timeout`).
#[derive(Clone, Copy, Debug)]
pub struct NodeLifecycleConfig {
    /// Silence after which a node is `Ready=Unknown` and tainted unreachable.
    pub grace_period: Duration,
    /// How long pods stay on an unreachable node before they are evicted.
    pub eviction_timeout: Duration,
    /// How often nodes are checked.
    pub monitor_period: Duration,
    /// How long a pod bound to a deleted node is kept before it is deleted (Kubernetes: 40 s).
    pub orphan_quarantine: Duration,
}

impl Default for NodeLifecycleConfig {
    fn default() -> Self {
        Self {
            grace_period: Duration::from_secs(10),
            eviction_timeout: Duration::from_secs(10),
            monitor_period: Duration::from_secs(1),
            orphan_quarantine: Duration::from_secs(40),
        }
    }
}

/// The last heartbeat seen from a node, and when (on our clock).
struct Observed {
    beat: String,
    at: Instant,
}

struct Monitor {
    api: Arc<Api>,
    config: NodeLifecycleConfig,
    recorder: Recorder,
    observed: HashMap<String, Observed>,
    orphans: orphans::Orphans,
}

/// Watches node health until `shutdown`.
pub async fn run(api: Arc<Api>, config: NodeLifecycleConfig, shutdown: CancellationToken) {
    let mut monitor = Monitor {
        recorder: Recorder::new(api.clone(), "node-controller", ""),
        api,
        config,
        observed: HashMap::new(),
        orphans: orphans::Orphans::default(),
    };
    let mut tick = tokio::time::interval(config.monitor_period);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        if let Err(error) = monitor.check_nodes() {
            tracing::warn!(%error, "node health check failed");
        }
    }
}

impl Monitor {
    fn check_nodes(&mut self) -> ApiResult<()> {
        let nodes = take_items(&mut self.api.list(&NODES, None, &ListOptions::default())?);
        let leases = take_items(&mut self.api.list(
            &LEASES,
            Some(NODE_LEASE_NAMESPACE),
            &ListOptions::default(),
        )?);
        let renewals: HashMap<&str, &str> = leases
            .iter()
            .filter_map(|l| {
                Some((
                    l["metadata"]["name"].as_str()?,
                    l["spec"]["renewTime"].as_str()?,
                ))
            })
            .collect();
        self.observed
            .retain(|name, _| nodes.iter().any(|n| n["metadata"]["name"] == name.as_str()));
        for node in &nodes {
            let name = node["metadata"]["name"].as_str().unwrap_or_default();
            let beat = format!(
                "{}|{}",
                renewals.get(name).unwrap_or(&""),
                ready_condition(node)["lastHeartbeatTime"]
                    .as_str()
                    .unwrap_or_default()
            );
            let silent = self.silence(name, beat) > self.config.grace_period;
            match catch_panic(|| self.check_node(node, silent)) {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::warn!(%error, node = name, "node lifecycle step failed"),
                Err(message) => {
                    tracing::error!(panic = %message, node = name, "node lifecycle step panicked");
                    self.recorder.reconcile_panicked(node, &message);
                }
            }
        }
        let names: HashSet<&str> = nodes
            .iter()
            .filter_map(|n| n["metadata"]["name"].as_str())
            .collect();
        self.orphans
            .collect(&self.api, &names, self.config.orphan_quarantine)
    }

    /// How long the node has been silent; a new heartbeat resets it.
    fn silence(&mut self, name: &str, beat: String) -> Duration {
        let now = Instant::now();
        let observed = self.observed.entry(name.to_string()).or_insert(Observed {
            beat: beat.clone(),
            at: now,
        });
        if observed.beat != beat {
            *observed = Observed { beat, at: now };
        }
        now - observed.at
    }

    fn check_node(&self, node: &Value, silent: bool) -> ApiResult<()> {
        let name = node["metadata"]["name"].as_str().unwrap_or_default();
        if silent && ready_condition(node)["status"] != "Unknown" {
            self.mark_unknown(node)?;
            eviction::mark_pods_not_ready(&self.api, name)?;
        }
        let node = self.api.get(&NODES, None, name)?;
        if let Some(taints) = taints::reconciled(&node, silent, &now()) {
            let mut updated = node.clone();
            updated["spec"]["taints"] = Value::Array(taints);
            self.api.update(&NODES, None, name, updated, Part::Main)?;
        }
        if let Some(since) = taints::unreachable_since(&node) {
            eviction::evict_due_pods(
                &self.api,
                &self.recorder,
                name,
                since,
                self.config.eviction_timeout,
            )?;
        }
        Ok(())
    }

    /// Sets every condition of a silent node to `Unknown`, as Kubernetes does.
    fn mark_unknown(&self, node: &Value) -> ApiResult<()> {
        let name = node["metadata"]["name"].as_str().unwrap_or_default();
        let mut updated = node.clone();
        let transition = now();
        if let Some(conditions) = updated["status"]["conditions"].as_array_mut() {
            for condition in conditions {
                condition["status"] = "Unknown".into();
                condition["reason"] = "NodeStatusUnknown".into();
                condition["message"] = "Kubelet stopped posting node status.".into();
                condition["lastTransitionTime"] = transition.clone().into();
            }
        }
        self.api.update(&NODES, None, name, updated, Part::Status)?;
        self.recorder.record(
            node,
            None,
            EventType::Normal,
            "NodeNotReady",
            &format!("Node {name} status is now: NodeNotReady"),
        );
        Ok(())
    }
}

fn ready_condition(node: &Value) -> &Value {
    node["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
        .unwrap_or(&Value::Null)
}
