//! Services in the pod network: a guest's connection to a ClusterIP:port goes to the endpoint
//! the service proxy's table picks, guests' names resolve through cluster DNS, and the host
//! (the proxy's listeners) dials endpoints as the node routes pod IPs.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::routing::{HostsResolver, PodAddress, PodRouter, Resolver, Route, Router};
use super::{DialError, NodeNetwork};
use crate::client::control_plane::ControlPlane;
use crate::controller_runtime::supervisor::supervise;
use crate::dns::Resolution;
use crate::events::Recorder;
use http_body_util::BodyExt;

use crate::proxy::{
    BoxError, DialFailed, Dialer, Dialing, ForwardBody, Front, LocalHttp, Pick, PodsOrHost,
    ServiceTable, Stream,
};

/// Rewrites connections to a Service's cluster IP to one of its ready endpoints, then routes
/// as pod IPs are routed.
pub struct ServiceRouter {
    pub services: Arc<ServiceTable>,
    pub pods: Arc<PodRouter>,
}

impl Router for ServiceRouter {
    fn route(&self, from: &PodAddress, to: SocketAddr) -> Route {
        match self
            .services
            .pick(Front::Address(to), IpAddr::V4(from.pod_ip), &[])
        {
            Pick::NotAService => self.pods.route(from, to),
            Pick::NoEndpoint => Route::Refused,
            Pick::Endpoint(endpoint) => self.pods.route(from, endpoint),
        }
    }
}

/// Names as a pod in the cluster sees them: `localhost` and its own name first, then the
/// cluster's Services through its namespace's search path.
pub struct ClusterResolver {
    pub dns: crate::dns::Resolver,
}

impl Resolver for ClusterResolver {
    fn resolve(&self, from: &PodAddress, name: &str) -> Option<Vec<IpAddr>> {
        if let Some(local) = HostsResolver.resolve(from, name) {
            return Some(local);
        }
        match self.dns.resolve(name, &from.namespace) {
            Resolution::Addresses(ips) => Some(ips.into_iter().map(IpAddr::V4).collect()),
            // An ExternalName's host is looked up by the pod, which is then allowed to it.
            Resolution::External(_) | Resolution::NotFound => None,
        }
    }

    fn external(&self, from: &PodAddress, name: &str) -> Option<String> {
        match self.dns.resolve(name, &from.namespace) {
            Resolution::External(host) => Some(host),
            Resolution::Addresses(_) | Resolution::NotFound => None,
        }
    }
}

impl NodeNetwork {
    /// Follows the cluster's Services and EndpointSlices through `plane` until `shutdown`, and
    /// routes and resolves guests' connections and names by them from now on, as the node
    /// `node_name` does (`domain` is the cluster's DNS domain). Returns the table, for the
    /// node's node ports (and `up`'s load balancers) to share, and the tasks following.
    pub fn follow_services(
        &self,
        plane: &ControlPlane,
        node_name: &str,
        domain: &str,
        shutdown: &CancellationToken,
    ) -> (Arc<ServiceTable>, [JoinHandle<()>; 2]) {
        let table = Arc::new(ServiceTable::of_node(node_name));
        let dns = crate::dns::Resolver::new(domain);
        let follow_table = table.clone().follow(plane.clone(), shutdown.clone());
        let follow_names = {
            let (dns, plane, shutdown) = (dns.clone(), plane.clone(), shutdown.clone());
            async move { dns.follow(plane, shutdown).await }
        };
        let tasks = [tokio::spawn(follow_table), tokio::spawn(follow_names)];
        self.use_services(table.clone(), dns);
        (table, tasks)
    }

    /// The pod network as the control plane without a node of its own (`server`) reaches it,
    /// for its load balancers: pods of every node through their tunnels, opened as the API
    /// server (`identity`); the nodes' blocks followed through `plane` until `shutdown`.
    ///
    /// # Errors
    /// When `identity` is unusable as a TLS client's.
    pub fn of_control_plane(
        identity: &crate::tls::Identity,
        plane: ControlPlane,
        shutdown: CancellationToken,
    ) -> Result<Arc<NodeNetwork>, crate::tls::TlsError> {
        let tls = crate::tls::identity_client_config(identity)?;
        let network = NodeNetwork::new(super::tunnel::TunnelClient::new(Some(tls)));
        // No node has the empty name: every node is a peer, and no block is the plane's own.
        let (own, _) = tokio::sync::watch::channel(None);
        let table = network.table.clone();
        tokio::spawn(super::peers::follow(
            plane,
            String::new(),
            table,
            own,
            shutdown,
        ));
        Ok(network)
    }

    /// Listens on `node_ip` at each node port of this node's Service `table` until
    /// `shutdown`, reaching pods through this network and other endpoints from the host; a
    /// port that cannot be bound is a Warning event on its Service, from `node_name`.
    pub fn serve_node_ports(
        self: &Arc<Self>,
        node_ip: IpAddr,
        table: Arc<ServiceTable>,
        plane: &ControlPlane,
        node_name: &str,
        shutdown: &CancellationToken,
    ) -> JoinHandle<()> {
        let recorder = Recorder::new(plane.clone(), "service-proxy", node_name);
        let pods = self.table.clone();
        let dialer: Arc<dyn Dialer> = Arc::new(PodsOrHost {
            is_pod_ip: Box::new(move |ip| pods.holds(ip)),
            pods: self.clone(),
        });
        let (plane, stop) = (plane.clone(), shutdown.clone());
        let run = move || {
            let (table, dialer, plane) = (table.clone(), dialer.clone(), plane.clone());
            crate::proxy::run_node_ports(
                node_ip,
                table,
                dialer,
                plane,
                recorder.clone(),
                stop.clone(),
            )
        };
        tokio::spawn(supervise("node-ports", shutdown.clone(), run))
    }

    /// Whether a Service of this node's table sends new connections to the pod at `ip`.
    pub fn service_sends_to(&self, ip: IpAddr) -> bool {
        let services = self.services.get();
        services.is_some_and(|(router, _)| router.services.sends_to(ip))
    }

    /// Waits until no Service of this node's table sends new connections to the pod at `ip`:
    /// at once on a node that routes no Services.
    pub async fn until_no_service_sends_to(&self, ip: IpAddr) {
        if let Some((router, _)) = self.services.get() {
            router.services.until_no_front_sends_to(ip).await;
        }
    }
}

/// The host's way to endpoints (pod IPs): from the node's own loopback address to a local
/// pod, through the tunnel to another node's (from the control plane, which has no pods and
/// no block, through the tunnel only).
impl Dialer for NodeNetwork {
    /// A pod of this node whose HTTP container serves the port takes the request in process.
    fn local_http(&self, endpoint: SocketAddr) -> Option<LocalHttp> {
        let IpAddr::V4(ip) = endpoint.ip() else {
            return None;
        };
        let pod = self.table.local(ip)?;
        let handle = self.local_http.at(pod.on_host(endpoint.port()))?;
        Some(Arc::new(move |request: http::Request<ForwardBody>| {
            let request = request.map(|body| {
                let body = body.map_err(|never| match never {});
                body.boxed_unsync()
            });
            let answer = handle(request);
            Box::pin(async move {
                let response = answer.await;
                response.map(|body| body.map_err(BoxError::from).boxed_unsync())
            })
        }))
    }

    fn admits(&self, client: IpAddr, endpoint: SocketAddr) -> bool {
        (self.policies).admits_from_outside(client, endpoint.ip(), endpoint.port())
    }

    fn dial(&self, to: SocketAddr) -> Dialing<'_> {
        Box::pin(async move {
            let gateway = self.table.gateway().unwrap_or(Ipv4Addr::UNSPECIFIED);
            let node = PodAddress::new("", "", gateway);
            let route = self.pods.route(&node, to);
            let stream = self
                .connect(route, to, &node)
                .await
                .map_err(|error: DialError| DialFailed(error.to_string()))?;
            Ok(Box::new(stream) as Box<dyn Stream>)
        })
    }
}
