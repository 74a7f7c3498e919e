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
//! requests, `peers` learns the other nodes' blocks, `policy` enforces NetworkPolicies, `outside`
//! keeps the outside hosts a pod may reach.

pub mod addresses;
pub mod denials;
pub mod egress;
pub mod http;
pub mod listener;
pub mod outside;
pub mod peers;
pub mod policy;
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
    /// What NetworkPolicies allow (everything until they are followed).
    pub policies: Arc<policy::NetworkPolicies>,
    /// The HTTP containers serving on this node, for its proxy.
    pub local_http: Arc<http::local::LocalHttpServers>,
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
            policies: Arc::default(),
            local_http: Arc::default(),
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
            Route::Refused => Err(DialError::Refused(to)),
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
            // From the host's own address: a pod's loopback one cannot leave the host.
            Route::Outside(host) => {
                let stream = tokio::net::TcpStream::connect(host)
                    .await
                    .map_err(|source| match source.kind() {
                        std::io::ErrorKind::ConnectionRefused => DialError::Refused(to),
                        _ => DialError::Io { target: to, source },
                    })?;
                let _ = stream.set_nodelay(true);
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
            outside: Arc::default(),
            kept_alive: Arc::default(),
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
    /// The outside hosts the pod looked up and may reach.
    outside: Arc<outside::OutsideHosts>,
    /// Idle connections of the guests' outgoing `wasi:http` requests.
    pub kept_alive: Arc<http::kept_alive::KeptAlive>,
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
        let destination = match &route {
            Route::Denied => return self.route_out(to),
            Route::Outside(_) | Route::Refused => None,
            Route::Local(host) => match host.ip() {
                IpAddr::V4(ip) => addresses::pod_ip_of(ip, self.address.pod_ip.octets()[0])
                    .map(|pod_ip| SocketAddr::from((pod_ip, host.port()))),
                IpAddr::V6(_) => None,
            },
            Route::Tunnel { target, .. } => Some(*target),
        };
        let address = &self.address;
        // Policies apply to the pod the connection reaches, after a Service's rewriting.
        if let Some(destination) = destination
            && !self.node.policies.allows(
                &address.namespace,
                &address.name,
                destination.ip(),
                destination.port(),
            )
        {
            self.denials.deny(to, denials::BY_POLICY);
            return Route::Denied;
        }
        route
    }

    /// Where a connection to `to`, which the cluster does not route, leaves it: an outside
    /// host the pod looked up by an allowed name, or one its policies name in an `ipBlock`.
    fn route_out(&self, to: SocketAddr) -> Route {
        if let Some(host) = self.outside.host_for(to) {
            return Route::Outside(host);
        }
        let (table, address) = (&self.node.table, &self.address);
        let in_cluster = match to.ip() {
            IpAddr::V4(ip) => {
                table.block().is_some_and(|b| b.contains(ip)) || table.peer_for(ip).is_some()
            }
            IpAddr::V6(_) => true,
        };
        if !in_cluster
            && self
                .node
                .policies
                .lets_out(&address.namespace, &address.name, to)
        {
            return Route::Outside(to);
        }
        self.denials.deny(to, denials::OUTSIDE);
        Route::Denied
    }

    /// The addresses `name` stands for, as this pod's guests see them. An ExternalName
    /// Service's host, or a host the pod's (or its namespace's) egress annotation names, is
    /// looked up on the node and allowed to the pod.
    pub fn resolve(&self, name: &str) -> Option<Vec<IpAddr>> {
        if let Ok(ip) = name.trim_matches(['[', ']']).parse::<IpAddr>() {
            return Some(vec![ip]);
        }
        let resolver = self.node.resolver();
        if let Some(found) = resolver.resolve(&self.address, name) {
            return Some(found);
        }
        let (namespace, pod) = (&self.address.namespace, &self.address.name);
        let host = match resolver.external(&self.address, name) {
            Some(host) => host,
            None if self.node.policies.names_egress_host(namespace, pod, name) => name.into(),
            None => return None,
        };
        self.outside.admit(&host)
    }

    /// The socket address check under the rewriting (defence in depth): guests bind only their
    /// pod's loopback address, connect only to local pods, the egress listener and the outside
    /// hosts they are allowed, and take
    /// connections and datagrams only from the cluster's loopback addresses.
    pub fn permits(&self, address: SocketAddr, usage: SocketAddrUse) -> bool {
        let IpAddr::V4(ip) = address.ip() else {
            return false;
        };
        match usage {
            // wasmtime asks for `0.0.0.0:0` before it connects a socket the guest left
            // unbound, which only a connect to an outside host does (the socket layer binds
            // every other to the pod's address first); a guest's own binds are rewritten to
            // the pod's loopback address before they get here.
            SocketAddrUse::TcpBind if ip.is_unspecified() && address.port() == 0 => true,
            SocketAddrUse::TcpBind | SocketAddrUse::UdpBind | SocketAddrUse::TcpListen => {
                ip == self.address.loopback
            }
            SocketAddrUse::TcpConnect => {
                self.node.table.is_local_loopback(ip)
                    || Some(address) == self.egress_address()
                    || self.outside.allows_host(address)
                    // Loopback only by name (above): an ipBlock never opens the host's own.
                    || !ip.is_loopback() && self.node.policies.lets_out(
                        &self.address.namespace,
                        &self.address.name,
                        address,
                    )
            }
            SocketAddrUse::UdpSend => {
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
        self.dial_along(self.route(to), to).await
    }

    /// A connection from this pod along `route` (as [`route`](Self::route) said for `to`).
    ///
    /// # Errors
    /// A denied, refused or unreachable destination.
    pub async fn dial_along(
        &self,
        route: Route,
        to: SocketAddr,
    ) -> Result<Box<dyn Connection>, DialError> {
        self.node.connect(route, to, &self.address).await
    }
}
