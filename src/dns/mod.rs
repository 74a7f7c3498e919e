//! Cluster DNS: Services' records (`web.default.svc.cluster.local`, headless pods, SRV for
//! named ports, CNAME for ExternalName) kept from Services and EndpointSlices through the
//! controller runtime, served on UDP and TCP and resolvable in process.

mod resolver;
mod server;
mod zone;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

pub use resolver::{Resolution, Resolver};
pub use server::answer;
pub use zone::{Data, Lookup, Zone};

use crate::api::Api;

/// Where cluster DNS answers, and for which domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsConfig {
    /// UDP and TCP (`--dns-addr`).
    pub addr: SocketAddr,
    /// The cluster domain (`--cluster-domain`).
    pub domain: String,
}

impl Default for DnsConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 10053)),
            domain: "cluster.local".into(),
        }
    }
}

/// Serves cluster DNS on `config.addr` until `shutdown`; an address that cannot be bound is
/// logged and DNS stays off (the rest of the cluster runs on).
pub async fn run(api: Arc<Api>, config: DnsConfig, shutdown: CancellationToken) {
    let (udp, tcp) = match server::bind(config.addr).await {
        Ok(sockets) => sockets,
        Err(error) => {
            tracing::error!(%error, addr = %config.addr, "cluster DNS cannot listen (--dns-addr); it is off");
            return;
        }
    };
    let resolver = Resolver::new(&config.domain);
    tokio::join!(
        resolver.follow(api, shutdown.clone()),
        server::serve(udp, tcp, resolver.clone(), shutdown),
    );
}
