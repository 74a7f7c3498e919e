//! `agent`: a node joining a cluster over the network; it runs the pods the scheduler binds
//! to it, and keeps running them while the API server is away.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use tokio_util::sync::CancellationToken;

use super::node_args::NodeArgs;
use super::up::shutdown_signal;
use super::{GlobalArgs, print};
use crate::api::ApiError;
use crate::client::control_plane::ControlPlane;
use crate::events::Recorder;
use crate::node::agent::Agent;
use crate::node::join::{self, JoinError};
use crate::node::runtime::Runtime;
use crate::node::{NodeConfig, NodeContext};

/// How long to wait before trying an unreachable server again.
const RETRY: Duration = Duration::from_secs(1);

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The API server to join (`https://HOST:PORT`)
    #[arg(long, value_name = "URL")]
    pub server: String,
    /// The node token (the server's <data-dir>/node-token)
    #[arg(
        long,
        env = "WASMKUBE_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: String,
    /// This node's name [default: the host name]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// A label of the Node (repeatable): KEY=VALUE
    #[arg(long = "node-label", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    /// The address other nodes and the API server reach this node at, and where NodePort
    /// Services listen
    #[arg(
        long,
        alias = "node-ip",
        default_value = "127.0.0.1",
        value_name = "IP"
    )]
    pub address: std::net::IpAddr,
    /// The domain of Services' DNS names, as the server's `--cluster-domain`
    #[arg(long, default_value = "cluster.local", value_name = "DOMAIN")]
    pub cluster_domain: String,
    #[command(flatten)]
    pub node: NodeArgs,
}

fn parse_label(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("invalid label {text:?}: expected KEY=VALUE"))?;
    Ok((key.to_string(), value.to_string()))
}

pub async fn run(global: &GlobalArgs, args: AgentArgs) -> anyhow::Result<()> {
    let name = args
        .name
        .clone()
        .unwrap_or_else(crate::cluster::default_node_name);
    let data_dir = global
        .data_dir
        .clone()
        .unwrap_or_else(|| default_agent_dir(&name));
    crate::node::disk::create_private_dir(&data_dir)
        .with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
    let shutdown = CancellationToken::new();
    let client = tokio::select! {
        client = join_when_reachable(&args.server, &args.token) => client?,
        signal = shutdown_signal() => bail!("{signal} received before the node joined"),
    };
    let identity = tokio::select! {
        identity = identity_when_reachable(&client, &name, args.address) => identity?,
        signal = shutdown_signal() => bail!("{signal} received before the node joined"),
    };
    let mut config = NodeConfig::new(&name, data_dir);
    config.labels = args.labels.iter().cloned().collect::<BTreeMap<_, _>>();
    config.host_ip = args.address.to_string();
    config.limits = args.node.limits();
    config.kubelet_port = args.node.kubelet_port;
    config.identity = Some(identity);
    let guest_open_files = crate::node::allocatable::raise_open_file_limit();
    let runtime = Runtime::new(config.runtime_config(guest_open_files))
        .context("cannot start the wasmtime runtime")?;
    let plane = ControlPlane::Remote(Box::new(client));
    let recorder = Recorder::new(plane.clone(), "kubelet", &name);
    let node = Arc::new(
        NodeContext::new(plane.clone(), runtime, recorder, config, None)
            .context("cannot start the node's log writer")?,
    );
    // Guests on this node reach Services and resolve their names as on the server's node, and
    // its node ports answer on its address.
    let (table, _followers) =
        (node.network).follow_services(&plane, &name, &args.cluster_domain, &shutdown);
    let _node_ports =
        (node.network).serve_node_ports(args.address, table, &plane, &name, &shutdown);
    let policies = node.network.policies.clone();
    tokio::spawn(policies.follow(plane.clone(), shutdown.clone()));
    tokio::select! {
        started = register_when_reachable(node, &shutdown) => started?,
        signal = shutdown_signal() => bail!("{signal} received before the node registered"),
    }
    print(&format!("node {name} joined {}\n", args.server))?;
    let signal = shutdown_signal().await;
    eprintln!("\n{signal} received, stopping the node's pods");
    shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok(())
}

/// `~/.wasmkube/agents/NAME`: several agents on one host keep apart by default.
fn default_agent_dir(name: &str) -> PathBuf {
    crate::cluster::default_data_dir().join("agents").join(name)
}

/// Connects, retrying while the server cannot be reached; a bad token or CA is final.
async fn join_when_reachable(server: &str, token: &str) -> anyhow::Result<crate::client::Client> {
    loop {
        match join::connect(server, token).await {
            Ok(client) => return Ok(client),
            Err(error @ JoinError::FetchCa(_)) => {
                tracing::warn!(%error, "cannot reach the server yet; retrying");
                tokio::time::sleep(RETRY).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// The node's certificate from the control plane, retrying while the server cannot be reached.
async fn identity_when_reachable(
    client: &crate::client::Client,
    name: &str,
    address: std::net::IpAddr,
) -> anyhow::Result<crate::tls::Identity> {
    loop {
        match join::node_identity(client, name, address).await {
            Ok(identity) => return Ok(identity),
            // Anything but the server's answer is a transport failure: try again.
            Err(JoinError::Identity(cause))
                if !matches!(cause, crate::client::ClientError::Api(_)) =>
            {
                let error = JoinError::Identity(cause);
                tracing::warn!(%error, "cannot reach the server yet; retrying");
                tokio::time::sleep(RETRY).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

async fn register_when_reachable(
    node: Arc<NodeContext>,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    loop {
        match Agent::start(node.clone(), shutdown.clone()).await {
            Ok(_) => return Ok(()),
            Err(error @ ApiError::Unavailable(_)) => {
                tracing::warn!(%error, "cannot register the node yet; retrying");
                tokio::time::sleep(RETRY).await;
            }
            Err(error) => return Err(error).context("cannot register the node"),
        }
    }
}
