//! The cluster IPs and node ports of Services, allocated on the write path (kube-apiserver's
//! service REST allocators). What is in use is read from the stored Services, so nothing
//! separate must survive a restart, and a deleted Service frees its values with it. Writes of
//! Services take one lock from allocation to store, so two creates never take one address.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::sync::{Mutex, MutexGuard};

use k8s_openapi::api::core::v1::{Service, ServiceSpec};
use rand::Rng;
use serde::Deserialize;
use serde_json::{Value, json};

use super::Api;
use super::error::{ApiError, ApiResult, Bare, Cause};
use super::kinds::service::{NONE, needs_cluster_ip, needs_node_ports};
use super::kinds::{self, Resource, SERVICES};
use super::service_network::ServiceNetwork;

/// The allocator's state: the ranges, and the lock that serializes Service writes.
#[derive(Debug, Default)]
pub struct ServiceAllocator {
    network: ServiceNetwork,
    serial: Mutex<()>,
}

impl ServiceAllocator {
    pub fn new(network: ServiceNetwork) -> Self {
        Self {
            network,
            serial: Mutex::new(()),
        }
    }
}

/// The values other Services hold.
struct InUse {
    ips: HashSet<Ipv4Addr>,
    node_ports: HashSet<i32>,
}

impl Api {
    /// The address space Services are given.
    pub fn service_network(&self) -> &ServiceNetwork {
        &self.services.network
    }

    /// Held from allocation to the store write of a Service; nothing for other kinds.
    pub(super) fn serialize_allocation(&self, resource: &Resource) -> Option<MutexGuard<'_, ()>> {
        (*resource == SERVICES).then(|| {
            self.services
                .serial
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        })
    }

    /// Fills in the cluster IP and node ports an admitted Service lacks, and checks those it
    /// asks for; `old` is the stored version on an update.
    ///
    /// # Errors
    /// 422 naming `spec.clusterIPs` or `spec.ports[i].nodePort` for a value outside its range
    /// or held by another Service.
    pub(super) fn allocate_service(&self, value: &mut Value, old: Option<&Value>) -> ApiResult<()> {
        let mut service: Service = kinds::decode(&SERVICES, value)?;
        let old_spec = old
            .map(|o| kinds::decode::<Service>(&SERVICES, o))
            .transpose()?
            .and_then(|o| o.spec);
        let in_use = self.in_use(&service)?;
        let spec = service.spec.get_or_insert_with(ServiceSpec::default);
        let mut causes = Vec::new();
        if needs_cluster_ip(spec) {
            self.allocate_cluster_ip(spec, old_spec.as_ref(), &in_use, &mut causes);
        }
        if needs_node_ports(spec) && spec.allocate_load_balancer_node_ports != Some(false) {
            self.allocate_node_ports(spec, old_spec.as_ref(), &in_use, &mut causes);
        }
        if !causes.is_empty() {
            return Err(kinds::invalid(&SERVICES, value, causes));
        }
        *value = kinds::encode(&service)?;
        Ok(())
    }

    /// The cluster IPs and node ports of every stored Service but `service` itself.
    fn in_use(&self, service: &Service) -> ApiResult<InUse> {
        let listing = self
            .store
            .list(&SERVICES.key(None, None))
            .map_err(|e| ApiError::from_store(e, SERVICES.plural, ""))?;
        let this = (&service.metadata.namespace, &service.metadata.name);
        let mut in_use = InUse {
            ips: HashSet::new(),
            node_ports: HashSet::new(),
        };
        for entry in listing.entries {
            let Ok(other) = Service::deserialize(&entry.value) else {
                continue;
            };
            if (&other.metadata.namespace, &other.metadata.name) == this {
                continue;
            }
            let Some(spec) = other.spec else { continue };
            let ips = spec.cluster_ips.iter().flatten().chain(&spec.cluster_ip);
            in_use
                .ips
                .extend(ips.filter_map(|ip| ip.parse::<Ipv4Addr>().ok()));
            let ports = spec.ports.iter().flatten().filter_map(|p| p.node_port);
            in_use.node_ports.extend(ports);
        }
        Ok(in_use)
    }

    fn allocate_cluster_ip(
        &self,
        spec: &mut ServiceSpec,
        old: Option<&ServiceSpec>,
        in_use: &InUse,
        causes: &mut Vec<Cause>,
    ) {
        let requested = spec.cluster_ip.clone().filter(|ip| !ip.is_empty());
        let kept = old.is_some_and(|o| needs_cluster_ip(o) && o.cluster_ip == requested);
        let ip = match requested.as_deref() {
            Some(NONE) => NONE.to_string(),
            Some(_) if kept => return,
            Some(text) => match self.check_requested_ip(text, in_use) {
                Ok(ip) => ip.to_string(),
                Err(why) => {
                    let shown = Bare(format!("[]string{{\"{text}\"}}"));
                    let message = format!("failed to allocate IP {text}: {why}");
                    causes.push(Cause::invalid("spec.clusterIPs", shown, &message));
                    return;
                }
            },
            None => match self.free_ip(in_use) {
                Some(ip) => ip.to_string(),
                None => {
                    let message = "failed to allocate a serviceIP: range is full";
                    causes.push(Cause::invalid(
                        "spec.clusterIPs",
                        Bare("[]string{}".into()),
                        message,
                    ));
                    return;
                }
            },
        };
        spec.cluster_ip = Some(ip.clone());
        spec.cluster_ips = Some(vec![ip]);
    }

    /// The requested IP when it is free and in the range; otherwise why not, as
    /// kube-apiserver says it.
    fn check_requested_ip(&self, text: &str, in_use: &InUse) -> Result<Ipv4Addr, String> {
        let cidr = self.services.network.cidr;
        let ip = text
            .parse::<Ipv4Addr>()
            .ok()
            .filter(|ip| cidr.index_of(*ip).is_some())
            .ok_or_else(|| {
                format!(
                    "the provided IP ({text}) is not in the valid range. The range of valid IPs is {cidr}"
                )
            })?;
        if in_use.ips.contains(&ip) {
            return Err("provided IP is already allocated".into());
        }
        Ok(ip)
    }

    /// A free address, from a random point of the range onwards (as Kubernetes picks), past
    /// the first address, which the `kubernetes` Service keeps.
    fn free_ip(&self, in_use: &InUse) -> Option<Ipv4Addr> {
        let cidr = self.services.network.cidr;
        let candidates = cidr.usable() - 1;
        let start = rand::rng().random_range(0..candidates);
        (0..candidates)
            .map(|step| cidr.nth(1 + (start + step) % candidates))
            .find(|ip| !in_use.ips.contains(ip))
    }

    fn allocate_node_ports(
        &self,
        spec: &mut ServiceSpec,
        old: Option<&ServiceSpec>,
        in_use: &InUse,
        causes: &mut Vec<Cause>,
    ) {
        let range = &self.services.network.node_ports;
        let valid = i32::from(*range.start())..=i32::from(*range.end());
        let old_ports: HashSet<i32> = old
            .filter(|o| needs_node_ports(o))
            .into_iter()
            .flat_map(|o| o.ports.iter().flatten().filter_map(|p| p.node_port))
            .collect();
        let mut taken = in_use.node_ports.clone();
        for (i, port) in spec.ports.iter_mut().flatten().enumerate() {
            let field = format!("spec.ports[{i}].nodePort");
            match port.node_port.filter(|p| *p != 0) {
                Some(requested) if old_ports.contains(&requested) => {
                    taken.insert(requested);
                }
                Some(requested) if !valid.contains(&requested) => {
                    let why = format!(
                        "provided port is not in the valid range. The range of valid ports is {}-{}",
                        range.start(),
                        range.end()
                    );
                    causes.push(Cause::invalid(field, requested, &why));
                }
                Some(requested) if !taken.insert(requested) => {
                    causes.push(Cause::invalid(
                        field,
                        requested,
                        "provided port is already allocated",
                    ));
                }
                Some(_) => {}
                None => match free_port(range, &taken) {
                    Some(free) => {
                        taken.insert(free);
                        port.node_port = Some(free);
                    }
                    None => causes.push(Cause::invalid(field, 0, "range is full")),
                },
            }
        }
    }

    /// Creates the `kubernetes` Service in `default`, for the API server itself, unless it is
    /// there.
    pub(super) fn bootstrap_api_service(&self) -> ApiResult<()> {
        let ip = self.service_network().api_server_ip().to_string();
        let service = json!({
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"type": "ClusterIP", "clusterIP": ip,
                     "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]},
        });
        match self.create(&SERVICES, Some("default"), service) {
            Ok(_) | Err(ApiError::AlreadyExists { .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }
}

/// A free port of `range`, from a random point onwards.
fn free_port(range: &std::ops::RangeInclusive<u16>, taken: &HashSet<i32>) -> Option<i32> {
    let (first, last) = (i32::from(*range.start()), i32::from(*range.end()));
    let size = last - first + 1;
    let start = rand::rng().random_range(0..size);
    (0..size)
        .map(|step| first + (start + step) % size)
        .find(|port| !taken.contains(port))
}
