//! NetworkPolicy enforcement at connect time: the node follows NetworkPolicies, Pods and
//! Namespaces through informers and answers, for each connection a guest makes, whether the
//! source's egress and the destination's ingress policies allow it (`rules`), and which
//! outside addresses and names a pod may reach.

pub mod rules;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use tokio_util::sync::CancellationToken;

use super::outside::{self, EGRESS_HOSTS_ANNOTATION};
use crate::api::kinds::{NAMESPACES, NETWORK_POLICIES, PODS};
use crate::client::control_plane::ControlPlane;
use crate::controller_runtime::cache::{Cache, Change, ObjectKey};
use crate::controller_runtime::informer::Informer;
use rules::{End, PodFacts, Policies};

/// The cluster's policies as the node sees them; until [`NetworkPolicies::follow`] runs (or
/// while there are none) every connection inside the cluster is allowed.
#[derive(Default)]
pub struct NetworkPolicies {
    caches: OnceLock<Caches>,
    /// Set by every change the informers take; the next decision rebuilds the rules.
    stale: AtomicBool,
    current: RwLock<Arc<Known>>,
}

struct Caches {
    policies: Cache,
    pods: Cache,
    namespaces: Cache,
}

/// What decisions read, rebuilt after changes.
#[derive(Default)]
struct Known {
    policies: Policies,
    /// Pods holding their IP (not finished ones, whose IP may be another's now).
    pods: HashMap<IpAddr, PodFacts>,
}

impl NetworkPolicies {
    /// Follows the API's NetworkPolicies, Pods and Namespaces until `shutdown`.
    pub async fn follow(
        self: Arc<Self>,
        api: impl Into<ControlPlane>,
        shutdown: CancellationToken,
    ) {
        let api = api.into();
        let informers =
            [&NETWORK_POLICIES, &PODS, &NAMESPACES].map(|r| Informer::new(api.clone(), r));
        let [policies, pods, namespaces] = informers;
        let caches = Caches {
            policies: policies.cache(),
            pods: pods.cache(),
            namespaces: namespaces.cache(),
        };
        if self.caches.set(caches).is_err() {
            return;
        }
        let changed = |_: &Change| self.stale.store(true, Ordering::Release);
        tokio::join!(
            policies.run(shutdown.clone(), changed),
            pods.run(shutdown.clone(), changed),
            namespaces.run(shutdown, changed),
        );
    }

    /// Whether the pod `namespace/name` may open a TCP connection to the pod IP `to`:`port`
    /// (after a Service's rewriting).
    pub fn allows(&self, namespace: &str, name: &str, to: IpAddr, port: u16) -> bool {
        let known = self.known();
        if known.policies.is_empty() {
            return true;
        }
        let source = self.pod_facts(namespace, name);
        let unknown;
        let target = if let Some(pod) = known.pods.get(&to) {
            End::Pod(pod)
        } else {
            // A pod the informer has not seen yet: in no namespace, with no labels.
            unknown = PodFacts {
                ip: Some(to),
                ..PodFacts::default()
            };
            End::Pod(&unknown)
        };
        known.policies.allows(End::Pod(&source), target, port)
    }

    /// Whether the ingress policies of the pod at `to` let `from`, an address outside the
    /// cluster (a client of a node port or load balancer), reach its `port`.
    pub fn admits_from_outside(&self, from: IpAddr, to: IpAddr, port: u16) -> bool {
        let known = self.known();
        if known.policies.is_empty() {
            return true;
        }
        let Some(pod) = known.pods.get(&to) else {
            return true;
        };
        known
            .policies
            .ingress_allows(End::Outside(from), End::Pod(pod), port)
    }

    /// Whether a policy lets the pod `namespace/name` out of the cluster to `to` (an
    /// `ipBlock` of an egress rule naming it).
    pub fn lets_out(&self, namespace: &str, name: &str, to: SocketAddr) -> bool {
        let known = self.known();
        !known.policies.is_empty()
            && known
                .policies
                .lets_out(&self.pod_facts(namespace, name), to.ip(), to.port())
    }

    /// Whether the pod `namespace/name` or its namespace names `host` in its
    /// [`EGRESS_HOSTS_ANNOTATION`].
    pub fn names_egress_host(&self, namespace: &str, name: &str, host: &str) -> bool {
        let Some(caches) = self.caches.get() else {
            return false;
        };
        let pod = caches.pods.get(&ObjectKey::new(Some(namespace), name));
        let space = caches.namespaces.get(&ObjectKey::new(None, namespace));
        [pod, space].into_iter().flatten().any(|object| {
            let patterns = object["metadata"]["annotations"][EGRESS_HOSTS_ANNOTATION].as_str();
            patterns.is_some_and(|patterns| outside::names(patterns, host))
        })
    }

    /// A pod's facts by name: the source of a connection may be newer than its pod IP in
    /// the informer's cache.
    fn pod_facts(&self, namespace: &str, name: &str) -> PodFacts {
        let pod = self
            .caches
            .get()
            .and_then(|c| c.pods.get(&ObjectKey::new(Some(namespace), name)));
        let mut facts = pod.map(|p| PodFacts::of(&p)).unwrap_or_default();
        facts.namespace = namespace.to_string();
        facts
    }

    fn known(&self) -> Arc<Known> {
        let Some(caches) = self.caches.get() else {
            return Arc::default();
        };
        if self.stale.swap(false, Ordering::AcqRel) {
            let policies = caches.policies.list();
            let namespaces = caches.namespaces.list();
            let known = Known {
                policies: Policies::new(
                    policies.iter().map(|p| &**p),
                    namespaces.iter().map(|n| &**n),
                ),
                pods: caches
                    .pods
                    .list()
                    .iter()
                    .filter(|p| {
                        !matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed"))
                    })
                    .map(|p| PodFacts::of(p))
                    .filter_map(|f| Some((f.ip?, f)))
                    .collect(),
            };
            *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(known);
        }
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
