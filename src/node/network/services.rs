//! Services in the pod network: a guest's connection to a ClusterIP:port goes to the endpoint
//! the service proxy's table picks, guests' names resolve through cluster DNS, and the host
//! (the proxy's listeners) dials endpoints as the node routes pod IPs.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use super::routing::{HostsResolver, PodAddress, PodRouter, Resolver, Route, Router};
use super::{DialError, NodeNetwork};
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
            // Nothing serves it: the guest learns as it would of any unroutable address.
            Pick::NoEndpoint => Route::Denied,
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
