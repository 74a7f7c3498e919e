//! The load balancers, kept from the Services on the control plane: an address of
//! `--lb-pool` per LoadBalancer Service, listened on at each of its ports and published in
//! `status.loadBalancer.ingress`. Level-triggered: every change of a Service reconciles them
//! all. (Node ports are each node's: `node_ports`.)

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::ProxyConfig;
use super::backends::Backends;
use super::serve::{Upstream, serve};
use super::table::{Front, ServiceTable, load_balancer_ips};
use crate::api::kinds::SERVICES;
use crate::api::patch::PatchType;
use crate::api::{Api, ApiError, Part};
use crate::controller_runtime::cache::ObjectKey;
use crate::controller_runtime::informer::Informer;
use crate::events::{EventType, Recorder};

/// A listener the Services ask for.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Wanted {
    bind: SocketAddr,
    front: Front,
    /// `namespace/name`.
    service: String,
}

/// What the controller holds between reconciles.
pub struct LoadBalancer {
    api: Arc<Api>,
    config: ProxyConfig,
    table: Arc<ServiceTable>,
    backends: Arc<Backends>,
    recorder: Recorder,
    open: HashMap<SocketAddr, (Wanted, CancellationToken)>,
}

impl LoadBalancer {
    pub fn new(
        api: Arc<Api>,
        config: ProxyConfig,
        table: Arc<ServiceTable>,
        backends: Arc<Backends>,
        recorder: Recorder,
    ) -> Self {
        Self {
            api,
            config,
            table,
            backends,
            recorder,
            open: HashMap::new(),
        }
    }

    /// Keeps the listeners and ingress addresses in line with the Services until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let informer = Informer::new(self.api.clone(), &SERVICES);
        let cache = informer.cache();
        let wake = Notify::new();
        let reconcile = async {
            cache.wait_synced().await;
            loop {
                self.reconcile(&cache.list(), &shutdown).await;
                tokio::select! {
                    () = wake.notified() => {}
                    () = shutdown.cancelled() => return,
                }
            }
        };
        tokio::join!(
            informer.run(shutdown.clone(), |_| wake.notify_one()),
            reconcile
        );
    }

    async fn reconcile(&mut self, objects: &[Arc<Value>], shutdown: &CancellationToken) {
        let services: Vec<(&Value, Service)> = objects
            .iter()
            .filter_map(|o| Some((o.as_ref(), serde::Deserialize::deserialize(&**o).ok()?)))
            .collect();
        let addresses = self.assign_addresses(&services);
        let mut wanted = Vec::new();
        for (object, service) in &services {
            wanted.extend(Self::listeners_of(
                service,
                addresses.get(&key_of(object)).copied(),
            ));
        }
        self.open.retain(|bind, (open, stop)| {
            let keep = wanted.contains(open);
            if !keep {
                tracing::info!(%bind, service = open.service, "closing a listener");
                stop.cancel();
            }
            keep
        });
        let mut failed = HashSet::new();
        for want in wanted {
            if self.open.contains_key(&want.bind) {
                continue;
            }
            if let Err(error) = self.listen(&want, shutdown).await {
                let object = services.iter().find(|(o, _)| key_of(o) == want.service);
                if let Some((object, _)) = object {
                    let message = format!("cannot listen on {}: {error}", want.bind);
                    let reason = "SyncLoadBalancerFailed";
                    self.recorder
                        .record(object, None, EventType::Warning, reason, &message);
                }
                failed.insert(want.service);
            }
        }
        for (object, service) in &services {
            let key = key_of(object);
            let address = addresses
                .get(&key)
                .copied()
                .filter(|_| !failed.contains(&key));
            self.publish(object, service, address);
        }
    }

    /// Binds `want.bind` and serves it until the listener is closed or `shutdown`.
    async fn listen(&mut self, want: &Wanted, shutdown: &CancellationToken) -> std::io::Result<()> {
        let listener = TcpListener::bind(want.bind).await?;
        tracing::info!(bind = %want.bind, service = want.service, "listening");
        let stop = shutdown.child_token();
        let upstream = Upstream {
            front: want.front,
            service: want.service.clone(),
            table: self.table.clone(),
            backends: self.backends.clone(),
        };
        tokio::spawn(serve(listener, upstream, stop.clone()));
        self.open.insert(want.bind, (want.clone(), stop));
        Ok(())
    }

    /// Each LoadBalancer Service's address: the one it has (or asks for with
    /// `spec.loadBalancerIP`) when in the pool and not another's, else the first free one.
    fn assign_addresses(&self, services: &[(&Value, Service)]) -> HashMap<String, Ipv4Addr> {
        let pool = self.config.lb_pool;
        let mut taken: HashMap<String, Ipv4Addr> = HashMap::new();
        let ours: Vec<(String, &Value, &Service)> = services
            .iter()
            .filter(|(_, s)| is_ours(s))
            .map(|(o, s)| (key_of(o), *o, s))
            .collect();
        for (key, _, service) in &ours {
            let asked = service
                .spec
                .as_ref()
                .and_then(|s| s.load_balancer_ip.as_deref());
            let held = load_balancer_ips(service)
                .into_iter()
                .chain(asked.and_then(|ip| ip.parse().ok()));
            let free = held
                .filter_map(|ip| match ip {
                    IpAddr::V4(ip) => Some(ip),
                    IpAddr::V6(_) => None,
                })
                .find(|ip| pool.contains(*ip) && !taken.values().any(|t| t == ip));
            if let Some(ip) = free {
                taken.insert(key.clone(), ip);
            }
        }
        for (key, object, _) in &ours {
            if taken.contains_key(key) {
                continue;
            }
            // The first and last addresses of a block are its network and broadcast ones.
            let free = (1..pool.size().saturating_sub(1))
                .filter_map(|i| pool.nth(i))
                .find(|ip| !taken.values().any(|t| t == ip));
            match free {
                Some(ip) => {
                    taken.insert(key.clone(), ip);
                }
                None => {
                    let message = format!("no free address in the load balancer pool {pool}");
                    self.recorder.record(
                        object,
                        None,
                        EventType::Warning,
                        "AllocationFailed",
                        &message,
                    );
                }
            }
        }
        taken
    }

    /// The listeners a load balancer at `address` asks for: one at each of its ports.
    fn listeners_of(service: &Service, address: Option<Ipv4Addr>) -> Vec<Wanted> {
        let (Some(spec), Some(address)) = (&service.spec, address) else {
            return Vec::new();
        };
        let key = format!(
            "{}/{}",
            service.metadata.namespace.as_deref().unwrap_or_default(),
            service.metadata.name.as_deref().unwrap_or_default()
        );
        let mut wanted = Vec::new();
        for port in spec.ports.iter().flatten() {
            // The proxy carries TCP only: a UDP or SCTP port gets no listener (as a cloud
            // load balancer without UDP support leaves it out).
            if port.protocol.as_deref().is_some_and(|p| p != "TCP") {
                continue;
            }
            if let Ok(port) = u16::try_from(port.port) {
                let bind = SocketAddr::from((address, port));
                wanted.push(Wanted {
                    bind,
                    front: Front::Address(bind),
                    service: key.clone(),
                });
            }
        }
        wanted
    }

    /// Writes `status.loadBalancer.ingress` as `address` says, unless it already is.
    fn publish(&self, object: &Value, service: &Service, address: Option<Ipv4Addr>) {
        let current = load_balancer_ips(service);
        let wanted: Vec<IpAddr> = address.into_iter().map(IpAddr::V4).collect();
        // Another implementation's load balancer (`loadBalancerClass`) keeps its own status.
        let foreign = service
            .spec
            .as_ref()
            .is_some_and(|spec| spec.load_balancer_class.is_some());
        if current == wanted || foreign {
            return;
        }
        let ingress: Vec<Value> = wanted
            .iter()
            .map(|ip| json!({"ip": ip.to_string(), "ipMode": "VIP"}))
            .collect();
        let patch = json!({"status": {"loadBalancer": {"ingress": ingress}}});
        let namespace = object["metadata"]["namespace"].as_str();
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        match self.api.patch(
            &SERVICES,
            namespace,
            name,
            &patch,
            PatchType::Merge,
            Part::Status,
        ) {
            Ok(_) | Err(ApiError::NotFound { .. }) => {}
            Err(error) => {
                tracing::warn!(%error, service = name, "cannot write the load balancer status")
            }
        }
    }
}

/// A LoadBalancer Service of no other class: one this proxy serves.
fn is_ours(service: &Service) -> bool {
    service.spec.as_ref().is_some_and(|spec| {
        spec.type_.as_deref() == Some("LoadBalancer") && spec.load_balancer_class.is_none()
    })
}

/// `namespace/name`, as the table names Services.
fn key_of(object: &Value) -> String {
    ObjectKey::of(object)
        .map(|key| key.to_string())
        .unwrap_or_default()
}
