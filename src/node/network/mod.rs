//! The pod network of a node (DESIGN §6): a private loopback address per pod, pod IPs from the
//! node's block, guests' sockets shadowed so addresses are rewritten and nothing outside the
//! pod network is reachable, HTTP components served on their ports, and the authenticated
//! tunnel that carries connections to pods of other nodes.
//!
//! `addresses` hands out pod IPs and maps them to loopback addresses, `denials` counts and
//! reports what was refused, `routing` decides where
//! a connection goes (the seam Services extend), `sockets` shadows `wasi:sockets`, `egress`
//! and `tunnel` carry connections to other nodes, `listener` is the node's HTTPS endpoint
//! (tunnel, container logs), `http` serves `wasi:http` components and routes their outgoing
//! requests, `peers` learns the other nodes' blocks.

pub mod addresses;
pub mod denials;
pub mod egress;
pub mod http;
pub mod listener;
pub mod peers;
pub mod routing;
pub mod services;
pub mod sockets;
pub mod tunnel;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, OnceLock};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;
use wasmtime_wasi::sockets::SocketAddrUse;

use addresses::is_cluster_loopback;
use routing::{HostsResolver, PodAddress, PodRouter, PodTable, Resolver, Route, Router};
use services::{ClusterResolver, ServiceRouter};

use crate::cidr::Ipv4Block;

/// What the node's network could not do.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("the node's TLS identity is unusable: {0}")]
    Identity(#[from] crate::tls::TlsError),
    #[error("cannot listen for tunnelled connections at {address}: {source}")]
    Egress {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Why a connection a guest asked for was not made.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    #[error("the pod network does not allow {0}")]
    Denied(SocketAddr),
    #[error("nothing listens at {0}")]
    Refused(SocketAddr),
    #[error("{target} is unreachable: {reason}")]
    Unreachable { target: SocketAddr, reason: String },
    #[error("connecting to {target}: {source}")]
    Io {
        target: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A byte stream to a pod: a local TCP connection or a tunnelled one.
pub trait Connection: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Connection for T {}

/// The node's pod network: its pod table, how connections are routed and names resolved, and
/// the tunnel to other nodes.
pub struct NodeNetwork {
    pub table: Arc<PodTable>,
    /// Where connections to pod IPs go.
    pods: Arc<PodRouter>,
    /// Services and cluster DNS, once the cluster offers them (see [`NodeNetwork::use_services`]);
    /// until then pod IPs and the hosts file only.
    services: OnceLock<(ServiceRouter, ClusterResolver)>,
    pub tunnel: tunnel::TunnelClient,
    egress: OnceLock<egress::Egress>,
}

impl NodeNetwork {
    /// A network routing pod IPs only (no Services yet); `tunnel` carries connections to pods
    /// of other nodes.
    pub fn new(tunnel: tunnel::TunnelClient) -> Arc<NodeNetwork> {
        let table = Arc::new(PodTable::default());
        let pods = Arc::new(PodRouter {
            table: table.clone(),
        });
        Arc::new(NodeNetwork {
            table,
            pods,
            services: OnceLock::new(),
            tunnel,
            egress: OnceLock::new(),
        })
    }

    /// Routes guests' connections to cluster IPs through `services` and resolves their names
    /// through cluster DNS (`dns`) from now on; a second call changes nothing.
    pub fn use_services(
        &self,
        services: Arc<crate::proxy::ServiceTable>,
        dns: crate::dns::Resolver,
    ) {
        let router = ServiceRouter {
            services,
            pods: self.pods.clone(),
        };
        let _ = self.services.set((router, ClusterResolver { dns }));
    }

    fn router(&self) -> &dyn Router {
        match self.services.get() {
            Some((router, _)) => router,
            None => self.pods.as_ref(),
        }
    }

    fn resolver(&self) -> &dyn Resolver {
        match self.services.get() {
            Some((_, resolver)) => resolver,
            None => &HostsResolver,
        }
    }

    /// A connection along `route` to `to` (the address asked for, for errors), from a socket
    /// bound at `from`'s loopback address and, through a tunnel, in its name.
    async fn connect(
        &self,
        route: Route,
        to: SocketAddr,
        from: &PodAddress,
    ) -> Result<Box<dyn Connection>, DialError> {
        match route {
            Route::Denied => Err(DialError::Denied(to)),
            Route::Local(host) => {
                let socket = tokio::net::TcpSocket::new_v4()
                    .and_then(|s| s.bind(from.on_host(0)).map(|()| s))
                    .map_err(|source| DialError::Io { target: to, source })?;
                let stream = socket.connect(host).await.map_err(|source| {
                    if source.kind() == std::io::ErrorKind::ConnectionRefused {
                        DialError::Refused(to)
                    } else {
                        DialError::Io { target: to, source }
                    }
                })?;
                let _ = stream.set_nodelay(true);
                Ok(Box::new(stream))
            }
            Route::Tunnel { node, target } => {
                let stream = self.tunnel.open(&node, target, from.pod_ip).await?;
                Ok(Box::new(stream))
            }
        }
    }

    /// Takes `block` (the node's `spec.podCIDR`) and starts taking tunnelled connections of
    /// its guests, until `shutdown`.
    ///
    /// # Errors
    /// When the egress listener cannot bind.
    pub async fn start(
        &self,
        block: Ipv4Block,
        shutdown: CancellationToken,
    ) -> Result<(), NetworkError> {
        self.table.assign_block(block);
        if self.egress.get().is_some() {
            return Ok(());
        }
        let gateway = self.table.gateway().unwrap_or(block.base());
        let egress = egress::Egress::start(addresses::loopback_of(gateway), shutdown).await?;
        let _ = self.egress.set(egress);
        Ok(())
    }

    /// The node's own loopback address (its gateway's), which probes connect from.
    pub fn node_loopback(&self) -> Option<Ipv4Addr> {
        self.table.gateway().map(addresses::loopback_of)
    }

    /// The network as a pod at `address` sees it.
    pub fn pod(self: &Arc<Self>, address: Arc<PodAddress>) -> PodNet {
        PodNet {
            address,
            node: self.clone(),
            denials: Arc::default(),
            drain: http::serve::Drain::default(),
        }
    }
}

/// One pod's view of the network; every container and request instance of the pod holds one.
#[derive(Clone)]
pub struct PodNet {
    pub address: Arc<PodAddress>,
    node: Arc<NodeNetwork>,
    /// What the network refused the pod's guests.
    pub denials: Arc<denials::Denials>,
    /// Winds down the pod's HTTP containers when it terminates.
    pub drain: http::serve::Drain,
}

impl PodNet {
    pub fn node(&self) -> &Arc<NodeNetwork> {
        &self.node
    }

    /// Where a connection of this pod's guests to `to` goes: the pod itself for its own
    /// addresses, else wherever the node's router says.
    /// A denied route is counted and reported (see [`denials`]).
    pub fn route(&self, to: SocketAddr) -> Route {
        if self.address.is_own(to.ip()) {
            return Route::Local(self.address.on_host(to.port()));
        }
        let route = self.node.router().route(&self.address, to);
        if route == Route::Denied {
            self.denials.deny(to);
        }
        route
    }

    /// The addresses `name` stands for, as this pod's guests see them.
    pub fn resolve(&self, name: &str) -> Option<Vec<IpAddr>> {
        if let Ok(ip) = name.trim_matches(['[', ']']).parse::<IpAddr>() {
            return Some(vec![ip]);
        }
        self.node.resolver().resolve(&self.address, name)
    }

    /// The socket address check under the rewriting (defence in depth): guests bind only their
    /// pod's loopback address, connect only to local pods and the egress listener, and take
    /// connections and datagrams only from the cluster's loopback addresses.
    pub fn permits(&self, address: SocketAddr, usage: SocketAddrUse) -> bool {
        let IpAddr::V4(ip) = address.ip() else {
            return false;
        };
        match usage {
            SocketAddrUse::TcpBind | SocketAddrUse::UdpBind | SocketAddrUse::TcpListen => {
                ip == self.address.loopback
            }
            SocketAddrUse::TcpConnect | SocketAddrUse::UdpSend => {
                self.node.table.is_local_loopback(ip) || Some(address) == self.egress_address()
            }
            SocketAddrUse::TcpAccept | SocketAddrUse::UdpReceive => is_cluster_loopback(ip),
        }
    }

    /// Where guests' sockets connect to reach a pod of another node.
    pub fn egress_address(&self) -> Option<SocketAddr> {
        self.node.egress.get().map(egress::Egress::address)
    }

    /// Opens a tunnel to `target` on `node` for a guest socket bound at `from` (its host
    /// address), to be picked up when that socket connects to the egress address.
    ///
    /// # Errors
    /// The tunnel's refusal, or no egress listener.
    pub async fn tunnel_for_socket(
        &self,
        node: &routing::NodeEndpoint,
        target: SocketAddr,
        from: SocketAddr,
    ) -> Result<SocketAddr, DialError> {
        let egress = self.node.egress.get().ok_or(DialError::Denied(target))?;
        let stream = self
            .node
            .tunnel
            .open(node, target, self.address.pod_ip)
            .await?;
        egress.expect(from, stream);
        Ok(egress.address())
    }

    /// A connection from this pod to `to` (for `wasi:http` requests), local or tunnelled.
    ///
    /// # Errors
    /// A denied, refused or unreachable destination.
    pub async fn dial(&self, to: SocketAddr) -> Result<Box<dyn Connection>, DialError> {
        self.node.connect(self.route(to), to, &self.address).await
    }
}
