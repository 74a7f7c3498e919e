//! The service table: every address a Service answers on (ClusterIP:port, node port, load
//! balancer ingress:port), the protocol its port speaks and the ready endpoints behind it,
//! chosen as `balance` says.

#[path = "table/balance.rs"]
mod balance;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Service, ServicePort};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use tokio::sync::watch;

pub use balance::InFlight;
use balance::{Algorithm, Balance};

/// How long a client sticks to its endpoint when the Service does not say (Kubernetes' 3 h).
const DEFAULT_AFFINITY: Duration = Duration::from_secs(10_800);

/// An address a Service answers on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Front {
    /// A cluster IP or a load balancer ingress address, with the Service's port.
    Address(SocketAddr),
    /// A node port, on whichever address the node listens.
    NodePort(u16),
}

/// Where a connection to a [`Front`] goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    /// No Service answers there.
    NotAService,
    /// The Service has no ready endpoint (left to try).
    NoEndpoint,
    Endpoint(SocketAddr),
}

/// The Services' fronts and endpoints; shared by the node's router and the proxy's listeners.
#[derive(Debug)]
pub struct ServiceTable {
    /// The node whose guests and node ports the table serves: a Service whose traffic policy
    /// is `Local` sends them to this node's endpoints only. `None` on the control plane.
    node: Option<String>,
    state: RwLock<State>,
    /// Bumped on every change, so listeners (and tests) learn of it.
    version: watch::Sender<u64>,
}

impl Default for ServiceTable {
    fn default() -> Self {
        Self {
            node: None,
            state: RwLock::default(),
            version: watch::channel(0).0,
        }
    }
}

#[derive(Debug, Default)]
struct State {
    fronts: HashMap<Front, Frontend>,
    /// `namespace/name` → the fronts it holds.
    by_service: HashMap<String, Vec<Front>>,
}

/// What a port of a Service speaks, as the proxy's listeners need to know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppProtocol {
    /// `appProtocol: http` or `kubernetes.io/h2c`, or without one a port named `http` or
    /// `http-...` (as Istio reads port names): balanced per request.
    Http,
    /// Any other `appProtocol` (`tcp`, `https`, `kubernetes.io/ws`, ...): balanced per
    /// connection, the bytes passed as they are.
    Tcp,
    /// Neither: the client's first bytes tell (250 ms of silence is TCP).
    Unset,
}

impl AppProtocol {
    fn of(port: &ServicePort) -> AppProtocol {
        match port.app_protocol.as_deref() {
            None | Some("") => Self::by_name(port.name.as_deref().unwrap_or_default()),
            Some("http" | "kubernetes.io/h2c") => AppProtocol::Http,
            Some(_) => AppProtocol::Tcp,
        }
    }

    /// A port's name saying HTTP, which spares its clients the sniff: a client slow to send
    /// its first request would otherwise be taken for a server-speaks-first protocol.
    fn by_name(name: &str) -> AppProtocol {
        let prefix = name.split('-').next().unwrap_or_default();
        match prefix {
            "http" => AppProtocol::Http,
            _ => AppProtocol::Unset,
        }
    }
}

#[derive(Debug)]
struct Frontend {
    endpoints: Vec<SocketAddr>,
    protocol: AppProtocol,
    balance: Arc<Balance>,
}

impl ServiceTable {
    /// The table of the node `node`, for its guests and its node ports.
    pub fn of_node(node: &str) -> ServiceTable {
        ServiceTable {
            node: Some(node.to_string()),
            ..ServiceTable::default()
        }
    }

    /// Replaces what is known of the Service `namespace/name` (`None`: it is gone).
    pub fn set_service(
        &self,
        namespace: &str,
        name: &str,
        service: Option<&Service>,
        slices: &[EndpointSlice],
    ) {
        let key = format!("{namespace}/{name}");
        let fronts = service
            .map(|s| fronts_of(s, slices, self.node.as_deref()))
            .unwrap_or_default();
        let affinity = service.and_then(affinity_of);
        let algorithm = service.map(Algorithm::of).unwrap_or_default();
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        let mut old: HashMap<Front, Frontend> = HashMap::new();
        for front in state.by_service.remove(&key).unwrap_or_default() {
            if let Some(frontend) = state.fronts.remove(&front) {
                old.insert(front, frontend);
            }
        }
        let mut held = Vec::with_capacity(fronts.len());
        for (front, protocol, endpoints) in fronts {
            let balance = match old.remove(&front) {
                Some(previous) if previous.balance.fits(algorithm, affinity) => {
                    previous.balance.keep_counts_of(&endpoints);
                    previous.balance
                }
                _ => Arc::new(Balance::new(algorithm, affinity)),
            };
            let frontend = Frontend {
                endpoints,
                protocol,
                balance,
            };
            state.fronts.insert(front, frontend);
            held.push(front);
        }
        if !held.is_empty() {
            state.by_service.insert(key, held);
        }
        drop(state);
        self.version.send_modify(|v| *v += 1);
    }

    /// The endpoint for a connection from `client` to `front`, skipping those in `tried`
    /// (endpoints a connect already failed to).
    pub fn pick(&self, front: Front, client: IpAddr, tried: &[SocketAddr]) -> Pick {
        self.choose(front, client, tried, false).0
    }

    /// As [`pick`](Self::pick), for a request or connection the proxy carries: with
    /// least requests, the endpoint counts it until the [`InFlight`] is dropped.
    pub fn pick_carried(
        &self,
        front: Front,
        client: IpAddr,
        tried: &[SocketAddr],
    ) -> (Pick, InFlight) {
        self.choose(front, client, tried, true)
    }

    fn choose(
        &self,
        front: Front,
        client: IpAddr,
        tried: &[SocketAddr],
        carried: bool,
    ) -> (Pick, InFlight) {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        let Some(frontend) = state.fronts.get(&front) else {
            return (Pick::NotAService, InFlight::default());
        };
        let candidates: Vec<SocketAddr> = frontend
            .endpoints
            .iter()
            .filter(|e| !tried.contains(e))
            .copied()
            .collect();
        match frontend.balance.choose(&candidates, client, carried) {
            Some((endpoint, in_flight)) => (Pick::Endpoint(endpoint), in_flight),
            None => (Pick::NoEndpoint, InFlight::default()),
        }
    }

    /// What the port behind `front` speaks; `None`: no Service answers there.
    pub fn protocol(&self, front: Front) -> Option<AppProtocol> {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        state.fronts.get(&front).map(|f| f.protocol)
    }

    /// The fronts the table holds now, with the Service holding each (`namespace/name`).
    pub fn fronts(&self) -> Vec<(Front, String)> {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        let mut fronts: Vec<(Front, String)> = state
            .by_service
            .iter()
            .flat_map(|(service, fronts)| fronts.iter().map(|f| (*f, service.clone())))
            .collect();
        fronts.sort_by_key(|(front, _)| format!("{front:?}"));
        fronts
    }

    /// Changes as they happen (the value counts them).
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// Waits until no front sends new connections to `ip` (a terminating pod's address).
    pub async fn until_no_front_sends_to(&self, ip: IpAddr) {
        let mut changes = self.changes();
        while self.sends_to(ip) {
            if changes.changed().await.is_err() {
                return;
            }
        }
    }

    /// Whether a front sends new connections to `ip`.
    pub fn sends_to(&self, ip: IpAddr) -> bool {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        let mut endpoints = state.fronts.values().flat_map(|f| &f.endpoints);
        endpoints.any(|endpoint| endpoint.ip() == ip)
    }
}

/// Every front of `service` with its port's protocol and the ready endpoints behind it, as the
/// node `node` sends to them: cluster IPs with `internalTrafficPolicy: Local` and node ports
/// with `externalTrafficPolicy: Local` to its own endpoints only.
fn fronts_of(
    service: &Service,
    slices: &[EndpointSlice],
    node: Option<&str>,
) -> Vec<(Front, AppProtocol, Vec<SocketAddr>)> {
    let Some(spec) = &service.spec else {
        return Vec::new();
    };
    let kind = spec.type_.as_deref().unwrap_or("ClusterIP");
    if kind == "ExternalName" {
        return Vec::new();
    }
    let cluster_ips: Vec<IpAddr> = spec
        .cluster_ips
        .iter()
        .flatten()
        .chain(spec.cluster_ip.iter())
        .filter_map(|ip| ip.parse().ok())
        .collect();
    let ingress: Vec<IpAddr> = match kind {
        "LoadBalancer" => load_balancer_ips(service),
        _ => Vec::new(),
    };
    let local = |policy: &Option<String>| policy.as_deref() == Some("Local");
    let internal_local = local(&spec.internal_traffic_policy);
    let external_local = local(&spec.external_traffic_policy);
    let mut fronts = Vec::new();
    for port in spec.ports.iter().flatten() {
        let endpoints = ready_endpoints(port, slices);
        let everywhere: Vec<SocketAddr> = endpoints.iter().map(|e| e.address).collect();
        let on_this_node: Vec<SocketAddr> = endpoints
            .iter()
            .filter(|e| node.is_some() && e.node.as_deref() == node)
            .map(|e| e.address)
            .collect();
        let protocol = AppProtocol::of(port);
        let mut add = |front: Front, local: bool| {
            if !fronts.iter().any(|(f, _, _)| *f == front) {
                let endpoints = if local { &on_this_node } else { &everywhere };
                fronts.push((front, protocol, endpoints.clone()));
            }
        };
        let service_port = u16::try_from(port.port).unwrap_or(0);
        for ip in &cluster_ips {
            add(
                Front::Address(SocketAddr::new(*ip, service_port)),
                internal_local,
            );
        }
        // The built-in load balancer reaches every endpoint straight, as a cloud one sends
        // only to nodes with endpoints: `Local` leaves it all of them.
        for ip in &ingress {
            add(Front::Address(SocketAddr::new(*ip, service_port)), false);
        }
        if let Some(node_port) = port.node_port.and_then(|p| u16::try_from(p).ok())
            && matches!(kind, "NodePort" | "LoadBalancer")
        {
            add(Front::NodePort(node_port), external_local);
        }
    }
    fronts
}

/// The addresses in `status.loadBalancer.ingress`.
pub fn load_balancer_ips(service: &Service) -> Vec<IpAddr> {
    let status = service
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref());
    status
        .and_then(|lb| lb.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|ingress| ingress.ip.as_deref()?.parse().ok())
        .collect()
}

/// A ready endpoint and the node it is on.
struct Endpoint {
    address: SocketAddr,
    node: Option<String>,
}

/// The ready endpoints of the slices' port named as `port` is (target ports resolved by the
/// endpoints controller), each once.
fn ready_endpoints(port: &ServicePort, slices: &[EndpointSlice]) -> Vec<Endpoint> {
    let name = port.name.as_deref().unwrap_or_default();
    let protocol = port.protocol.as_deref().unwrap_or("TCP");
    let mut endpoints: Vec<Endpoint> = Vec::new();
    for slice in slices {
        let target = slice.ports.iter().flatten().find(|p| {
            p.name.as_deref().unwrap_or_default() == name
                && p.protocol.as_deref().unwrap_or("TCP") == protocol
        });
        let Some(target) = target
            .and_then(|p| p.port)
            .and_then(|p| u16::try_from(p).ok())
        else {
            continue;
        };
        for endpoint in slice.endpoints.iter().flatten() {
            // An endpoint without a ready condition counts as ready (Kubernetes' reading).
            let ready = endpoint.conditions.as_ref().and_then(|c| c.ready);
            if ready == Some(false) {
                continue;
            }
            for ip in endpoint.addresses.iter().filter_map(|a| a.parse().ok()) {
                let address = SocketAddr::new(ip, target);
                if !endpoints.iter().any(|e| e.address == address) {
                    let node = endpoint.node_name.clone();
                    endpoints.push(Endpoint { address, node });
                }
            }
        }
    }
    endpoints
}

/// How long clients stick to their endpoint, with `sessionAffinity: ClientIP`.
fn affinity_of(service: &Service) -> Option<Duration> {
    let spec = service.spec.as_ref()?;
    if spec.session_affinity.as_deref() != Some("ClientIP") {
        return None;
    }
    let seconds = spec
        .session_affinity_config
        .as_ref()
        .and_then(|c| c.client_ip.as_ref())
        .and_then(|c| c.timeout_seconds)
        .and_then(|s| u64::try_from(s).ok());
    Some(seconds.map_or(DEFAULT_AFFINITY, Duration::from_secs))
}

#[cfg(test)]
#[path = "table/tests.rs"]
mod tests;
