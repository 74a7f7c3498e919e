//! The node: the agent that runs pods bound to this node as WASI components in wasmtime.
//!
//! `agent` watches the API for pods, `pod_worker` drives one pod's lifecycle, `runtime` and
//! `sandbox` wrap wasmtime, `logs` keeps bounded container output, `network` is the pod network
//! and the node's endpoint, `probes` check containers' health.

pub mod agent;
pub mod allocatable;
pub mod container_spec;
pub mod disk;
pub mod eviction;
pub mod heartbeat;
pub mod images;
pub mod join;
pub mod limits;
pub mod logs;
pub mod network;
pub mod pod_status;
pub mod pod_worker;
pub mod probes;
pub mod runtime;
pub mod sandbox;
pub mod status_batch;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::client::control_plane::ControlPlane;
use crate::controller_runtime::backoff::Backoff;
use crate::events::Recorder;
use crate::tls::Identity;

/// How a node runs: its identity, where it keeps data, and its tunables.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub node_name: String,
    pub data_dir: PathBuf,
    pub host_ip: String,
    pub backoff: Backoff,
    /// Bytes of output kept in memory per container instance.
    pub log_capacity: usize,
    /// How often the full Node status is posted.
    pub heartbeat_interval: Duration,
    /// How often the node's Lease is renewed (the cheap heartbeat the node lifecycle
    /// controller watches).
    pub lease_interval: Duration,
    /// Labels besides the well-known ones (`--node-label`).
    pub labels: BTreeMap<String, String>,
    /// Whether the node runs in the control plane's process (`up`): it gets the
    /// `node-role.kubernetes.io/control-plane` label.
    pub control_plane: bool,
    pub capacity_cpu: u64,
    pub capacity_memory_bytes: u64,
    pub capacity_pods: u64,
    /// What the node keeps for itself and lets its pods use.
    pub limits: allocatable::NodeLimits,
    pub started_at: String,
    /// Where the node's endpoint (tunnel, logs) listens, on `host_ip`; 0: any free port.
    pub kubelet_port: u16,
    /// The node's certificate from the control plane; without one the node has no endpoint
    /// and opens no tunnels.
    pub identity: Option<Identity>,
}

/// The kubelet's port, where a node serves its endpoint unless told otherwise.
pub const DEFAULT_KUBELET_PORT: u16 = 10250;

impl NodeConfig {
    pub fn new(node_name: &str, data_dir: PathBuf) -> Self {
        Self {
            node_name: node_name.into(),
            data_dir,
            host_ip: "127.0.0.1".into(),
            backoff: Backoff::default(),
            log_capacity: 1 << 20,
            heartbeat_interval: Duration::from_secs(10),
            lease_interval: Duration::from_secs(2),
            labels: BTreeMap::new(),
            control_plane: false,
            capacity_cpu: std::thread::available_parallelism().map_or(1, |n| n.get() as u64),
            capacity_memory_bytes: total_memory_bytes(),
            capacity_pods: 1000,
            limits: allocatable::NodeLimits::default(),
            started_at: crate::api::objects::now(),
            kubelet_port: DEFAULT_KUBELET_PORT,
            identity: None,
        }
    }
}

impl NodeConfig {
    /// The node's runtime settings: its compile cache under the data dir, its guests' memory
    /// bounded by the node's allocatable memory, and `guest_open_files` shared by all pods.
    pub fn runtime_config(&self, guest_open_files: usize) -> runtime::RuntimeConfig {
        runtime::RuntimeConfig {
            cache_dir: self.data_dir.join("cache"),
            guest_memory_bytes: Some(self.allocatable_memory()),
            guest_open_files,
            ..runtime::RuntimeConfig::default()
        }
    }

    /// Memory the node's pods may use together.
    pub fn allocatable_memory(&self) -> u64 {
        self.limits.allocatable_memory(self.capacity_memory_bytes)
    }
}

/// Physical memory, from /proc/meminfo (1 GiB when it cannot be read).
fn total_memory_bytes() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(1 << 30, |kib| kib * 1024)
}

/// What every pod worker of a node shares.
pub struct NodeContext {
    pub plane: ControlPlane,
    pub runtime: runtime::Runtime,
    pub recorder: Recorder,
    pub config: NodeConfig,
    /// Batched status writes, for a node in the API server's process.
    pub status_batch: Option<status_batch::StatusBatch>,
    /// Writes the containers' logs to their files.
    pub log_writer: logs::LogWriter,
    /// Whether the node's disk is under pressure, as its housekeeping last found it.
    pub disk_pressure: eviction::DiskPressure,
    /// The pod network: pod IPs, routing, the tunnel to other nodes.
    pub network: Arc<network::NodeNetwork>,
    /// Where the node's endpoint listens, once it does.
    pub endpoint: OnceLock<SocketAddr>,
}

impl NodeContext {
    /// A node's shared context; starts its log writer.
    ///
    /// # Errors
    /// When the log writer's thread cannot start, or the node's identity is unusable.
    pub fn new(
        plane: ControlPlane,
        runtime: runtime::Runtime,
        recorder: Recorder,
        config: NodeConfig,
        status_batch: Option<status_batch::StatusBatch>,
    ) -> std::io::Result<NodeContext> {
        let tunnel_tls = config
            .identity
            .as_ref()
            .map(crate::tls::identity_client_config)
            .transpose()
            .map_err(std::io::Error::other)?;
        let network = network::NodeNetwork::new(network::tunnel::TunnelClient::new(tunnel_tls));
        Ok(NodeContext {
            plane,
            runtime,
            recorder,
            config,
            status_batch,
            log_writer: logs::LogWriter::start()?,
            disk_pressure: eviction::DiskPressure::default(),
            network,
            endpoint: OnceLock::new(),
        })
    }

    /// Where the node keeps one container's log files, over all its restarts.
    pub fn log_dir(&self, uid: &str, container: &str) -> PathBuf {
        self.pod_dir(uid).join("logs").join(container)
    }

    /// Where the node keeps one pod's volumes and logs.
    pub fn pod_dir(&self, uid: &str) -> PathBuf {
        self.config.data_dir.join("pods").join(uid)
    }

    /// Ends a pod on this node: its directory goes and, for a graceful deletion, the pod
    /// object too (only the incarnation `uid`, so a pod re-created under the name survives).
    pub async fn remove_pod(
        &self,
        namespace: Option<&str>,
        name: &str,
        uid: &str,
        delete_object: bool,
    ) {
        if let Err(error) = tokio::fs::remove_dir_all(self.pod_dir(uid)).await
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(%error, pod = name, "could not remove pod directory");
        }
        if !delete_object {
            return;
        }
        let options = crate::api::DeleteOptions {
            grace_period_seconds: Some(0),
            precondition_uid: Some(uid.to_string()),
            ..Default::default()
        };
        match self
            .plane
            .delete(&crate::api::kinds::PODS, namespace, name, &options)
            .await
        {
            Ok(_)
            | Err(crate::api::ApiError::NotFound { .. } | crate::api::ApiError::Conflict { .. }) => {
            }
            Err(error) => tracing::warn!(%error, pod = name, "could not remove pod"),
        }
    }
}
