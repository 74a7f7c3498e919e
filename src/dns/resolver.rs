//! The in-process resolver: the zone kept current from Services and EndpointSlices through
//! informers, and lookups with a pod's search path (`svc`, `svc.ns`, `svc.ns.svc`), for the
//! DNS server and for nodes resolving their guests' names.

use std::net::Ipv4Addr;
use std::sync::{Arc, RwLock, RwLockReadGuard};

use tokio_util::sync::CancellationToken;

use super::zone::{Data, Lookup, Zone};
use crate::client::control_plane::ControlPlane;
use crate::controller_runtime::services::{self, ServiceState};

/// How many aliases a lookup follows inside the cluster before giving up.
const MAX_ALIASES: usize = 8;
/// Names with at least this many dots are tried as they are first (resolv.conf's `ndots`,
/// as Kubernetes sets it for pods).
const NDOTS: usize = 5;

/// What a name resolves to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    Addresses(Vec<Ipv4Addr>),
    /// An ExternalName Service: the host outside the cluster it stands for.
    External(String),
    /// No such name in the cluster.
    NotFound,
}

/// The cluster's records, shared by whoever resolves with them.
#[derive(Clone, Debug)]
pub struct Resolver {
    zone: Arc<RwLock<Zone>>,
}

impl Resolver {
    /// An empty resolver for the cluster domain `domain`; [`Resolver::follow`] fills it.
    pub fn new(domain: &str) -> Self {
        Self {
            zone: Arc::new(RwLock::new(Zone::new(domain))),
        }
    }

    /// The records as they are now.
    pub fn zone(&self) -> RwLockReadGuard<'_, Zone> {
        self.zone.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps the records in line with the API's Services and EndpointSlices until `shutdown`.
    pub async fn follow(&self, api: impl Into<ControlPlane>, shutdown: CancellationToken) {
        let zone = self.zone.clone();
        services::follow(api, shutdown, move |state: ServiceState<'_>| {
            let mut zone = zone.write().unwrap_or_else(|p| p.into_inner());
            zone.set_service(state.namespace, state.name, state.service, state.slices);
        })
        .await;
    }

    /// Resolves `name` as a pod in `namespace` would: through its search path unless the
    /// name is absolute (a final dot), following aliases inside the cluster.
    pub fn resolve(&self, name: &str, namespace: &str) -> Resolution {
        let zone = self.zone();
        let domain = zone.domain();
        let absolute = name.ends_with('.');
        let name = name.trim_end_matches('.');
        let mut candidates = Vec::new();
        if absolute || name.matches('.').count() >= NDOTS {
            candidates.push(name.to_string());
        }
        if !absolute {
            for suffix in [
                format!("{namespace}.svc.{domain}"),
                format!("svc.{domain}"),
                domain.to_string(),
            ] {
                candidates.push(format!("{name}.{suffix}"));
            }
            candidates.push(name.to_string());
        }
        candidates
            .iter()
            .find_map(|candidate| resolve_in(&zone, candidate))
            .unwrap_or(Resolution::NotFound)
    }
}

/// Follows `name` in the zone: its addresses, an outside alias, or nothing.
fn resolve_in(zone: &Zone, name: &str) -> Option<Resolution> {
    let mut name = name.to_string();
    for _ in 0..MAX_ALIASES {
        let Lookup::Found(records) = zone.lookup(&name) else {
            return None;
        };
        let addresses: Vec<Ipv4Addr> = records
            .iter()
            .filter_map(|r| match r {
                Data::A(ip) => Some(*ip),
                _ => None,
            })
            .collect();
        if !addresses.is_empty() {
            return Some(Resolution::Addresses(addresses));
        }
        let alias = records.iter().find_map(|r| match r {
            Data::Cname(target) => Some(target.clone()),
            _ => None,
        })?;
        if matches!(zone.lookup(&alias), Lookup::Outside) {
            return Some(Resolution::External(alias));
        }
        name = alias;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Service;
    use serde_json::json;

    fn resolver_with(name: &str, spec: serde_json::Value) -> Resolver {
        let resolver = Resolver::new("cluster.local");
        let service: Service = serde_json::from_value(
            json!({"metadata": {"name": name, "namespace": "shop"}, "spec": spec}),
        )
        .unwrap();
        resolver
            .zone
            .write()
            .unwrap()
            .set_service("shop", name, Some(&service), &[]);
        resolver
    }

    #[test]
    fn a_pod_finds_a_service_by_each_short_form_of_its_name() {
        let resolver = resolver_with(
            "web",
            json!({"clusterIP": "10.96.0.9", "ports": [{"port": 80}]}),
        );
        let expected = Resolution::Addresses(vec![Ipv4Addr::new(10, 96, 0, 9)]);
        for name in [
            "web",
            "web.shop",
            "web.shop.svc",
            "web.shop.svc.cluster.local",
            "web.shop.svc.cluster.local.",
        ] {
            assert_eq!(resolver.resolve(name, "shop"), expected, "{name}");
        }
        assert_eq!(resolver.resolve("web", "other"), Resolution::NotFound);
        assert_eq!(resolver.resolve("web.shop", "other"), expected);
    }

    #[test]
    fn an_external_name_resolves_to_the_outside_host() {
        let resolver = resolver_with(
            "db",
            json!({"type": "ExternalName", "externalName": "db.example.com"}),
        );
        assert_eq!(
            resolver.resolve("db", "shop"),
            Resolution::External("db.example.com".into())
        );
    }
}
