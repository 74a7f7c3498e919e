//! The node's presence in the API: its Node object and status, and the Lease it renews.

use std::sync::Arc;

use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::disk::FsStats;
use super::{NodeConfig, NodeContext};
use crate::api::discovery::KUBERNETES_VERSION;
use crate::api::kinds::{LEASES, NODE_LEASE_NAMESPACE, NODES};
use crate::api::{ApiError, ApiResult, Part};

/// Creates the Node object (or keeps the existing one) and posts its status.
///
/// # Errors
/// When the API refuses or cannot be reached.
pub async fn register(node: &NodeContext) -> ApiResult<()> {
    match node
        .plane
        .create(&NODES, None, node_object(&node.config))
        .await
    {
        Ok(_) | Err(ApiError::AlreadyExists { .. }) => {}
        Err(error) => return Err(error),
    }
    post_status(node).await
}

/// Renews the Lease every `lease_interval` and posts the Node status every
/// `heartbeat_interval`, and at once after the API comes back from an outage, until `shutdown`.
pub async fn run(node: Arc<NodeContext>, shutdown: CancellationToken) {
    let config = &node.config;
    let mut lease = tokio::time::interval(config.lease_interval);
    let mut status = tokio::time::interval(config.heartbeat_interval);
    let mut reachable = true;
    loop {
        let result = tokio::select! {
            _ = lease.tick() => renew_lease(&node).await,
            _ = status.tick() => post_status(&node).await,
            // A turn of DiskPressure is news for the scheduler now, not at the next heartbeat.
            _ = node.disk_pressure.changed() => post_status(&node).await,
            _ = shutdown.cancelled() => return,
        };
        match result {
            Ok(()) if !reachable => {
                reachable = true;
                tracing::info!("API server reachable again");
                if let Err(error) = post_status(&node).await {
                    tracing::warn!(%error, "node status update failed");
                }
            }
            Ok(()) => {}
            Err(ApiError::NotFound { resource, .. }) if resource == NODES.plural => {
                tracing::warn!("Node object deleted; registering again");
                if let Err(error) = register(&node).await {
                    tracing::warn!(%error, "node registration failed");
                }
            }
            Err(error) => {
                if reachable {
                    tracing::warn!(%error, "node heartbeat failed");
                }
                reachable = !matches!(error, ApiError::Unavailable(_));
            }
        }
    }
}

/// How often a status write that raced another writer of the Node (the node IPAM controller
/// setting `spec.podCIDR`, the lifecycle controller's taints) is tried again on the fresh object.
const STATUS_ATTEMPTS: usize = 5;

async fn post_status(node: &NodeContext) -> ApiResult<()> {
    let mut attempt = 1;
    loop {
        match write_status(node).await {
            Err(ApiError::Conflict { .. }) if attempt < STATUS_ATTEMPTS => attempt += 1,
            written => return written,
        }
    }
}

async fn write_status(node: &NodeContext) -> ApiResult<()> {
    let name = &node.config.node_name;
    let mut object = node.plane.get(&NODES, None, name).await?;
    let data_dir = node.config.data_dir.clone();
    let disk = tokio::task::spawn_blocking(move || super::disk::fs_stats(&data_dir).ok())
        .await
        .ok()
        .flatten();
    let endpoint = node.endpoint.get().copied();
    object["status"] = node_status(&node.config, disk, node.disk_pressure.condition(), endpoint);
    node.plane
        .update(&NODES, None, name, object, Part::Status)
        .await
        .map(|_| ())
}

/// Moves the Lease's `renewTime` to now, creating the Lease on first use.
async fn renew_lease(node: &NodeContext) -> ApiResult<()> {
    let config = &node.config;
    let name = &config.node_name;
    let renew_time = Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true);
    let duration = config.lease_interval.as_secs().max(1) * 4;
    match node
        .plane
        .get(&LEASES, Some(NODE_LEASE_NAMESPACE), name)
        .await
    {
        Ok(mut lease) => {
            lease["spec"]["renewTime"] = json!(renew_time);
            lease["spec"]["holderIdentity"] = json!(name);
            node.plane
                .update(&LEASES, Some(NODE_LEASE_NAMESPACE), name, lease, Part::Main)
                .await?;
        }
        Err(ApiError::NotFound { .. }) => {
            let owner = node.plane.get(&NODES, None, name).await?;
            let lease = json!({
                "apiVersion": LEASES.api_version(),
                "kind": LEASES.kind,
                "metadata": {"name": name, "namespace": NODE_LEASE_NAMESPACE, "ownerReferences": [{
                    "apiVersion": NODES.api_version(), "kind": NODES.kind, "name": name,
                    "uid": owner["metadata"]["uid"],
                }]},
                "spec": {"holderIdentity": name, "leaseDurationSeconds": duration,
                         "renewTime": renew_time},
            });
            node.plane
                .create(&LEASES, Some(NODE_LEASE_NAMESPACE), lease)
                .await?;
        }
        Err(error) => return Err(error),
    }
    Ok(())
}

fn node_object(config: &NodeConfig) -> Value {
    let mut labels = json!({
        "kubernetes.io/hostname": config.node_name,
        "kubernetes.io/os": "wasi",
        "kubernetes.io/arch": "wasm32",
    });
    if config.control_plane {
        labels["node-role.kubernetes.io/control-plane"] = json!("");
    }
    for (key, value) in &config.labels {
        labels[key] = json!(value);
    }
    json!({
        "apiVersion": NODES.api_version(),
        "kind": NODES.kind,
        "metadata": {"name": config.node_name, "labels": labels},
        "spec": {},
    })
}

/// The Node's status: `disk` is the data dir's filesystem (its ephemeral storage), `pressure`
/// the DiskPressure the housekeeping last found, with when it turned, `endpoint` where the
/// node serves tunnels and logs (the kubelet port).
fn node_status(
    config: &NodeConfig,
    disk: Option<FsStats>,
    pressure: Option<(bool, String)>,
    endpoint: Option<std::net::SocketAddr>,
) -> Value {
    let heartbeat = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
    let condition = |kind: &str, status: &str, reason: &str, message: &str| {
        json!({"type": kind, "status": status, "reason": reason, "message": message,
               "lastHeartbeatTime": heartbeat, "lastTransitionTime": config.started_at})
    };
    let resources = |memory: u64, storage: Option<u64>| {
        let mut list = json!({
            "cpu": format!("{}", config.capacity_cpu),
            "memory": format!("{}Ki", memory / 1024),
            "pods": format!("{}", config.capacity_pods),
        });
        if let Some(storage) = storage {
            list["ephemeral-storage"] = json!(format!("{}Ki", storage / 1024));
        }
        list
    };
    let storage = disk.map(|d| d.capacity_bytes);
    let allocatable_storage = storage.map(|s| s.saturating_sub(config.limits.reserved_storage));
    let mut disk_pressure = match pressure {
        Some((true, _)) => condition(
            "DiskPressure",
            "True",
            "KubeletHasDiskPressure",
            "kubelet has disk pressure",
        ),
        _ => condition(
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure",
        ),
    };
    if let Some((_, since)) = pressure {
        disk_pressure["lastTransitionTime"] = json!(since);
    }
    let (major, minor) = KUBERNETES_VERSION;
    let kubelet_port = endpoint.map_or(0, |e| e.port());
    json!({
        "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}},
        "capacity": resources(config.capacity_memory_bytes, storage),
        // What pods may use: the guests' memory is capped at this, below the machine's, and
        // their writes stop above the disk space kept for the store.
        "allocatable": resources(config.allocatable_memory(), allocatable_storage),
        "conditions": [
            condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            disk_pressure,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_reports_allocatable_below_capacity_and_disk_pressure_as_found() {
        let config = NodeConfig::new("n1", "/tmp/x".into());
        let disk = FsStats {
            capacity_bytes: 100 << 30,
            available_bytes: 5 << 30,
        };
        let status = node_status(
            &config,
            Some(disk),
            Some((true, "2024-01-01T00:00:00Z".into())),
            Some("127.0.0.1:10250".parse().unwrap()),
        );
        assert_eq!(status["daemonEndpoints"]["kubeletEndpoint"]["Port"], 10250);
        let ki = |list: &str, name: &str| {
            let text = status[list][name]
                .as_str()
                .unwrap()
                .trim_end_matches("Ki")
                .to_string();
            text.parse::<u64>().unwrap() * 1024
        };
        assert!(ki("allocatable", "memory") < ki("capacity", "memory"));
        assert_eq!(ki("capacity", "ephemeral-storage"), 100 << 30);
        assert_eq!(
            ki("allocatable", "ephemeral-storage"),
            (100 << 30) - config.limits.reserved_storage
        );
        let pressure = status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "DiskPressure")
            .unwrap();
        assert_eq!(pressure["status"], "True");
        assert_eq!(pressure["lastTransitionTime"], "2024-01-01T00:00:00Z");
    }

    #[test]
    fn only_the_control_plane_node_carries_the_control_plane_role() {
        let mut config = NodeConfig::new("n1", "/tmp/x".into());
        config.labels.insert("zone".into(), "edge".into());
        let labels = &node_object(&config)["metadata"]["labels"];
        assert!(
            labels
                .get("node-role.kubernetes.io/control-plane")
                .is_none()
        );
        assert_eq!(labels["zone"], "edge");
        assert_eq!(labels["kubernetes.io/hostname"], "n1");
        config.control_plane = true;
        let labels = &node_object(&config)["metadata"]["labels"];
        assert_eq!(labels["node-role.kubernetes.io/control-plane"], "");
    }
}
