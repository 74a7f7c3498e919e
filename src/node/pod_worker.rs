//! One pod on this node: load its components, run init then app containers, restart them with
//! back-off, report status, and tear everything down when the pod is deleted.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod};
use serde_json::Value;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use super::NodeContext;
use super::limits::PodShare;
use super::logs::ContainerLog;
use super::network::PodNet;
use super::pod_status::{self, ContainerRecord, PodRecord, Termination};
use crate::api::ApiError;
use crate::api::objects::now;
use crate::controller_runtime::supervisor::supervise_with;
use crate::events::EventType;

mod containers;
mod probing;
mod runs;
mod status;
mod termination;

/// Why a pod's containers are being stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The pod was deleted gracefully: wind down within `grace` (see [`termination`]), stop,
    /// report, then remove the object.
    Delete { grace: Duration },
    /// The object is already gone (force delete): stop and clean up.
    Gone,
    /// The node is shutting down: stop without touching the pod, which runs again on restart.
    Shutdown,
}

/// A container's current and previous log.
#[derive(Clone)]
pub struct LogPair {
    pub current: Arc<ContainerLog>,
    pub previous: Option<Arc<ContainerLog>>,
}

/// What the agent keeps of a running pod.
pub struct PodHandle {
    stop: watch::Sender<Option<Stop>>,
    shared: Arc<PodShared>,
    pub finished: CancellationToken,
}

/// How often a status the API could not take is offered again.
const STATUS_RETRY: Duration = Duration::from_secs(1);
/// How long a starting pod's first status waits for its containers to start. A cached
/// component starts within milliseconds: its pod's first status then says Running, one write
/// instead of a Pending write followed by a Running one.
const FIRST_STATUS_WAIT: Duration = Duration::from_millis(50);

struct PodShared {
    record: Mutex<PodRecord>,
    /// The pod as it was bound here.
    pod: Arc<Pod>,
    /// What the pod's containers draw from together.
    share: Arc<PodShare>,
    /// The pod's place in the pod network (its pod IP and loopback address).
    net: PodNet,
    /// Stops the pod's containers: on a stop, or when the node evicts the pod.
    containers: CancellationToken,
    logs: Mutex<HashMap<String, LogPair>>,
    changed: Notify,
    /// The status last accepted by the API.
    written: Mutex<Option<Value>>,
}

impl PodHandle {
    /// Stops the pod for `reason`; a later, more urgent reason (a shorter grace, a force
    /// delete, the node's shutdown) cuts a graceful termination short.
    pub fn stop(&self, reason: Stop) {
        self.stop.send_if_modified(|current| {
            let urgent = match (*current, reason) {
                (None, _) => true,
                (Some(Stop::Delete { grace: now }), Stop::Delete { grace }) => grace < now,
                (Some(Stop::Delete { .. }), _) => true,
                (Some(_), _) => false,
            };
            if urgent {
                *current = Some(reason);
            }
            urgent
        });
    }

    /// Compares the API's copy of the pod's status with what the worker last wrote, and
    /// writes it again when they differ: a write lost in an outage, or a change by someone
    /// else (the node lifecycle controller marks the pods of a silent node not ready).
    pub fn reconcile_status(&self, stored: &Value) {
        let mut written = self
            .shared
            .written
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if written.as_ref() != Some(stored) {
            *written = None;
            drop(written);
            self.shared.changed.notify_one();
        }
    }

    /// Evicts the pod (its disk usage): its containers stop, it fails with reason `Evicted` and
    /// `message`, and its volumes go. The object stays for its owner to see and replace.
    pub fn evict(&self, message: String) {
        let mut record = self.shared.record.lock().unwrap_or_else(|p| p.into_inner());
        if record.eviction.is_some() {
            return;
        }
        record.eviction = Some(message);
        drop(record);
        self.shared.containers.cancel();
        self.shared.changed.notify_one();
    }

    /// What the node's disk housekeeping needs of a pod still running here; `None` once it
    /// has stopped, finished or been evicted.
    pub fn disk_view(&self) -> Option<(Arc<Pod>, Arc<PodShare>)> {
        let live = !self.finished.is_cancelled() && !self.shared.containers.is_cancelled();
        live.then(|| (self.shared.pod.clone(), self.shared.share.clone()))
    }

    /// Whether this is the worker of pod `namespace/name`.
    pub fn is(&self, namespace: &str, name: &str) -> bool {
        let meta = &self.shared.pod.metadata;
        meta.name.as_deref() == Some(name)
            && meta.namespace.as_deref().unwrap_or("default") == namespace
    }

    pub fn logs(&self, container: &str) -> Option<LogPair> {
        self.shared
            .logs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(container)
            .cloned()
    }
}

/// Starts the worker of `pod` (a stored Pod object bound to this node), giving it a pod IP —
/// the one it had, when it ran here before and the address is free.
///
/// # Errors
/// A pod object that does not decode, or no free address in the node's block.
pub fn spawn(node: Arc<NodeContext>, raw: Value) -> Result<PodHandle, ApiError> {
    let pod: Pod =
        serde::Deserialize::deserialize(&raw).map_err(|e| ApiError::Internal(e.to_string()))?;
    let spec = pod.spec.clone().unwrap_or_default();
    let previous_ip = raw["status"]["podIP"]
        .as_str()
        .and_then(|ip| ip.parse().ok());
    let address = node
        .network
        .table
        .claim(
            pod.metadata.namespace.as_deref().unwrap_or("default"),
            pod.metadata.name.as_deref().unwrap_or_default(),
            previous_ip,
        )
        .ok_or_else(|| {
            ApiError::Unavailable("no free pod IP in this node's block (spec.podCIDR)".into())
        })?;
    let net = node.network.pod(address);
    let (recorder, object) = (node.recorder.clone(), raw.clone());
    net.denials.report_to(Box::new(move |message| {
        recorder.record(&object, None, EventType::Warning, "NetworkDenied", message);
    }));
    let previous: HashMap<String, &Value> = ["initContainerStatuses", "containerStatuses"]
        .iter()
        .filter_map(|list| raw["status"][list].as_array())
        .flatten()
        .filter_map(|c| Some((c["name"].as_str()?.to_string(), c)))
        .collect();
    let record_of = |c: &Container| carry_over(previous.get(&c.name).copied(), c);
    let record = PodRecord {
        restart_policy: spec
            .restart_policy
            .clone()
            .unwrap_or_else(|| "Always".into()),
        init: spec
            .init_containers
            .iter()
            .flatten()
            .map(record_of)
            .collect(),
        app: spec.containers.iter().map(record_of).collect(),
        initialized: spec.init_containers.as_ref().is_none_or(Vec::is_empty),
        start_time: raw["status"]["startTime"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(now),
        ready_transition: now(),
        host_ip: node.config.host_ip.clone(),
        pod_ip: net.address.pod_ip.to_string(),
        terminating: false,
        // A pod this node evicted before it restarted stays evicted.
        eviction: (raw["status"]["reason"] == "Evicted").then(|| {
            raw["status"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        }),
    };
    let shared = Arc::new(PodShared {
        record: Mutex::new(record),
        pod: Arc::new(pod.clone()),
        containers: CancellationToken::new(),
        share: PodShare::new(node.config.limits.pod_max_open_files),
        net,
        logs: Mutex::new(HashMap::new()),
        changed: Notify::new(),
        written: Mutex::new(None),
    });
    let (stop_tx, stop_rx) = watch::channel(None);
    let finished = CancellationToken::new();
    let worker = Worker {
        node,
        uid: pod.metadata.uid.clone().unwrap_or_default(),
        pod,
        raw,
        shared: shared.clone(),
    };
    let done = finished.clone();
    tokio::spawn(async move {
        worker.run(stop_rx).await;
        done.cancel();
    });
    Ok(PodHandle {
        stop: stop_tx,
        shared,
        finished,
    })
}

/// A container's record when its pod (re)starts on this node. A container the stored status
/// shows running died with the previous node process: like a rebooted kubelet, count a restart
/// and keep why it ended as `lastState`.
fn carry_over(stored: Option<&Value>, container: &Container) -> ContainerRecord {
    let mut record = ContainerRecord::new(
        &container.name,
        container.image.as_deref().unwrap_or_default(),
    );
    let Some(stored) = stored else { return record };
    // The stored count is whatever the API holds: clamp it rather than wrap or overflow.
    let stored_count = stored["restartCount"]
        .as_i64()
        .unwrap_or(0)
        .clamp(0, i32::MAX.into());
    record.restart_count = i32::try_from(stored_count).unwrap_or(i32::MAX);
    if let Some(started_at) = stored["state"]["running"]["startedAt"].as_str() {
        record.restart_count = record.restart_count.saturating_add(1);
        record.last_termination = Some(Termination {
            exit_code: 255,
            reason: "Unknown".into(),
            message: Some("the node agent restarted".into()),
            started_at: started_at.into(),
            finished_at: now(),
        });
    }
    record
}

struct Worker {
    node: Arc<NodeContext>,
    pod: Pod,
    raw: Value,
    uid: String,
    shared: Arc<PodShared>,
}

impl Worker {
    fn name(&self) -> &str {
        self.pod.metadata.name.as_deref().unwrap_or_default()
    }

    fn namespace(&self) -> &str {
        self.pod.metadata.namespace.as_deref().unwrap_or("default")
    }

    fn pod_dir(&self) -> PathBuf {
        self.node.pod_dir(&self.uid)
    }

    fn update(&self, change: impl FnOnce(&mut PodRecord)) {
        let mut record = self.shared.record.lock().unwrap_or_else(|p| p.into_inner());
        let was_ready = pod_status::is_ready(&record);
        change(&mut record);
        if pod_status::is_ready(&record) != was_ready {
            record.ready_transition = now();
        }
        drop(record);
        self.shared.changed.notify_one();
    }

    fn event(&self, container: Option<&str>, kind: EventType, reason: &str, message: &str) {
        let field = container.map(|c| format!("spec.containers{{{c}}}"));
        self.node
            .recorder
            .record(&self.raw, field.as_deref(), kind, reason, message);
    }

    /// Runs the containers; a bug that panics in this worker is written on the pod as a
    /// Warning event and the containers start over after a back-off, while the node and its
    /// other pods go on.
    async fn run_containers_supervised(self: &Arc<Self>, cancel: CancellationToken) {
        let on_panic = |message: &str, delay: Duration| {
            let text = format!("the pod worker panicked ({message}); restarting it in {delay:?}");
            self.event(None, EventType::Warning, "PodWorkerPanicked", &text);
        };
        let start = || self.run_containers(cancel.clone());
        supervise_with("pod-worker", cancel.clone(), start, on_panic).await;
    }

    async fn run(self, mut stop: watch::Receiver<Option<Stop>>) {
        let this = Arc::new(self);
        let containers_stop = this.shared.containers.clone();
        let status_done = CancellationToken::new();
        // A pod that finished before this worker started keeps the status it ended with:
        // nothing here runs that could change it.
        let already_finished = matches!(
            this.raw["status"]["phase"].as_str(),
            Some("Succeeded" | "Failed")
        );
        let status_writer = (!already_finished)
            .then(|| tokio::spawn(this.clone().write_status(status_done.clone())));
        let lifecycle = {
            let this = this.clone();
            let cancel = containers_stop.clone();
            tokio::spawn(async move {
                if !already_finished {
                    this.run_containers_supervised(cancel).await;
                    this.after_eviction().await;
                }
            })
        };
        let reason = loop {
            if let Some(reason) = *stop.borrow_and_update() {
                break reason;
            }
            if stop.changed().await.is_err() {
                break Stop::Shutdown;
            }
        };
        this.update(|r| r.terminating = true);
        let reason = match reason {
            Stop::Delete { .. } => this.terminate_gracefully(&mut stop).await,
            other => other,
        };
        containers_stop.cancel();
        let _ = lifecycle.await;
        status_done.cancel();
        if let Some(status_writer) = status_writer {
            let _ = status_writer.await;
        }
        if reason != Stop::Shutdown {
            this.remove(reason).await;
        }
        let table = &this.node.network.table;
        table.release(this.shared.net.address.pod_ip);
    }

    /// Once an evicted pod's containers have stopped: says why in an event, and removes its
    /// volumes, which is what the eviction was for (its logs stay for `kubectl logs`).
    async fn after_eviction(&self) {
        let eviction = self
            .shared
            .record
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .eviction
            .clone();
        let Some(message) = eviction else { return };
        self.event(None, EventType::Warning, "Evicted", &message);
        let volumes = self.pod_dir().join("volumes");
        if let Err(error) = tokio::fs::remove_dir_all(&volumes).await
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(%error, pod = self.name(), "could not remove an evicted pod's volumes");
        }
    }

    /// Removes the pod's directories and, after a graceful delete, the pod object itself.
    async fn remove(&self, reason: Stop) {
        let namespace = Some(self.namespace());
        self.node
            .remove_pod(
                namespace,
                self.name(),
                &self.uid,
                matches!(reason, Stop::Delete { .. }),
            )
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_stored_restart_count_out_of_range_is_clamped_instead_of_wrapping_or_overflowing() {
        let container = Container {
            name: "c".into(),
            ..Container::default()
        };
        let running = json!({"restartCount": i64::MAX, "state": {"running": {"startedAt": "x"}}});
        assert_eq!(
            carry_over(Some(&running), &container).restart_count,
            i32::MAX
        );
        let negative = json!({"restartCount": -7});
        assert_eq!(carry_over(Some(&negative), &container).restart_count, 0);
    }
}
