//! A whole cluster in one process, as `wasmkube up` runs it: store, API server, controllers,
//! scheduler and an embedded node agent — or, for `wasmkube server`, all but the node.

mod components;
mod tokens;

pub use components::COMPONENTS;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api::Api;
use crate::api::kubelet_client::KubeletClient;
use crate::api::server::{self, Context};
use crate::api::service_network::ServiceNetwork;
use crate::client::control_plane::ControlPlane;
use crate::controller_runtime::backoff::Backoff;
use crate::controller_runtime::supervisor::supervise;
use crate::controllers::node_ipam::NodeIpamConfig;
use crate::controllers::node_lifecycle::NodeLifecycleConfig;
use crate::dns::DnsConfig;
use crate::events::Recorder;
use crate::node::agent::Agent;
use crate::node::allocatable::NodeLimits;
use crate::node::network::NodeNetwork;
use crate::node::runtime::Runtime;
use crate::node::status_batch::StatusBatch;
use crate::node::{NodeConfig, NodeContext};
use crate::proxy::{Dialer, PodsOrHost, ProxyConfig, ServiceTable};
use crate::store::SqliteStore;

/// How to start a cluster.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub data_dir: PathBuf,
    pub api_addr: SocketAddr,
    /// The embedded node's name.
    pub node_name: String,
    /// Whether a node agent runs in this process (`up`); `server` has none.
    pub embedded_node: bool,
    /// Components not to start (`--disable`), named as in [`COMPONENTS`].
    pub disabled: Vec<String>,
    pub node_lifecycle: NodeLifecycleConfig,
    /// Crash-loop back-off of the embedded node (Kubernetes' 10 s doubling to 5 min by default).
    pub backoff: Backoff,
    pub heartbeat_interval: Duration,
    /// Revisions of history kept for watches; older ones answer 410 Gone.
    pub watch_history: u64,
    /// What the embedded node keeps for itself and lets its pods use.
    pub node_limits: NodeLimits,
    /// The cluster's pod range and the nodes' blocks of it.
    pub node_ipam: NodeIpamConfig,
    /// Where the embedded node's endpoint listens (0: any free port).
    pub kubelet_port: u16,
    /// Where Services' cluster IPs and node ports come from.
    pub service_network: ServiceNetwork,
    /// Where cluster DNS answers, and for which domain.
    pub dns: DnsConfig,
    /// Where the service proxy's load balancers and node ports listen.
    pub proxy: ProxyConfig,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            data_dir: default_data_dir(),
            api_addr: SocketAddr::from(([127, 0, 0, 1], 6443)),
            node_name: default_node_name(),
            embedded_node: true,
            disabled: Vec::new(),
            node_lifecycle: NodeLifecycleConfig::default(),
            backoff: Backoff::default(),
            heartbeat_interval: Duration::from_secs(10),
            watch_history: crate::store::DEFAULT_HISTORY,
            node_limits: NodeLimits::default(),
            node_ipam: NodeIpamConfig::default(),
            kubelet_port: crate::node::DEFAULT_KUBELET_PORT,
            service_network: ServiceNetwork::default(),
            dns: DnsConfig::default(),
            proxy: ProxyConfig::default(),
        }
    }
}

/// `~/.wasmkube`, or `./.wasmkube` without a home directory.
pub fn default_data_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".wasmkube")
}

/// The host name, lower-cased into a valid node name; `wasmkube` when there is none.
pub fn default_node_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let name: String = host
        .trim()
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let name = name.trim_matches(|c| c == '-' || c == '.').to_string();
    if name.is_empty() {
        "wasmkube".into()
    } else {
        name
    }
}

/// A running cluster.
pub struct Cluster {
    api: Arc<Api>,
    address: SocketAddr,
    token: String,
    node_token: String,
    ca_pem: String,
    data_dir: PathBuf,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    /// The embedded node's runtime, whose guests end with the cluster.
    guests: Option<Runtime>,
}

impl Cluster {
    /// Opens the store under `data_dir`, serves the API on `api_addr` and starts the
    /// controllers and (unless `embedded_node` is off) the node. Returns once the API answers.
    ///
    /// # Errors
    /// When the data directory, store, listener or runtime cannot be set up, or `disabled`
    /// names an unknown component.
    pub async fn start(config: ClusterConfig) -> anyhow::Result<Cluster> {
        components::check_disabled(&config.disabled)?;
        config.node_ipam.validate().map_err(anyhow::Error::msg)?;
        crate::node::disk::create_private_dir(&config.data_dir)
            .with_context(|| format!("cannot create data dir {}", config.data_dir.display()))?;
        let store_path = config.data_dir.join("store.db");
        private_store_files(&store_path)?;
        let store = SqliteStore::open_with_history(&store_path, config.watch_history)
            .context("cannot open the store")?;
        let api = Api::with_service_network(Arc::new(store), config.service_network.clone());
        api.bootstrap()
            .context("cannot create the system namespaces and the kubernetes Service")?;
        let token = tokens::admin_token(&config.data_dir)?;
        let tls_dir = config.data_dir.join("tls");
        let tls = crate::tls::load_or_create(&tls_dir, config.api_addr)
            .context("cannot set up the API's TLS certificates")?;
        let issuer = Arc::new(
            crate::tls::Issuer::load(&tls_dir)
                .context("cannot load the cluster CA to sign with")?,
        );
        let api_identity = issuer
            .api_server_client()
            .context("cannot issue the API server's certificate towards nodes")?;
        api.set_kubelet_client(
            KubeletClient::new(&api_identity).context("cannot set up the client of nodes")?,
        );
        let node_token = tokens::node_token(&config.data_dir, &tls.ca_pem)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(crate::tls::server_config(&tls)?);
        let listener = TcpListener::bind(config.api_addr)
            .await
            .with_context(|| format!("cannot listen on {}", config.api_addr))?;
        let address = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let context = Arc::new(Context {
            api: api.clone(),
            tokens: vec![token.clone(), node_token.clone()],
            ca_pem: tls.ca_pem.clone(),
            address,
            tls: acceptor,
            shutdown: shutdown.clone(),
            in_flight: Default::default(),
            images: crate::images::ImageStore::open(&config.data_dir),
            issuer: Some(issuer.clone()),
        });
        let mut tasks = vec![tokio::spawn(server::serve(listener, context))];
        tasks.extend(components::start(&api, &config, &shutdown));
        let mut guests = None;
        if config.embedded_node {
            let (node, table) =
                start_embedded_node(&api, &config, &issuer, &shutdown, &mut tasks).await?;
            let policies = node.network.policies.clone();
            tasks.push(tokio::spawn(policies.follow(api.clone(), shutdown.clone())));
            let plane = ControlPlane::InProcess(api.clone());
            tasks.push(node.network.serve_node_ports(
                config.proxy.node_ip,
                table.clone(),
                &plane,
                &config.node_name,
                &shutdown,
            ));
            let dialer = node.network.clone();
            tasks.push(start_load_balancers(
                &api, &config, table, dialer, &shutdown,
            ));
            guests = Some(node.runtime.clone());
        } else {
            // Without a node of its own, the control plane reaches pods through every node's
            // tunnel, as the API server may.
            let network = NodeNetwork::of_control_plane(
                &api_identity,
                ControlPlane::InProcess(api.clone()),
                shutdown.clone(),
            )
            .context("cannot set up the load balancers' way to the nodes")?;
            let policies = network.policies.clone();
            tasks.push(tokio::spawn(policies.follow(api.clone(), shutdown.clone())));
            let table = Arc::new(ServiceTable::default());
            let follow = table.clone().follow(api.clone(), shutdown.clone());
            tasks.push(tokio::spawn(follow));
            tasks.push(start_load_balancers(
                &api, &config, table, network, &shutdown,
            ));
        }
        let cluster = Cluster {
            api,
            address,
            token,
            node_token,
            ca_pem: tls.ca_pem,
            data_dir: config.data_dir,
            shutdown,
            tasks,
            guests,
        };
        crate::client::kubeconfig::write(
            &cluster.kubeconfig_path(),
            &cluster.api_url(),
            Some(&cluster.ca_pem),
            &cluster.token,
            "wasmkube",
        )
        .context("cannot write the kubeconfig")?;
        Ok(cluster)
    }

    pub fn api(&self) -> &Arc<Api> {
        &self.api
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `https://IP:PORT`; loopback when the API listens on every address, since the server
    /// certificate names loopback but not the unspecified address.
    pub fn api_url(&self) -> String {
        let mut address = self.address;
        match address.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => address.set_ip(Ipv4Addr::LOCALHOST.into()),
            IpAddr::V6(ip) if ip.is_unspecified() => address.set_ip(Ipv6Addr::LOCALHOST.into()),
            _ => {}
        }
        format!("https://{address}")
    }

    /// The PEM of the cluster CA, which signs the API's server certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A client of the API authenticated as the admin, trusting the cluster CA.
    ///
    /// # Errors
    /// Never in practice: the CA was parsed when the server started.
    pub fn client(&self) -> Result<crate::client::Client, crate::client::ClientError> {
        crate::client::Client::with_ca(&self.api_url(), &self.token, &self.ca_pem)
    }

    pub fn token(&self) -> String {
        self.token.clone()
    }

    /// The token nodes join with (`wasmkube agent --token`), also in `<data-dir>/node-token`.
    pub fn node_token(&self) -> &str {
        &self.node_token
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn kubeconfig_path(&self) -> PathBuf {
        self.data_dir.join("kubeconfig")
    }

    /// Stops serving, stops the pods (they run again at the next start) and waits for it all.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        for task in std::mem::take(&mut self.tasks) {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

impl Drop for Cluster {
    /// A cluster dropped without [`Cluster::shutdown`] (a test's) stops too, and its guests
    /// with it.
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(runtime) = &self.guests {
            runtime.stop_guests();
        }
    }
}

/// The store's database is its owner's alone: created 0600 before SQLite opens it (SQLite
/// gives its journal files the database's mode), and tightened if an older run left it looser.
fn private_store_files(store_path: &Path) -> anyhow::Result<()> {
    crate::node::disk::ensure_private_file(store_path)
        .with_context(|| format!("cannot create {}", store_path.display()))?;
    for suffix in ["-wal", "-shm"] {
        let mut journal = store_path.as_os_str().to_owned();
        journal.push(suffix);
        let journal = PathBuf::from(journal);
        if journal.exists() {
            crate::node::disk::ensure_private_file(&journal)
                .with_context(|| format!("cannot restrict {}", journal.display()))?;
        }
    }
    Ok(())
}

/// The node agent of `up`, talking to the API in process, with the Services' table its guests
/// and the proxy share.
async fn start_embedded_node(
    api: &Arc<Api>,
    config: &ClusterConfig,
    issuer: &crate::tls::Issuer,
    shutdown: &CancellationToken,
    tasks: &mut Vec<JoinHandle<()>>,
) -> anyhow::Result<(Arc<NodeContext>, Arc<ServiceTable>)> {
    let mut node_config = NodeConfig::new(&config.node_name, config.data_dir.clone());
    let address: IpAddr = node_config
        .host_ip
        .parse()
        .context("the node address is not an IP")?;
    node_config.identity = Some(
        issuer
            .node_identity(&config.node_name, &[address])
            .context("cannot issue the node's certificate")?,
    );
    node_config.kubelet_port = config.kubelet_port;
    node_config.backoff = config.backoff;
    node_config.heartbeat_interval = config.heartbeat_interval;
    node_config.control_plane = true;
    node_config.limits = config.node_limits.clone();
    let guest_open_files = crate::node::allocatable::raise_open_file_limit();
    let runtime = Runtime::new(node_config.runtime_config(guest_open_files))
        .context("cannot start the wasmtime runtime")?;
    let node = Arc::new(
        NodeContext::new(
            ControlPlane::InProcess(api.clone()),
            runtime,
            Recorder::new(api.clone(), "kubelet", &config.node_name),
            node_config,
            Some(StatusBatch::start(api.clone())),
        )
        .context("cannot start the node's log writer")?,
    );
    let plane = ControlPlane::InProcess(api.clone());
    let (table, followers) =
        (node.network).follow_services(&plane, &config.node_name, &config.dns.domain, shutdown);
    tasks.extend(followers);
    Agent::start(node.clone(), shutdown.clone())
        .await
        .context("cannot register the node")?;
    Ok((node, table))
}

/// The service proxy's load balancers, reaching pods through `pods` (the embedded node's
/// network, or the tunnels of a control plane without one) and other endpoints from the host.
fn start_load_balancers(
    api: &Arc<Api>,
    config: &ClusterConfig,
    table: Arc<ServiceTable>,
    pods: Arc<NodeNetwork>,
    shutdown: &CancellationToken,
) -> JoinHandle<()> {
    let recorder = Recorder::new(api.clone(), "service-proxy", &config.node_name);
    let (api, proxy, stop) = (api.clone(), config.proxy, shutdown.clone());
    let pod_network = config.node_ipam.cluster_cidr;
    let dialer: Arc<dyn Dialer> = Arc::new(PodsOrHost {
        is_pod_ip: Box::new(move |ip| pod_network.contains(ip)),
        pods,
    });
    let run = move || {
        let (api, table, dialer) = (api.clone(), table.clone(), dialer.clone());
        crate::proxy::run_load_balancers(api, proxy, table, dialer, recorder.clone(), stop.clone())
    };
    tokio::spawn(supervise("load-balancers", shutdown.clone(), run))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use serde_json::json;

    use crate::api::kinds::PODS;
    use crate::testing::{Cluster, eventually};

    /// The in-process node holds the API; the API must not hold the node back (it serves its
    /// logs), nor a guest still running its runtime: else every cluster dropped in one
    /// process (tests, benches) kept its store, its threads and its engine's terabytes of
    /// reserved address space until the process ran out of them.
    #[test]
    fn a_dropped_cluster_with_a_guest_running_is_freed_whole() {
        let threads = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let api = threads.block_on(async {
            let cluster = Cluster::start().await.unwrap();
            let image = concat!(env!("WASMKUBE_SAMPLES_DIR"), "/exerciser.wasm");
            let pod = json!({"metadata": {"name": "sleeper"}, "spec": {"containers": [
                {"name": "c", "image": image, "args": ["sleep", "600000"]}]}});
            let api = cluster.api().clone();
            api.create(&PODS, Some("default"), pod).unwrap();
            eventually(Duration::from_secs(30), "the guest running", || async {
                let pod = api.get(&PODS, Some("default"), "sleeper").ok()?;
                (pod["status"]["phase"] == "Running").then_some(())
            })
            .await;
            Arc::downgrade(&api)
        });
        drop(threads);
        eventually_blocking(|| api.upgrade().is_none(), "the cluster's API freed");
    }

    /// Polls `freed` for a few seconds (the guest threads end in the background).
    fn eventually_blocking(freed: impl Fn() -> bool, what: &str) {
        for _ in 0..200 {
            if freed() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("{what}: still held");
    }
}
