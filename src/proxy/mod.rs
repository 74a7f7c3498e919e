//! The service proxy (DESIGN §6): a table of Services' addresses and their ready endpoints,
//! kept from the API through the controller runtime, that the node's router asks for cluster
//! IPs; and the built-in HTTP load balancer listening on LoadBalancer addresses (on the
//! control plane) and node ports (on every node).
//!
//! `table` picks endpoints, `load_balancer` keeps the load balancers' listeners and ingress
//! addresses, `node_ports` a node's node ports, `serve` forwards requests, `tcp` tells HTTP
//! from other TCP and splices the latter, `upgrade` carries WebSockets and other upgrades,
//! `backends` keeps connections to endpoints.

mod backends;
mod dial;
mod load_balancer;
mod node_ports;
mod serve;
mod table;
mod tcp;
mod upgrade;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};

use tokio_util::sync::CancellationToken;

pub use backends::ForwardBody;
pub use dial::{IsPodIp, PodsOrHost};
pub use serve::MAX_REQUEST_BODY;
pub use table::{AppProtocol, Front, InFlight, Pick, ServiceTable, load_balancer_ips};

use crate::api::Api;
use crate::cidr::Ipv4Block;
use crate::client::control_plane::ControlPlane;
use crate::controller_runtime::services::{self, ServiceState};
use crate::events::Recorder;

/// Where the proxy listens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProxyConfig {
    /// LoadBalancer Services' addresses come from here (`--lb-pool`).
    pub lb_pool: Ipv4Block,
    /// Node ports listen on this address (`--node-ip`).
    pub node_ip: IpAddr,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            lb_pool: Ipv4Block::new(Ipv4Addr::new(127, 0, 100, 0), 24).expect("a valid block"),
            node_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        }
    }
}

/// Serves LoadBalancer addresses from `table`, reaching endpoints through `dialer`, until
/// `shutdown`; bind failures are Warning events on the Service.
pub async fn run_load_balancers(
    api: Arc<Api>,
    config: ProxyConfig,
    table: Arc<ServiceTable>,
    dialer: Arc<dyn Dialer>,
    recorder: Recorder,
    shutdown: CancellationToken,
) {
    let backends = backends::Backends::new(dialer);
    load_balancer::LoadBalancer::new(api, config, table, backends, recorder)
        .run(shutdown)
        .await;
}

/// Serves a node's node ports on `node_ip` from its `table`, reaching endpoints through
/// `dialer`, until `shutdown`; bind failures are Warning events on the Service, read
/// through `plane`.
pub async fn run_node_ports(
    node_ip: IpAddr,
    table: Arc<ServiceTable>,
    dialer: Arc<dyn Dialer>,
    plane: ControlPlane,
    recorder: Recorder,
    shutdown: CancellationToken,
) {
    let backends = backends::Backends::new(dialer);
    let node_ports = node_ports::NodePorts {
        node_ip,
        table,
        backends,
        plane,
        recorder,
    };
    node_ports.run(shutdown).await;
}

/// What an answer the proxy passes on carries.
pub type ProxyBody = http_body_util::combinators::UnsyncBoxBody<bytes::Bytes, BoxError>;
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An endpoint served by this very process (an HTTP container of the node the proxy runs
/// beside): it takes requests without a connection.
pub type LocalHttp = Arc<
    dyn Fn(
            http::Request<backends::ForwardBody>,
        ) -> Pin<Box<dyn Future<Output = http::Response<ProxyBody>> + Send>>
        + Send
        + Sync,
>;

/// A byte stream to an endpoint.
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

/// Why an endpoint could not be reached (the proxy tries another).
#[derive(Debug, thiserror::Error)]
#[error("cannot connect: {0}")]
pub struct DialFailed(pub String);

/// A connection being made.
pub type Dialing<'a> =
    Pin<Box<dyn Future<Output = Result<Box<dyn Stream>, DialFailed>> + Send + 'a>>;

/// How the proxy reaches endpoints: pod IPs are not host addresses, so the node network
/// (which knows the pods' loopback addresses and the tunnel to other nodes) dials them.
pub trait Dialer: Send + Sync + 'static {
    fn dial(&self, to: SocketAddr) -> Dialing<'_>;

    /// The endpoint as this process serves it, when it does (see [`LocalHttp`]): HTTP goes to
    /// it without a connection; `None` for every endpoint by default.
    fn local_http(&self, endpoint: SocketAddr) -> Option<LocalHttp> {
        let _ = endpoint;
        None
    }

    /// Whether the NetworkPolicies of the pod at `endpoint` let `client` (outside the
    /// cluster, as the proxy's listeners see it) in; everything by default.
    fn admits(&self, client: IpAddr, endpoint: SocketAddr) -> bool {
        let _ = (client, endpoint);
        true
    }
}

impl ServiceTable {
    /// Keeps the table in line with the API's Services and EndpointSlices until `shutdown`.
    pub async fn follow(
        self: Arc<Self>,
        api: impl Into<ControlPlane>,
        shutdown: CancellationToken,
    ) {
        services::follow(api, shutdown, move |state: ServiceState<'_>| {
            self.set_service(state.namespace, state.name, state.service, state.slices);
        })
        .await;
    }
}
