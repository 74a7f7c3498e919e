//! Services in the pod network: a guest's connection to a ClusterIP:port goes to the endpoint
//! the service proxy's table picks, guests' names resolve through cluster DNS, and the host
//! (the proxy's listeners) dials endpoints as the node routes pod IPs.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::routing::{HostsResolver, PodAddress, PodRouter, Resolver, Route, Router};
use super::{DialError, NodeNetwork};
use crate::client::control_plane::ControlPlane;
use crate::dns::Resolution;
use crate::proxy::{DialFailed, Dialer, Dialing, Front, Pick, ServiceTable, Stream};

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
    /// routes and resolves guests' connections and names by them from now on (`domain` is the
    /// cluster's DNS domain). Returns the table, for the node's service proxy to share, and
    /// the tasks following.
    pub fn follow_services(
        &self,
        plane: &ControlPlane,
        domain: &str,
        shutdown: &CancellationToken,
    ) -> (Arc<ServiceTable>, [JoinHandle<()>; 2]) {
        let table = Arc::new(ServiceTable::default());
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
/// pod, through the tunnel to another node's.
impl Dialer for NodeNetwork {
    fn dial(&self, to: SocketAddr) -> Dialing<'_> {
        Box::pin(async move {
            let gateway = self
                .table
                .gateway()
                .ok_or_else(|| DialFailed(format!("{to}: the node's network is not up")))?;
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
