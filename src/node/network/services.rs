//! Services in the pod network: a guest's connection to a ClusterIP:port goes to the endpoint
//! the service proxy's table picks, and guests' names resolve through cluster DNS.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use super::routing::{HostsResolver, PodAddress, PodRouter, Resolver, Route, Router};
use crate::dns::Resolution;
use crate::proxy::{Front, Pick, ServiceTable};

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
            // Egress to outside hosts is not allowed yet, so an ExternalName leads nowhere.
            Resolution::External(_) | Resolution::NotFound => None,
        }
    }
}
