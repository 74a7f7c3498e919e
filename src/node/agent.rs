//! The node agent: registers the Node, heartbeats, serves the node's endpoint, and keeps a
//! worker per pod bound here.

mod logs;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::eviction::{self, NodePods, PodOnDisk};
use super::network::{listener, peers};
use super::pod_worker::{self, PodHandle, Stop};
use super::{NodeContext, heartbeat};
use crate::api::kinds::PODS;
use crate::api::{ApiError, ApiResult};
use crate::cidr::Ipv4Block;
use crate::client::control_plane::ControlPlane;

/// A running node agent.
pub struct Agent {
    node: Arc<NodeContext>,
    pods: Mutex<HashMap<String, PodHandle>>,
}

/// Waits between attempts to reach the API server, doubling up to the cap.
const RESYNC_DELAY: (Duration, Duration) = (Duration::from_millis(200), Duration::from_secs(2));
/// How long the node waits for its block of pod IPs before it says so in its log.
const BLOCK_PATIENCE: Duration = Duration::from_secs(5);

impl Agent {
    /// Registers the node, opens its endpoint, then runs its heartbeats and pod loop until
    /// `shutdown`. Pods start once the control plane has given the node its block of pod IPs.
    ///
    /// # Errors
    /// When the Node object cannot be written (`Unavailable`: try again), or the endpoint
    /// cannot listen.
    pub async fn start(
        node: Arc<NodeContext>,
        shutdown: CancellationToken,
    ) -> ApiResult<Arc<Agent>> {
        heartbeat::register(&node).await?;
        let agent = Arc::new(Agent {
            node,
            pods: Mutex::new(HashMap::new()),
        });
        agent.serve_endpoint(&shutdown).await?;
        if let ControlPlane::InProcess(api) = &agent.node.plane {
            let logs: Arc<dyn crate::api::logs::PodLogs> = agent.clone();
            api.register_log_source(&agent.node.config.node_name, &logs);
        }
        let (own_block, block) = watch::channel(None);
        tokio::spawn(peers::follow(
            agent.node.plane.clone(),
            agent.name().to_string(),
            agent.node.network.table.clone(),
            own_block,
            shutdown.clone(),
        ));
        tokio::spawn(heartbeat::run(agent.node.clone(), shutdown.clone()));
        let pods: Arc<dyn NodePods> = agent.clone();
        tokio::spawn(eviction::run(agent.node.clone(), pods, shutdown.clone()));
        tokio::spawn(agent.clone().sync_pods(block, shutdown));
        Ok(agent)
    }

    fn name(&self) -> &str {
        &self.node.config.node_name
    }

    /// Listens on the node's address and port for tunnels and log reads, when the node has an
    /// identity to serve them with.
    async fn serve_endpoint(self: &Arc<Self>, shutdown: &CancellationToken) -> ApiResult<()> {
        let config = &self.node.config;
        let Some(identity) = &config.identity else {
            return Ok(());
        };
        let ip = config.host_ip.parse().map_err(|_| {
            ApiError::Internal(format!(
                "the node address {:?} is not an IP",
                config.host_ip
            ))
        })?;
        let wanted = SocketAddr::new(ip, config.kubelet_port);
        let cannot = |e: &dyn std::fmt::Display| {
            ApiError::Internal(format!("the node endpoint cannot listen on {wanted}: {e}"))
        };
        let tls = crate::tls::listener_config(identity).map_err(|e| cannot(&e))?;
        let socket = tokio::net::TcpListener::bind(wanted)
            .await
            .map_err(|e| cannot(&e))?;
        let bound = socket.local_addr().map_err(|e| cannot(&e))?;
        let _ = self.node.endpoint.set(bound);
        let endpoint = Arc::new(listener::Endpoint {
            tls: tokio_rustls::TlsAcceptor::from(tls),
            table: self.node.network.table.clone(),
            logs: self.clone(),
        });
        tokio::spawn(listener::serve(socket, endpoint, shutdown.clone()));
        Ok(())
    }

    /// Waits for the node's block of pod IPs (the control plane's node IPAM assigns it after
    /// registration) and starts the pod network with it; false on shutdown.
    async fn wait_for_network(
        &self,
        mut block: watch::Receiver<Option<Ipv4Block>>,
        shutdown: &CancellationToken,
    ) -> bool {
        let mut warned = false;
        let block = loop {
            let wait = tokio::time::timeout(BLOCK_PATIENCE, block.wait_for(Option::is_some));
            tokio::select! {
                waited = wait => match waited {
                    Ok(Ok(block)) => break *block,
                    Ok(Err(_)) => return false,
                    Err(_) if !warned => {
                        warned = true;
                        tracing::warn!("no pod IP block (spec.podCIDR) assigned to this node yet; is the control plane's node-ipam controller running?");
                    }
                    Err(_) => {}
                },
                () = shutdown.cancelled() => return false,
            }
        };
        let Some(block) = block else { return false };
        if let Err(error) = self.node.network.start(block, shutdown.clone()).await {
            tracing::error!(%error, "the pod network cannot start; pods cannot reach other nodes");
        }
        true
    }

    /// Keeps the pods bound to this node in step with the API: list, reconcile, watch; and
    /// again whenever the watch ends or the API server cannot be reached. Running pods are
    /// left alone meanwhile.
    async fn sync_pods(
        self: Arc<Self>,
        block: watch::Receiver<Option<Ipv4Block>>,
        shutdown: CancellationToken,
    ) {
        if !self.wait_for_network(block, &shutdown).await {
            return;
        }
        let selector = format!("spec.nodeName={}", self.name());
        let mut delay = RESYNC_DELAY.0;
        while !shutdown.is_cancelled() {
            match self.list_and_watch(&selector, &shutdown).await {
                Ok(()) => delay = RESYNC_DELAY.0,
                Err(error) => {
                    tracing::warn!(%error, "pod sync with the API server failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = shutdown.cancelled() => {}
                    }
                    delay = (delay * 2).min(RESYNC_DELAY.1);
                }
            }
        }
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

    async fn list_and_watch(&self, selector: &str, shutdown: &CancellationToken) -> ApiResult<()> {
        let plane = &self.node.plane;
        let (pods, version) = plane.list(&PODS, selector).await?;
        self.resync(&pods);
        let mut events = plane.watch(&PODS, selector, &version, shutdown).await?;
        loop {
            let event = tokio::select! {
                event = events.next() => event,
                _ = shutdown.cancelled() => return Ok(()),
            };
            match event {
                Some(Ok(event)) => self.apply(event.kind, &event.object),
                Some(Err(error)) => return Err(error),
                None => return Ok(()),
            }
        }
    }

    /// Matches the running pods to a fresh list: pods that vanished meanwhile stop, new ones
    /// start, deleted ones finish their deletion.
    fn resync(&self, pods: &[Value]) {
        let listed: HashSet<&str> = pods
            .iter()
            .filter_map(|pod| pod["metadata"]["uid"].as_str())
            .collect();
        self.pods
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|uid, handle| {
                let keep = listed.contains(uid.as_str());
                if !keep {
                    handle.stop(Stop::Gone);
                }
                keep
            });
        let handles = self.pods.lock().unwrap_or_else(|p| p.into_inner());
        for pod in pods {
            if let Some(handle) = pod["metadata"]["uid"].as_str().and_then(|u| handles.get(u)) {
                handle.reconcile_status(&pod["status"]);
            }
        }
        drop(handles);
        // Pods that ran here before claim their addresses first, so a new pod cannot take one.
        let (placed, new): (Vec<&Value>, Vec<&Value>) = pods
            .iter()
            .partition(|pod| pod["status"]["podIP"].is_string());
        for pod in placed.into_iter().chain(new) {
            self.apply("ADDED", pod);
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
            ("ADDED" | "MODIFIED", Some(handle)) if deleting => handle.stop(Stop::deletion(pod)),
            ("ADDED" | "MODIFIED", None) if deleting => self.finish_deletion(pod),
            ("ADDED" | "MODIFIED", None) => match pod_worker::spawn(self.node.clone(), pod.clone())
            {
                Ok(handle) => {
                    pods.insert(uid, handle);
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot start pod");
                    let message = format!("Failed to create pod sandbox: {error}");
                    let warning = crate::events::EventType::Warning;
                    (self.node.recorder).record(
                        pod,
                        None,
                        warning,
                        "FailedCreatePodSandBox",
                        &message,
                    );
                }
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

impl NodePods for Agent {
    fn on_disk(&self) -> Vec<PodOnDisk> {
        let pods = self.pods.lock().unwrap_or_else(|p| p.into_inner());
        pods.iter()
            .filter_map(|(uid, handle)| {
                let (pod, share) = handle.disk_view()?;
                Some(PodOnDisk {
                    uid: uid.clone(),
                    pod,
                    share,
                })
            })
            .collect()
    }

    fn evict(&self, uid: &str, message: String) {
        let pods = self.pods.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(handle) = pods.get(uid) {
            tracing::info!(pod = uid, %message, "evicting pod");
            handle.evict(message);
        }
    }
}
