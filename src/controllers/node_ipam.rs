//! Node IPAM (kube-controller-manager's range allocator): every node gets a block of the
//! cluster's pod range (`--cluster-cidr`) in `spec.podCIDR` and `spec.podCIDRs`, the first one
//! no other node holds. A node keeps its block for life; a deleted node's block is free again.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::api::kinds::NODES;
use crate::api::objects::take_items;
use crate::api::watch::follow;
use crate::api::{Api, ApiError, ApiResult, ListOptions, Part, WriteOptions};
use crate::cidr::{Ipv4Block, is_usable_node_block};
use crate::events::{EventType, Recorder};

/// The cluster's pod range and the size of each node's block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeIpamConfig {
    /// `--cluster-cidr`.
    pub cluster_cidr: Ipv4Block,
    /// Prefix length of a node's block (`--node-cidr-mask-size`).
    pub node_mask: u8,
}

impl Default for NodeIpamConfig {
    fn default() -> Self {
        NodeIpamConfig {
            cluster_cidr: Ipv4Block::new([10, 244, 0, 0].into(), 16).expect("a valid prefix"),
            node_mask: 24,
        }
    }
}

impl NodeIpamConfig {
    /// Checks the range can be cut into node blocks whose pods' loopback addresses are unique
    /// on a host (a cluster range of at most a /8, blocks no larger than it).
    ///
    /// # Errors
    /// Which flag is wrong and why.
    pub fn validate(&self) -> Result<(), String> {
        let cluster = self.cluster_cidr.prefix();
        if cluster < 8 {
            return Err(format!(
                "--cluster-cidr {}: must be a /8 or smaller (pods' loopback addresses are 127 and the low 24 bits of their IPs)",
                self.cluster_cidr
            ));
        }
        if self.node_mask < cluster || self.node_mask > 30 {
            return Err(format!(
                "--node-cidr-mask-size {}: must be between the cluster range's /{cluster} and /30",
                self.node_mask
            ));
        }
        Ok(())
    }
}

/// Assigns blocks to nodes that have none until `shutdown`.
pub async fn run(api: Arc<Api>, config: NodeIpamConfig, shutdown: CancellationToken) {
    let recorder = Recorder::new(api.clone(), "node-ipam-controller", "");
    follow(&api, &NODES, ListOptions::default(), &shutdown, |event| {
        if event.kind == "DELETED" || event.object["spec"]["podCIDR"].is_string() {
            return;
        }
        if let Err(error) = assign(&api, &config, &event.object, &recorder) {
            tracing::warn!(%error, "assigning a node its pod CIDR failed");
        }
    })
    .await;
}

/// Gives `node` the first free block of the range.
fn assign(api: &Api, config: &NodeIpamConfig, node: &Value, recorder: &Recorder) -> ApiResult<()> {
    let name = node["metadata"]["name"].as_str().unwrap_or_default();
    let nodes = take_items(&mut api.list(&NODES, None, &ListOptions::default())?);
    let taken: HashSet<Ipv4Block> = nodes
        .iter()
        .filter_map(|n| n["spec"]["podCIDR"].as_str()?.parse().ok())
        .collect();
    let Some(block) = first_free(config, &taken) else {
        let message = format!(
            "Node {name} status is now: CIDRNotAvailable (no block of {} is free)",
            config.cluster_cidr
        );
        recorder.record(node, None, EventType::Warning, "CIDRNotAvailable", &message);
        return Ok(());
    };
    let target = (&NODES, None, name, Part::Main);
    let written = api.update_retrying(target, false, &WriteOptions::default(), |node| {
        if !node["spec"]["podCIDR"].is_string() {
            node["spec"]["podCIDR"] = json!(block.to_string());
            node["spec"]["podCIDRs"] = json!([block.to_string()]);
        }
        Ok(())
    });
    match written {
        Ok(_) | Err(ApiError::NotFound { .. }) => Ok(()),
        Err(error) => Err(error),
    }
}

/// The first block of the range that no node holds and that maps onto no host loopback
/// address.
fn first_free(config: &NodeIpamConfig, taken: &HashSet<Ipv4Block>) -> Option<Ipv4Block> {
    let range = config.cluster_cidr;
    (0..range.subnets(config.node_mask))
        .filter_map(|index| range.subnet(config.node_mask, index))
        .find(|block| is_usable_node_block(block) && !taken.contains(block))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(cluster: &str, mask: u8) -> NodeIpamConfig {
        NodeIpamConfig {
            cluster_cidr: cluster.parse().unwrap(),
            node_mask: mask,
        }
    }

    #[test]
    fn nodes_get_the_first_free_block_and_none_on_the_hosts_loopback() {
        let defaults = NodeIpamConfig::default();
        let mut taken = HashSet::new();
        let first = first_free(&defaults, &taken).unwrap();
        assert_eq!(first.to_string(), "10.244.0.0/24");
        taken.insert(first);
        assert_eq!(
            first_free(&defaults, &taken).unwrap().to_string(),
            "10.244.1.0/24"
        );
        let wide = config("10.0.0.0/8", 24);
        assert_eq!(
            first_free(&wide, &HashSet::new()).unwrap().to_string(),
            "10.1.0.0/24",
            "10.0.x.x would be the host's 127.0.x.x"
        );
        let full = config("10.244.0.0/24", 24);
        let all: HashSet<_> = [full.cluster_cidr].into();
        assert_eq!(first_free(&full, &all), None);
    }

    #[test]
    fn a_range_wider_than_a_slash_8_or_blocks_wider_than_it_are_refused() {
        assert!(NodeIpamConfig::default().validate().is_ok());
        assert!(config("10.0.0.0/7", 24).validate().is_err());
        assert!(config("10.244.0.0/16", 12).validate().is_err());
        assert!(config("10.244.0.0/16", 31).validate().is_err());
    }
}
