//! The node agent: registers the Node, heartbeats, and keeps a worker per pod bound here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::NodeContext;
use super::logs::LogLine;
use super::pod_worker::{self, PodHandle, Stop};
use crate::api::discovery::KUBERNETES_VERSION;
use crate::api::logs::{LogOptions, PodLogs};
use crate::api::resources::{NODES, PODS};
use crate::api::selectors::FieldSelector;
use crate::api::watch::follow;
use crate::api::{ApiError, ApiResult, ListOptions, Part};

/// A running node agent.
pub struct Agent {
    node: Arc<NodeContext>,
    pods: Mutex<HashMap<String, PodHandle>>,
}

impl Agent {
    /// Registers the node, then runs its heartbeat and pod loop until `shutdown`.
    ///
    /// # Errors
    /// When the Node object cannot be written.
    pub fn start(node: Arc<NodeContext>, shutdown: CancellationToken) -> ApiResult<Arc<Agent>> {
        let agent = Arc::new(Agent {
            node,
            pods: Mutex::new(HashMap::new()),
        });
        agent.register()?;
        agent
            .node
            .api
            .register_log_source(&agent.node.config.node_name, agent.clone());
        tokio::spawn(agent.clone().heartbeat(shutdown.clone()));
        tokio::spawn(agent.clone().sync_pods(shutdown));
        Ok(agent)
    }

    fn name(&self) -> &str {
        &self.node.config.node_name
    }

    fn node_status(&self) -> Value {
        let config = &self.node.config;
        let heartbeat = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
        let condition = |kind: &str, status: &str, reason: &str, message: &str| {
            json!({"type": kind, "status": status, "reason": reason, "message": message,
                   "lastHeartbeatTime": heartbeat, "lastTransitionTime": config.started_at})
        };
        let resources = json!({
            "cpu": format!("{}", config.capacity_cpu),
            "memory": format!("{}Ki", config.capacity_memory_bytes / 1024),
            "pods": format!("{}", config.capacity_pods),
        });
        let (major, minor) = KUBERNETES_VERSION;
        json!({
            "capacity": resources,
            "allocatable": resources,
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "addresses": [{"type": "InternalIP", "address": config.host_ip}, {"type": "Hostname", "address": config.node_name}],
            "nodeInfo": {
                "kubeletVersion": format!("v{major}.{minor}.0-wasmkube"),
                "kubeProxyVersion": "",
                "containerRuntimeVersion": "wasmtime://48.0.8",
                "operatingSystem": "wasi",
                "architecture": "wasm32",
                "osImage": "wasmkube",
                "kernelVersion": "",
                "machineID": "", "systemUUID": "", "bootID": "",
            },
        })
    }

    /// Creates the Node object, or refreshes its status when it already exists.
    fn register(&self) -> ApiResult<()> {
        let api = &self.node.api;
        let node = json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": self.name(), "labels": {
                "kubernetes.io/hostname": self.name(),
                "kubernetes.io/os": "wasi",
                "kubernetes.io/arch": "wasm32",
                "node-role.kubernetes.io/control-plane": "",
            }},
            "spec": {},
        });
        match api.create(&NODES, None, node) {
            Ok(_) | Err(ApiError::AlreadyExists { .. }) => {}
            Err(error) => return Err(error),
        }
        self.post_status()
    }

    fn post_status(&self) -> ApiResult<()> {
        let mut node = self.node.api.get(&NODES, None, self.name())?;
        node["status"] = self.node_status();
        self.node
            .api
            .update(&NODES, None, self.name(), node, Part::Status)
            .map(|_| ())
    }

    async fn heartbeat(self: Arc<Self>, shutdown: CancellationToken) {
        let mut interval = tokio::time::interval(self.node.config.heartbeat_interval);
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = shutdown.cancelled() => return,
            }
            if let Err(error) = self.post_status() {
                tracing::warn!(%error, "node heartbeat failed");
                if matches!(error, ApiError::NotFound { .. }) {
                    let _ = self.register();
                }
            }
        }
    }

    /// Follows the pods bound to this node, re-listing whenever the watch ends.
    async fn sync_pods(self: Arc<Self>, shutdown: CancellationToken) {
        let selector = format!("spec.nodeName={}", self.name());
        let options = ListOptions {
            fields: FieldSelector::parse(&selector, "Pod").expect("static selector"),
            ..Default::default()
        };
        follow(&self.node.api, &PODS, options, &shutdown, |event| {
            self.apply(event.kind, &event.object)
        })
        .await;
        let handles: Vec<PodHandle> = self
            .pods
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .map(|(_, h)| h)
            .collect();
        for handle in &handles {
            handle.stop(Stop::Shutdown);
        }
        for handle in handles {
            handle.finished.cancelled().await;
        }
    }

    fn apply(&self, kind: &str, pod: &Value) {
        let uid = pod["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let deleting = pod["metadata"]["deletionTimestamp"].is_string();
        let mut pods = self.pods.lock().unwrap_or_else(|p| p.into_inner());
        pods.retain(|_, handle| !handle.finished.is_cancelled());
        match (kind, pods.get(&uid)) {
            ("DELETED", Some(handle)) => {
                handle.stop(Stop::Gone);
                pods.remove(&uid);
            }
            ("ADDED" | "MODIFIED", Some(handle)) if deleting => handle.stop(Stop::Delete),
            ("ADDED" | "MODIFIED", None) if deleting => self.finish_deletion(pod),
            ("ADDED" | "MODIFIED", None) => match pod_worker::spawn(self.node.clone(), pod.clone())
            {
                Ok(handle) => {
                    pods.insert(uid, handle);
                }
                Err(error) => tracing::warn!(%error, "cannot start pod"),
            },
            _ => {}
        }
    }

    /// A pod marked for deletion that no worker runs (e.g. deleted while the node was down).
    fn finish_deletion(&self, pod: &Value) {
        let node = self.node.clone();
        let meta = &pod["metadata"];
        let namespace = meta["namespace"].as_str().map(str::to_string);
        let name = meta["name"].as_str().unwrap_or_default().to_string();
        let uid = meta["uid"].as_str().unwrap_or_default().to_string();
        tokio::spawn(async move {
            node.remove_pod(namespace.as_deref(), &name, &uid, true)
                .await
        });
    }
}

impl PodLogs for Agent {
    fn open(
        &self,
        pod: &Value,
        container: &str,
        options: &LogOptions,
    ) -> ApiResult<mpsc::Receiver<Bytes>> {
        let uid = pod["metadata"]["uid"].as_str().unwrap_or_default();
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        let pair = self
            .pods
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(uid)
            .and_then(|h| h.logs(container));
        let waiting = || {
            ApiError::BadRequest(format!(
                "container \"{container}\" in pod \"{name}\" is waiting to start: ContainerCreating"
            ))
        };
        let pair = pair.ok_or_else(waiting)?;
        let log = if options.previous {
            pair.previous.ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "previous terminated container \"{container}\" in pod \"{name}\" not found"
                ))
            })?
        } else {
            pair.current
        };
        let since = options
            .since_seconds
            .map(|s| Utc::now() - chrono::Duration::seconds(s));
        let (lines, mut cursor) = log.snapshot(options.tail_lines, since);
        let (tx, rx) = mpsc::channel(64);
        let (follow, timestamps) = (options.follow, options.timestamps);
        tokio::spawn(async move {
            if tx.send(render(&lines, timestamps)).await.is_err() || !follow {
                return;
            }
            loop {
                let next = tokio::select! {
                    next = log.next_lines(cursor) => next,
                    _ = tx.closed() => return,
                };
                let Some((lines, next_cursor)) = next else {
                    return;
                };
                cursor = next_cursor;
                if !lines.is_empty() && tx.send(render(&lines, timestamps)).await.is_err() {
                    return;
                }
            }
        });
        Ok(rx)
    }
}

fn render(lines: &[LogLine], timestamps: bool) -> Bytes {
    let mut out = String::new();
    for line in lines {
        if timestamps {
            out.push_str(&line.time.to_rfc3339_opts(SecondsFormat::Nanos, true));
            out.push(' ');
        }
        out.push_str(&line.text);
        out.push('\n');
    }
    Bytes::from(out)
}
