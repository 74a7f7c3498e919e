//! A throwaway cluster for test suites (ephemeral port, temporary data dir, fast back-off),
//! and [`eventually`] to wait on it.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let cluster = wasmkube::testing::Cluster::start().await?;
//! let client = cluster.client();
//! let pods = client.get("/api/v1/namespaces/default/pods").await?;
//! # Ok(()) }
//! ```

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::api::Api;
use crate::cidr::Ipv4Block;
use crate::client::Client;
use crate::cluster::{self, ClusterConfig};
use crate::controller_runtime::backoff::Backoff;
use crate::controllers::node_ipam::NodeIpamConfig;
use crate::dns::DnsConfig;
use crate::proxy::ProxyConfig;

/// A cluster that lives as long as the value (its data dir is removed on drop, unless kept).
pub struct Cluster {
    inner: Option<cluster::Cluster>,
    data_dir: tempfile::TempDir,
    dns_addr: SocketAddr,
    proxy: ProxyConfig,
}

impl Cluster {
    /// Starts a cluster with test-friendly settings: back-off of 100 ms doubling to 1 s.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(|_| {}).await
    }

    /// Starts a cluster after `adjust` has changed the test defaults.
    pub async fn start_with(adjust: impl FnOnce(&mut ClusterConfig)) -> anyhow::Result<Self> {
        let data_dir = tempfile::Builder::new()
            .prefix("wasmkube-test-")
            .tempdir()?;
        let number = cluster_number();
        let mut config = ClusterConfig {
            data_dir: data_dir.path().to_path_buf(),
            api_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            node_name: "node-1".into(),
            backoff: Backoff {
                initial: Duration::from_millis(100),
                max: Duration::from_secs(1),
            },
            heartbeat_interval: Duration::from_secs(1),
            kubelet_port: 0,
            dns: DnsConfig {
                addr: free_dns_address()?,
                ..DnsConfig::default()
            },
            proxy: own_proxy_addresses(number),
            node_ipam: own_node_ipam(number),
            ..ClusterConfig::default()
        };
        adjust(&mut config);
        let (dns_addr, proxy) = (config.dns.addr, config.proxy);
        let inner = cluster::Cluster::start(config).await?;
        Ok(Self {
            inner: Some(inner),
            data_dir,
            dns_addr,
            proxy,
        })
    }

    fn inner(&self) -> &cluster::Cluster {
        self.inner
            .as_ref()
            .expect("cluster is running until dropped")
    }

    /// An HTTP client of the API, authenticated as the admin.
    pub fn client(&self) -> Client {
        self.inner().client().expect("the cluster CA parses")
    }

    /// The PEM of the cluster CA that signs the API's certificate.
    pub fn ca_pem(&self) -> String {
        self.inner().ca_pem().to_string()
    }

    /// The in-process API (skips HTTP, not admission).
    pub fn api(&self) -> &Arc<Api> {
        self.inner().api()
    }

    pub fn api_url(&self) -> String {
        self.inner().api_url()
    }

    /// The token `wasmkube agent --token` joins this cluster with.
    pub fn node_token(&self) -> String {
        self.inner().node_token().to_string()
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.inner().kubeconfig_path()
    }

    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// Where the cluster's DNS server answers (UDP and TCP).
    pub fn dns_addr(&self) -> SocketAddr {
        self.dns_addr
    }

    /// Where its load balancers' addresses come from and its node ports listen.
    pub fn proxy(&self) -> ProxyConfig {
        self.proxy
    }

    /// Stops the cluster and waits for its tasks.
    pub async fn shutdown(mut self) {
        if let Some(inner) = self.inner.take() {
            inner.shutdown().await;
        }
    }
}

/// A node address and load balancer pool of this cluster's own, so clusters running side by
/// side (tests of one binary, or of several) do not take each other's node ports: loopback
/// addresses outside the pods' (`127.0.x.y`), spread by process and counted within it.
fn own_proxy_addresses(n: u32) -> ProxyConfig {
    let octet = |value: u32, base: u32, span: u32| (base + value % span) as u8;
    let node_ip = Ipv4Addr::new(127, 0, octet(n, 1, 99), octet(n / 99, 1, 250));
    let pool = Ipv4Addr::new(127, 0, octet(n, 128, 127), octet(n / 127, 0, 16) * 16);
    ProxyConfig {
        lb_pool: Ipv4Block::new(pool, 28).expect("a /28 on a multiple of 16"),
        node_ip: node_ip.into(),
    }
}

/// A number telling this process's clusters, and other test processes', apart.
fn cluster_number() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    std::process::id()
        .wrapping_mul(97)
        .wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A pod range of this cluster's own, `10.B.0.0/16`: pods' loopback addresses are 127.B.x.y,
/// so the pods of clusters running side by side never share one (B skips 0, the host's, and
/// 96–111, the default service range).
fn own_node_ipam(n: u32) -> NodeIpamConfig {
    let b = 112 + n % 144;
    NodeIpamConfig {
        cluster_cidr: Ipv4Block::new(Ipv4Addr::new(10, b as u8, 0, 0), 16)
            .expect("a /16 on its boundary"),
        ..NodeIpamConfig::default()
    }
}

/// A loopback port free for both UDP and TCP just now, for the DNS server (which must bind
/// both on one port, so it cannot take an ephemeral one of each).
fn free_dns_address() -> std::io::Result<SocketAddr> {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0")?;
        let address = udp.local_addr()?;
        if std::net::TcpListener::bind(address).is_ok() {
            return Ok(address);
        }
    }
}

/// Polls `check` every 20 ms until it yields a value; panics with `what` after `limit`.
///
/// # Panics
/// When `limit` passes first: a test's wait never hangs.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
