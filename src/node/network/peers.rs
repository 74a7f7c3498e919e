//! What a node learns of the others from their Node objects: each one's block of pod IPs
//! (`spec.podCIDR`) and tunnel endpoint (InternalIP and kubelet port); and its own block, which
//! the control plane assigns after it registers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::routing::{NodeEndpoint, PodTable};
use crate::api::ApiResult;
use crate::api::kinds::NODES;
use crate::api::kubelet_client::endpoint;
use crate::cidr::Ipv4Block;
use crate::client::control_plane::ControlPlane;

/// Waits between attempts to reach the API server, doubling up to the cap.
const RETRY: (Duration, Duration) = (Duration::from_millis(200), Duration::from_secs(2));

/// A node's block, as its Node object says.
pub fn pod_cidr(node: &Value) -> Option<Ipv4Block> {
    node["spec"]["podCIDR"].as_str()?.parse().ok()
}

/// Keeps `table`'s peers in step with the Node objects, and `own` with this node's block,
/// until `shutdown`.
pub async fn follow(
    plane: ControlPlane,
    node_name: String,
    table: Arc<PodTable>,
    own: watch::Sender<Option<Ipv4Block>>,
    shutdown: CancellationToken,
) {
    let mut delay = RETRY.0;
    while !shutdown.is_cancelled() {
        let mut known = BTreeMap::new();
        match watch_nodes(&plane, &node_name, &table, &own, &mut known, &shutdown).await {
            Ok(()) => delay = RETRY.0,
            Err(error) => {
                tracing::debug!(%error, "following the nodes failed; retrying");
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = shutdown.cancelled() => return,
                }
                delay = (delay * 2).min(RETRY.1);
            }
        }
    }
}

async fn watch_nodes(
    plane: &ControlPlane,
    node_name: &str,
    table: &PodTable,
    own: &watch::Sender<Option<Ipv4Block>>,
    known: &mut BTreeMap<String, Value>,
    shutdown: &CancellationToken,
) -> ApiResult<()> {
    let (nodes, version) = plane.list(&NODES, "").await?;
    for node in nodes {
        let name = node["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        known.insert(name, node);
    }
    publish(node_name, table, own, known);
    let mut events = plane.watch(&NODES, "", &version, shutdown).await?;
    loop {
        let event = tokio::select! {
            event = events.next() => event,
            () = shutdown.cancelled() => return Ok(()),
        };
        let event = match event {
            Some(event) => event?,
            None => return Ok(()),
        };
        let name = event.object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if event.kind == "DELETED" {
            known.remove(&name);
        } else {
            known.insert(name, event.object);
        }
        publish(node_name, table, own, known);
    }
}

/// Puts what the nodes say into the table: the others as peers, this one's block as its own.
fn publish(
    node_name: &str,
    table: &PodTable,
    own: &watch::Sender<Option<Ipv4Block>>,
    nodes: &BTreeMap<String, Value>,
) {
    let mut peers = Vec::new();
    for (name, node) in nodes {
        let Some(block) = pod_cidr(node) else {
            continue;
        };
        if name == node_name {
            own.send_if_modified(|current| {
                let changed = current.is_none();
                current.get_or_insert(block);
                changed
            });
            continue;
        }
        if let Some(address) = endpoint(node) {
            let name = name.clone();
            peers.push((block, NodeEndpoint { name, address }));
        }
    }
    table.set_peers(peers);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, cidr: Option<&str>, port: Option<u16>) -> Value {
        let mut node = json!({"metadata": {"name": name}, "spec": {},
            "status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}]}});
        if let Some(cidr) = cidr {
            node["spec"]["podCIDR"] = json!(cidr);
        }
        if let Some(port) = port {
            node["status"]["daemonEndpoints"] = json!({"kubeletEndpoint": {"Port": port}});
        }
        node
    }

    #[test]
    fn other_nodes_with_a_block_and_an_endpoint_become_peers_and_ours_is_our_block() {
        let table = PodTable::default();
        let (own, mut seen) = watch::channel(None);
        let nodes: BTreeMap<String, Value> = [
            node("me", Some("10.244.1.0/24"), Some(1)),
            node("peer", Some("10.244.2.0/24"), Some(10250)),
            node("no-block", None, Some(10250)),
            node("no-endpoint", Some("10.244.3.0/24"), None),
        ]
        .into_iter()
        .map(|n| (n["metadata"]["name"].as_str().unwrap().to_string(), n))
        .collect();
        publish("me", &table, &own, &nodes);
        assert!(seen.has_changed().unwrap());
        assert_eq!(
            *seen.borrow_and_update(),
            Some("10.244.1.0/24".parse().unwrap())
        );
        let peer = table.peer_for("10.244.2.9".parse().unwrap()).unwrap();
        assert_eq!(peer.name, "peer");
        assert_eq!(peer.address, "127.0.0.1:10250".parse().unwrap());
        assert!(table.peer_for("10.244.3.9".parse().unwrap()).is_none());
        assert!(table.peer_for("10.244.1.9".parse().unwrap()).is_none());
    }
}
