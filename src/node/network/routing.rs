//! Where a guest's connection goes: the seam the socket layer and the `wasi:http` hook ask.
//!
//! A [`Router`] maps the address a guest dials to a place on the host (its own pod's or another
//! local pod's loopback address), another node's tunnel, or nowhere. [`PodRouter`] knows pod
//! IPs; Services wrap it to rewrite ClusterIPs to endpoints before delegating, and a
//! [`Resolver`] turns names into the addresses routers understand.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, RwLock};

use super::addresses::{PodIps, loopback_of, pod_ip_of};
use crate::cidr::Ipv4Block;

/// One pod's addresses on its node, and who it is (for names and events).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodAddress {
    pub namespace: String,
    pub name: String,
    /// The cluster-wide address (`status.podIP`).
    pub pod_ip: Ipv4Addr,
    /// The host address its sockets bind (see [`super::addresses`]).
    pub loopback: Ipv4Addr,
}

impl PodAddress {
    pub fn new(namespace: &str, name: &str, pod_ip: Ipv4Addr) -> PodAddress {
        PodAddress {
            namespace: namespace.to_string(),
            name: name.to_string(),
            pod_ip,
            loopback: loopback_of(pod_ip),
        }
    }

    /// Whether a guest dialling or binding `ip` means its own pod: any loopback address
    /// (`127.0.0.1`, `localhost`), the unspecified address, or its own pod IP.
    pub fn is_own(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => v4.is_loopback() || v4.is_unspecified() || v4 == self.pod_ip,
            IpAddr::V6(_) => false,
        }
    }

    /// `port` of this pod on the host.
    pub fn on_host(&self, port: u16) -> SocketAddr {
        SocketAddr::from((self.loopback, port))
    }

    /// How a host address reads to this pod's guests: its own loopback address is
    /// `127.0.0.1` when `local` (the other end is in the pod too, or there is none) and its
    /// pod IP otherwise; another pod's (or a node's) loopback address is that pod IP.
    pub fn guest_view(&self, host: SocketAddr, local: bool) -> SocketAddr {
        let IpAddr::V4(ip) = host.ip() else {
            return host;
        };
        let seen = if ip == self.loopback {
            if local {
                Ipv4Addr::LOCALHOST
            } else {
                self.pod_ip
            }
        } else {
            pod_ip_of(ip, self.pod_ip.octets()[0]).unwrap_or(ip)
        };
        SocketAddr::from((seen, host.port()))
    }
}

/// Where another node serves its tunnel (its kubelet endpoint).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeEndpoint {
    pub name: String,
    pub address: SocketAddr,
}

/// Where a connection goes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    /// A socket on this host: a pod of this node, at its loopback address.
    Local(SocketAddr),
    /// A pod of another node, reached through that node's tunnel.
    Tunnel {
        node: NodeEndpoint,
        target: SocketAddr,
    },
    /// An address outside the cluster the pod is allowed (see [`super::outside`]), on the
    /// host's network.
    Outside(SocketAddr),
    /// Not reachable from this pod (the guest gets `access-denied`).
    Denied,
    /// A Service with no ready endpoint: refused at once, as kube-proxy rejects it (the
    /// guest gets `connection-refused`).
    Refused,
}

/// Decides where a guest's connection to `to` goes (`to` is never the pod's own address: the
/// socket layer keeps those in the pod).
pub trait Router: Send + Sync {
    fn route(&self, from: &PodAddress, to: SocketAddr) -> Route;
}

/// Turns a name a guest looks up into addresses; `None`: no such name.
pub trait Resolver: Send + Sync {
    fn resolve(&self, from: &PodAddress, name: &str) -> Option<Vec<IpAddr>>;

    /// The outside host `name` stands for (an ExternalName Service's), if it stands for one.
    fn external(&self, _from: &PodAddress, _name: &str) -> Option<String> {
        None
    }
}

/// What a node knows of pod addresses: its own block and pods, and the other nodes' blocks.
#[derive(Debug, Default)]
pub struct PodTable {
    state: RwLock<TableState>,
}

#[derive(Debug, Default)]
struct TableState {
    ips: Option<PodIps>,
    pods: HashMap<Ipv4Addr, Arc<PodAddress>>,
    peers: Vec<(Ipv4Block, NodeEndpoint)>,
}

impl PodTable {
    /// Takes `block` as this node's (its `spec.podCIDR`); a block already set stays.
    pub fn assign_block(&self, block: Ipv4Block) {
        let mut state = self.write();
        if state.ips.is_none() {
            state.ips = Some(PodIps::new(block));
        }
    }

    pub fn block(&self) -> Option<Ipv4Block> {
        self.read().ips.as_ref().map(PodIps::block)
    }

    /// The node's own address in its block.
    pub fn gateway(&self) -> Option<Ipv4Addr> {
        self.read().ips.as_ref().map(PodIps::gateway)
    }

    /// Gives a pod an address (`previous` if it is free), `None` when there is no block yet
    /// or it is full.
    pub fn claim(
        &self,
        namespace: &str,
        name: &str,
        previous: Option<Ipv4Addr>,
    ) -> Option<Arc<PodAddress>> {
        let mut state = self.write();
        let ip = state.ips.as_mut()?.claim(previous)?;
        let address = Arc::new(PodAddress::new(namespace, name, ip));
        state.pods.insert(ip, address.clone());
        Some(address)
    }

    /// The pod left the node: its address is free again.
    pub fn release(&self, pod_ip: Ipv4Addr) {
        let mut state = self.write();
        state.pods.remove(&pod_ip);
        if let Some(ips) = state.ips.as_mut() {
            ips.release(pod_ip);
        }
    }

    /// The local pod at `pod_ip`.
    pub fn local(&self, pod_ip: Ipv4Addr) -> Option<Arc<PodAddress>> {
        self.read().pods.get(&pod_ip).cloned()
    }

    /// Whether `loopback` is a local pod's loopback address.
    pub fn is_local_loopback(&self, loopback: Ipv4Addr) -> bool {
        let state = self.read();
        let Some(ips) = &state.ips else { return false };
        let first = ips.block().base().octets()[0];
        pod_ip_of(loopback, first).is_some_and(|ip| state.pods.contains_key(&ip))
    }

    /// Replaces what is known of the other nodes' blocks and tunnel endpoints.
    pub fn set_peers(&self, peers: Vec<(Ipv4Block, NodeEndpoint)>) {
        self.write().peers = peers;
    }

    /// Whether `ip` is in this node's block or a known node's.
    pub fn holds(&self, ip: Ipv4Addr) -> bool {
        self.block().is_some_and(|block| block.contains(ip)) || self.peer_for(ip).is_some()
    }

    /// The other node whose block holds `ip`.
    pub fn peer_for(&self, ip: Ipv4Addr) -> Option<NodeEndpoint> {
        let state = self.read();
        let (_, node) = state.peers.iter().find(|(block, _)| block.contains(ip))?;
        Some(node.clone())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, TableState> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, TableState> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// The pod network without Services: pod IPs of this node go to the pod's loopback address,
/// pod IPs of other nodes through their tunnel, everything else nowhere.
pub struct PodRouter {
    pub table: Arc<PodTable>,
}

impl Router for PodRouter {
    fn route(&self, _from: &PodAddress, to: SocketAddr) -> Route {
        let IpAddr::V4(ip) = to.ip() else {
            return Route::Denied;
        };
        if let Some(pod) = self.table.local(ip) {
            return Route::Local(pod.on_host(to.port()));
        }
        if self.table.block().is_some_and(|block| block.contains(ip)) {
            // An address of this node no pod holds, or the node's own: nothing for a guest.
            return Route::Denied;
        }
        match self.table.peer_for(ip) {
            Some(node) => Route::Tunnel { node, target: to },
            None => Route::Denied,
        }
    }
}

/// Names without cluster DNS: `localhost` and the pod's own host name (its name, as in a
/// Kubernetes pod's `/etc/hosts`).
pub struct HostsResolver;

impl Resolver for HostsResolver {
    fn resolve(&self, from: &PodAddress, name: &str) -> Option<Vec<IpAddr>> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if name == "localhost" || name.ends_with(".localhost") {
            return Some(vec![Ipv4Addr::LOCALHOST.into()]);
        }
        (name == from.name).then(|| vec![from.pod_ip.into()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(name: &str) -> NodeEndpoint {
        NodeEndpoint {
            name: name.into(),
            address: "127.0.0.1:10250".parse().unwrap(),
        }
    }

    fn table() -> Arc<PodTable> {
        let table = Arc::new(PodTable::default());
        table.assign_block("10.244.1.0/24".parse().unwrap());
        table.set_peers(vec![("10.244.2.0/24".parse().unwrap(), endpoint("n2"))]);
        table
    }

    #[test]
    fn pod_ips_route_to_local_pods_to_other_nodes_or_nowhere() {
        let table = table();
        let a = table.claim("default", "a", None).unwrap();
        let b = table.claim("default", "b", None).unwrap();
        let router = PodRouter {
            table: table.clone(),
        };
        let to = |ip: Ipv4Addr| SocketAddr::from((ip, 80));
        assert_eq!(router.route(&a, to(b.pod_ip)), Route::Local(b.on_host(80)));
        let remote = Ipv4Addr::new(10, 244, 2, 9);
        assert_eq!(
            router.route(&a, to(remote)),
            Route::Tunnel {
                node: endpoint("n2"),
                target: to(remote)
            }
        );
        for nowhere in [
            Ipv4Addr::new(10, 244, 1, 200),
            Ipv4Addr::new(10, 244, 1, 1),
            Ipv4Addr::new(10, 244, 3, 1),
            Ipv4Addr::new(192, 168, 1, 1),
            Ipv4Addr::new(127, 0, 0, 1),
        ] {
            assert_eq!(router.route(&a, to(nowhere)), Route::Denied, "{nowhere}");
        }
        table.release(b.pod_ip);
        assert_eq!(router.route(&a, to(b.pod_ip)), Route::Denied);
    }

    #[test]
    fn guests_see_127_0_0_1_inside_their_pod_and_pod_ips_outside_it() {
        let a = PodAddress::new("default", "a", Ipv4Addr::new(10, 244, 1, 5));
        let own = a.on_host(9000);
        assert_eq!(a.guest_view(own, true), "127.0.0.1:9000".parse().unwrap());
        assert_eq!(a.guest_view(own, false), "10.244.1.5:9000".parse().unwrap());
        let other = "127.244.2.9:80".parse().unwrap();
        assert_eq!(a.guest_view(other, true), "10.244.2.9:80".parse().unwrap());
        assert!(a.is_own("127.0.0.1".parse().unwrap()));
        assert!(a.is_own("127.9.9.9".parse().unwrap()));
        assert!(a.is_own("0.0.0.0".parse().unwrap()));
        assert!(a.is_own("10.244.1.5".parse().unwrap()));
        assert!(!a.is_own("10.244.1.6".parse().unwrap()));
        assert!(!a.is_own("::1".parse().unwrap()));
    }

    #[test]
    fn localhost_and_the_pods_own_name_resolve_and_nothing_else() {
        let a = PodAddress::new("default", "web-1", Ipv4Addr::new(10, 244, 1, 5));
        let localhost = Some(vec![IpAddr::from(Ipv4Addr::LOCALHOST)]);
        assert_eq!(HostsResolver.resolve(&a, "localhost"), localhost);
        assert_eq!(HostsResolver.resolve(&a, "LocalHost."), localhost);
        assert_eq!(
            HostsResolver.resolve(&a, "web-1"),
            Some(vec![IpAddr::from(a.pod_ip)])
        );
        assert_eq!(HostsResolver.resolve(&a, "example.com"), None);
    }
}
