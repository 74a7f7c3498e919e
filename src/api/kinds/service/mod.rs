//! Service (`v1`): a stable name and virtual IP in front of the pods its selector matches.
//! Defaults and validation are Kubernetes' (`pkg/apis/core/v1/defaults.go`,
//! `ValidateService`); the cluster IPs and node ports are allocated on the write path
//! (`api::service_allocation`), which needs the other Services.

mod validation;

use k8s_openapi::api::core::v1::{
    ClientIPConfig, Service, ServicePort, ServiceSpec, ServiceStatus, SessionAffinityConfig,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use super::resource::{Resource, Subresource};
use super::strategy::{Admission, Strategy, encode, schema_of};
use crate::api::error::ApiResult;
use crate::api::printers;

pub use validation::{NONE, port_name_error};

/// The annotation choosing how the built-in proxy balances a Service: `round-robin` (the
/// default) or `least-requests`.
pub const LOAD_BALANCER_ALGORITHM: &str = "wasmkube.io/load-balancer-algorithm";
/// The values [`LOAD_BALANCER_ALGORITHM`] takes.
pub const LOAD_BALANCER_ALGORITHMS: &[&str] = &["round-robin", "least-requests"];

pub static SERVICES: Resource = Resource {
    group: "",
    version: "v1",
    kind: "Service",
    plural: "services",
    singular: "service",
    short_names: &["svc"],
    categories: &["all"],
    namespaced: true,
    subresources: &[Subresource::Status],
    // Its name is a host name in cluster DNS.
    label_names: true,
    selectable_fields: &[],
    strategy: &ServiceStrategy,
    printer: &printers::service::COLUMNS,
};

/// Kubernetes' default affinity timeout: three hours.
const DEFAULT_AFFINITY_SECONDS: i32 = 10_800;

struct ServiceStrategy;

impl Strategy for ServiceStrategy {
    fn admit(&self, admission: &mut Admission<'_>) -> ApiResult<Value> {
        let mut service: Service = admission.decode()?;
        let old = admission.old::<Service>()?;
        let spec = service.spec.get_or_insert_with(ServiceSpec::default);
        default(spec);
        if let Some(old_spec) = old.as_ref().and_then(|o| o.spec.as_ref()) {
            keep_allocated(old_spec, spec);
            drop_type_dependent(old_spec, spec);
        }
        validation::validate(spec, &mut admission.causes);
        validation::validate_algorithm(&service.metadata, &mut admission.causes);
        if let Some(old_spec) = old.as_ref().and_then(|o| o.spec.as_ref()) {
            validation::validate_update(old_spec, spec, &mut admission.causes);
        }
        if old.is_none() {
            service.status = Some(ServiceStatus::default());
        }
        encode(&service)
    }

    fn schema(&self) -> Value {
        schema_of::<Service>()
    }
}

/// The service's type, `ClusterIP` when unset.
pub fn type_of(spec: &ServiceSpec) -> &str {
    spec.type_.as_deref().unwrap_or("ClusterIP")
}

/// Whether the type gets a cluster IP (every type but ExternalName).
pub fn needs_cluster_ip(spec: &ServiceSpec) -> bool {
    type_of(spec) != "ExternalName"
}

/// Whether the type gets node ports.
pub fn needs_node_ports(spec: &ServiceSpec) -> bool {
    matches!(type_of(spec), "NodePort" | "LoadBalancer")
}

/// Kubernetes' `SetDefaults_Service` and the IP family defaults of its REST layer.
fn default(spec: &mut ServiceSpec) {
    spec.type_.get_or_insert_with(|| "ClusterIP".into());
    let affinity = spec.session_affinity.get_or_insert_with(|| "None".into());
    if affinity == "ClientIP" {
        let config = spec
            .session_affinity_config
            .get_or_insert_with(SessionAffinityConfig::default);
        let client_ip = config.client_ip.get_or_insert_with(ClientIPConfig::default);
        client_ip
            .timeout_seconds
            .get_or_insert(DEFAULT_AFFINITY_SECONDS);
    }
    for port in spec.ports.iter_mut().flatten() {
        default_port(port);
    }
    if needs_cluster_ip(spec) {
        spec.internal_traffic_policy
            .get_or_insert_with(|| "Cluster".into());
        spec.ip_families.get_or_insert_with(|| vec!["IPv4".into()]);
        spec.ip_family_policy
            .get_or_insert_with(|| "SingleStack".into());
        if let Some(ip) = spec.cluster_ip.clone().filter(|ip| !ip.is_empty()) {
            spec.cluster_ips.get_or_insert_with(|| vec![ip]);
        }
    }
    if needs_node_ports(spec) {
        spec.external_traffic_policy
            .get_or_insert_with(|| "Cluster".into());
    }
    if type_of(spec) == "LoadBalancer" {
        spec.allocate_load_balancer_node_ports.get_or_insert(true);
    }
}

fn default_port(port: &mut ServicePort) {
    port.protocol.get_or_insert_with(|| "TCP".into());
    port.target_port.get_or_insert(IntOrString::Int(port.port));
}

/// What an update that leaves out allocated values keeps (kube-apiserver's
/// `patchAllocatedValues`): the cluster IPs, and the node port of a port that stays.
fn keep_allocated(old: &ServiceSpec, new: &mut ServiceSpec) {
    if needs_cluster_ip(old) && needs_cluster_ip(new) {
        let unset = new.cluster_ip.as_deref().is_none_or(str::is_empty);
        if unset {
            new.cluster_ip.clone_from(&old.cluster_ip);
            if new.cluster_ips.as_ref().is_none_or(Vec::is_empty) {
                new.cluster_ips.clone_from(&old.cluster_ips);
            }
        }
    }
    if needs_node_ports(old) && needs_node_ports(new) {
        for port in new.ports.iter_mut().flatten() {
            if port.node_port.is_some() {
                continue;
            }
            port.node_port = old
                .ports
                .iter()
                .flatten()
                .find(|o| o.port == port.port && o.protocol == port.protocol)
                .and_then(|o| o.node_port);
        }
    }
}

/// What a change of type leaves behind (kube-apiserver's `dropTypeDependentFields`): node
/// ports a type without them still carries from before, and the cluster IP of a service turned
/// ExternalName.
fn drop_type_dependent(old: &ServiceSpec, new: &mut ServiceSpec) {
    if needs_node_ports(old) && !needs_node_ports(new) {
        for port in new.ports.iter_mut().flatten() {
            let kept = old
                .ports
                .iter()
                .flatten()
                .any(|o| o.node_port == port.node_port);
            if kept {
                port.node_port = None;
            }
        }
        if new.external_traffic_policy == old.external_traffic_policy {
            new.external_traffic_policy = None;
        }
    }
    if needs_cluster_ip(old) && !needs_cluster_ip(new) && new.cluster_ip == old.cluster_ip {
        new.cluster_ip = None;
        new.cluster_ips = None;
        new.ip_families = None;
        new.ip_family_policy = None;
        new.internal_traffic_policy = None;
    }
}

#[cfg(test)]
mod tests;
