//! `server`: the control plane alone — API server, store, controllers, scheduler — for nodes
//! that join with `wasmkube agent`; also the control-plane flags `up` shares.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use tokio::time::Instant;

use super::up::shutdown_signal;
use super::{GlobalArgs, parse_duration, print};
use crate::api::service_network::{Ipv4Cidr, ServiceNetwork, parse_port_range};
use crate::cidr::Ipv4Block;
use crate::cluster::{Cluster, ClusterConfig};
use crate::controllers::node_ipam::NodeIpamConfig;
use crate::dns::DnsConfig;

/// Flags of the control plane, for `up` and `server`.
#[derive(Clone, Debug, Args)]
pub struct ControlPlaneArgs {
    /// Do not start a component (repeatable or comma-separated): scheduler, namespace,
    /// replicaset, deployment, endpoints, dns, garbage-collector, apiextensions, node-ipam,
    /// node-lifecycle
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    pub disable: Vec<String>,
    /// How long a node may stay silent before it is marked NotReady (Unknown)
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub node_monitor_grace_period: Duration,
    /// How long pods stay on an unreachable node before they are evicted
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub pod_eviction_timeout: Duration,
    /// The pods' IP range; each node gets a block of it (`Node.spec.podCIDR`)
    #[arg(long, default_value = "10.244.0.0/16", value_name = "CIDR")]
    pub cluster_cidr: Ipv4Block,
    /// The size of each node's block of the pod range, as a prefix length
    #[arg(long, default_value_t = 24, value_name = "BITS")]
    pub node_cidr_mask_size: u8,
    /// The IPv4 range Services' cluster IPs come from
    #[arg(long, default_value = "10.96.0.0/12", value_name = "CIDR")]
    pub service_cidr: Ipv4Cidr,
    /// The ports NodePort and LoadBalancer Services' node ports come from
    #[arg(long, default_value = "30000-32767", value_parser = parse_port_range, value_name = "FIRST-LAST")]
    pub service_node_port_range: RangeInclusive<u16>,
    /// Where cluster DNS answers, on UDP and TCP
    #[arg(long, default_value = "127.0.0.1:10053", value_name = "ADDR")]
    pub dns_addr: SocketAddr,
    /// The domain of Services' DNS names
    #[arg(long, default_value = "cluster.local", value_name = "DOMAIN")]
    pub cluster_domain: String,
    /// The addresses LoadBalancer Services get, one each, listened on by the built-in proxy
    #[arg(long, default_value = "127.0.100.0/24", value_name = "CIDR")]
    pub lb_pool: Ipv4Block,
}

impl ControlPlaneArgs {
    /// Sets these flags on `config`.
    pub fn configure(&self, config: &mut ClusterConfig) {
        config.disabled = self.disable.clone();
        config.node_lifecycle.grace_period = self.node_monitor_grace_period;
        config.node_lifecycle.eviction_timeout = self.pod_eviction_timeout;
        config.node_ipam = NodeIpamConfig {
            cluster_cidr: self.cluster_cidr,
            node_mask: self.node_cidr_mask_size,
        };
        config.service_network = ServiceNetwork {
            cidr: self.service_cidr,
            node_ports: self.service_node_port_range.clone(),
        };
        config.dns = DnsConfig {
            addr: self.dns_addr,
            domain: self.cluster_domain.clone(),
        };
        config.proxy.lb_pool = self.lb_pool;
    }
}

#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Where the API server listens
    #[arg(long, default_value = "127.0.0.1:6443", value_name = "ADDR")]
    pub api_addr: SocketAddr,
    #[command(flatten)]
    pub control_plane: ControlPlaneArgs,
}

pub async fn run(global: &GlobalArgs, args: ServerArgs) -> anyhow::Result<()> {
    let mut config = ClusterConfig {
        api_addr: args.api_addr,
        embedded_node: false,
        ..ClusterConfig::default()
    };
    if let Some(data_dir) = &global.data_dir {
        config.data_dir = data_dir.clone();
    }
    args.control_plane.configure(&mut config);
    let started = Instant::now();
    let cluster = Cluster::start(config)
        .await
        .context("cannot start the control plane")?;
    print(&banner(&cluster, started.elapsed()))?;
    let signal = shutdown_signal().await;
    eprintln!("\n{signal} received, shutting down");
    cluster.shutdown().await;
    Ok(())
}

fn banner(cluster: &Cluster, took: Duration) -> String {
    let token_path = cluster.data_dir().join("node-token");
    format!(
        "wasmkube control plane is up ({} ms)\n  API server:  {}\n  kubeconfig:  {}\n  node token:  {}\n\nJoin a node:  wasmkube agent --server {} --token $(cat {}) --name NAME\nPress Ctrl-C to stop.\n\n",
        took.as_millis(),
        cluster.api_url(),
        cluster.kubeconfig_path().display(),
        token_path.display(),
        cluster.api_url(),
        token_path.display(),
    )
}
