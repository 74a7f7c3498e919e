//! A whole cluster in one process, as `wasmkube up` runs it: store, API server, controllers,
//! scheduler and an embedded node agent.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api::Api;
use crate::api::server::{self, Context};
use crate::events::Recorder;
use crate::node::agent::Agent;
use crate::node::backoff::Backoff;
use crate::node::runtime::{Runtime, RuntimeConfig};
use crate::node::{NodeConfig, NodeContext};
use crate::store::SqliteStore;

/// How to start a cluster.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub data_dir: PathBuf,
    pub api_addr: SocketAddr,
    pub node_name: String,
    /// Crash-loop back-off of the embedded node (Kubernetes' 10 s doubling to 5 min by default).
    pub backoff: Backoff,
    pub heartbeat_interval: Duration,
    /// Revisions of history kept for watches; older ones answer 410 Gone.
    pub watch_history: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            data_dir: default_data_dir(),
            api_addr: SocketAddr::from(([127, 0, 0, 1], 6443)),
            node_name: default_node_name(),
            backoff: Backoff::default(),
            heartbeat_interval: Duration::from_secs(10),
            watch_history: crate::store::DEFAULT_HISTORY,
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
fn default_node_name() -> String {
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
    ca_pem: String,
    data_dir: PathBuf,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Cluster {
    /// Opens the store under `data_dir`, serves the API on `api_addr` and starts the
    /// controllers and the embedded node. Returns once the API answers.
    ///
    /// # Errors
    /// When the data directory, store, listener or runtime cannot be set up.
    pub async fn start(config: ClusterConfig) -> anyhow::Result<Cluster> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("cannot create data dir {}", config.data_dir.display()))?;
        let store =
            SqliteStore::open_with_history(&config.data_dir.join("store.db"), config.watch_history)
                .context("cannot open the store")?;
        let api = Api::new(Arc::new(store));
        api.bootstrap()
            .context("cannot create the system namespaces")?;
        let token = admin_token(&config.data_dir)?;
        let tls = crate::tls::load_or_create(&config.data_dir.join("tls"), config.api_addr)
            .context("cannot set up the API's TLS certificates")?;
        let acceptor = tokio_rustls::TlsAcceptor::from(crate::tls::server_config(&tls)?);
        let listener = TcpListener::bind(config.api_addr)
            .await
            .with_context(|| format!("cannot listen on {}", config.api_addr))?;
        let address = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let mut tasks = Vec::new();
        let context = Arc::new(Context {
            api: api.clone(),
            token: token.clone(),
            address,
            tls: acceptor,
            shutdown: shutdown.clone(),
        });
        tasks.push(tokio::spawn(server::serve(listener, context)));
        tasks.push(tokio::spawn(crate::controllers::namespace::run(
            api.clone(),
            shutdown.clone(),
        )));
        tasks.push(tokio::spawn(crate::controllers::replica_set::run(
            api.clone(),
            shutdown.clone(),
        )));
        tasks.push(tokio::spawn(crate::controllers::deployment::run(
            api.clone(),
            shutdown.clone(),
        )));
        tasks.push(tokio::spawn(crate::controllers::garbage_collector::run(
            api.clone(),
            shutdown.clone(),
        )));
        tasks.push(tokio::spawn(crate::scheduler::run(
            api.clone(),
            shutdown.clone(),
        )));
        let runtime = Runtime::new(RuntimeConfig {
            cache_dir: config.data_dir.join("cache"),
            ..RuntimeConfig::default()
        })
        .context("cannot start the wasmtime runtime")?;
        let mut node_config = NodeConfig::new(&config.node_name, config.data_dir.clone());
        node_config.backoff = config.backoff;
        node_config.heartbeat_interval = config.heartbeat_interval;
        let node = Arc::new(NodeContext {
            recorder: Recorder::new(api.clone(), "kubelet", &config.node_name),
            api: api.clone(),
            runtime,
            config: node_config,
        });
        Agent::start(node, shutdown.clone()).context("cannot register the node")?;
        let cluster = Cluster {
            api,
            address,
            token,
            ca_pem: tls.ca_pem,
            data_dir: config.data_dir,
            shutdown,
            tasks,
        };
        crate::cli::kubeconfig::write(
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
    pub fn client(&self) -> Result<crate::cli::client::Client, crate::cli::client::ClientError> {
        crate::cli::client::Client::with_ca(&self.api_url(), &self.token, &self.ca_pem)
    }

    pub fn token(&self) -> String {
        self.token.clone()
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn kubeconfig_path(&self) -> PathBuf {
        self.data_dir.join("kubeconfig")
    }

    /// Stops serving, stops the pods (they run again at the next start) and waits for it all.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

/// The admin bearer token, made on first start and kept (mode 0600) in the data dir.
fn admin_token(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join("admin-token");
    if let Ok(token) = std::fs::read_to_string(&path) {
        let token = token.trim().to_string();
        if !token.is_empty() {
            return Ok(token);
        }
    }
    let token = hex::encode(rand::random::<[u8; 24]>());
    write_private(&path, &token).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(token)
}

/// Writes a file only its owner may read.
pub fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())
}
