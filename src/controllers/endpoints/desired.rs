//! What a Service's Endpoints and EndpointSlices should hold, from the pods its selector
//! matches (kube-controller-manager's endpoints and endpointslice controllers): pure functions
//! of the Service and its pods.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service,
    ServicePort,
};
use k8s_openapi::api::discovery::v1::{
    Endpoint, EndpointConditions, EndpointPort as SlicePort, EndpointSlice,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::api::kinds::{MANAGED_BY_LABEL, SERVICE_NAME_LABEL};

/// The `managed-by` value of the slices this controller keeps.
pub const MANAGER: &str = "endpointslice-controller.k8s.io";

/// One pod as an endpoint: where it is, and the service ports it serves resolved to its own.
struct Member<'a> {
    pod: &'a Pod,
    ip: String,
    ready: bool,
    terminating: bool,
    ports: Vec<EndpointPort>,
}

/// The Endpoints of `service`: ready addresses, and not-ready ones apart (all ready when the
/// Service publishes not-ready addresses); terminating pods are left out. Pods serving the
/// same resolved ports share a subset.
pub fn endpoints(service: &Service, pods: &[Pod]) -> Endpoints {
    let publish = publishes_not_ready(service);
    let mut subsets: BTreeMap<Vec<(Option<String>, i32)>, EndpointSubset> = BTreeMap::new();
    for member in members(service, pods).filter(|m| !m.terminating || publish) {
        let key = member
            .ports
            .iter()
            .map(|p| (p.name.clone(), p.port))
            .collect();
        let subset = subsets.entry(key).or_insert_with(|| EndpointSubset {
            ports: (!member.ports.is_empty()).then(|| member.ports.clone()),
            ..EndpointSubset::default()
        });
        let address = address(service, &member);
        let list = if member.ready || publish {
            &mut subset.addresses
        } else {
            &mut subset.not_ready_addresses
        };
        list.get_or_insert_with(Vec::new).push(address);
    }
    let subsets: Vec<EndpointSubset> = subsets.into_values().collect();
    Endpoints {
        metadata: ObjectMeta {
            name: service.metadata.name.clone(),
            namespace: service.metadata.namespace.clone(),
            labels: service.metadata.labels.clone(),
            ..ObjectMeta::default()
        },
        subsets: (!subsets.is_empty()).then_some(subsets),
    }
}

/// The EndpointSlices of `service`, one per set of resolved ports (named after the Service
/// and a digest of the ports, so a reconcile finds its own again); every pod with an IP is
/// listed, terminating ones marked.
pub fn slices(service: &Service, pods: &[Pod]) -> Vec<EndpointSlice> {
    let publish = publishes_not_ready(service);
    let mut slices: BTreeMap<String, EndpointSlice> = BTreeMap::new();
    for member in members(service, pods) {
        let ports: Vec<SlicePort> = member.ports.iter().map(slice_port).collect();
        let name = slice_name(service, &ports);
        let slice = slices
            .entry(name.clone())
            .or_insert_with(|| empty_slice(service, name, ports));
        let serving = member.ready;
        let endpoint = Endpoint {
            addresses: vec![member.ip.clone()],
            conditions: Some(EndpointConditions {
                ready: Some((serving || publish) && !member.terminating),
                serving: Some(serving),
                terminating: Some(member.terminating),
            }),
            hostname: hostname(service, member.pod),
            node_name: member.pod.spec.as_ref().and_then(|s| s.node_name.clone()),
            target_ref: Some(target_ref(member.pod)),
            ..Endpoint::default()
        };
        slice.endpoints.get_or_insert_with(Vec::new).push(endpoint);
    }
    if slices.is_empty() {
        let name = slice_name(service, &[]);
        slices.insert(name.clone(), empty_slice(service, name, Vec::new()));
    }
    slices.into_values().collect()
}

fn publishes_not_ready(service: &Service) -> bool {
    service
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false)
}

/// The pods with an IP that have not finished, with the Service's ports they serve.
fn members<'a>(service: &'a Service, pods: &'a [Pod]) -> impl Iterator<Item = Member<'a>> {
    let service_ports = service
        .spec
        .as_ref()
        .and_then(|s| s.ports.clone())
        .unwrap_or_default();
    pods.iter().filter_map(move |pod| {
        let status = pod.status.as_ref()?;
        // Services are IPv4 single-stack here.
        let ip = status
            .pod_ip
            .clone()
            .filter(|ip| ip.parse::<Ipv4Addr>().is_ok())?;
        if matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
            return None;
        }
        let ready = status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        let ports: Vec<EndpointPort> = service_ports
            .iter()
            .filter_map(|port| resolve(port, pod))
            .collect();
        // A pod serving none of the Service's ports is no endpoint of it.
        if ports.is_empty() && !service_ports.is_empty() {
            return None;
        }
        Some(Member {
            pod,
            ip,
            ready,
            terminating: pod.metadata.deletion_timestamp.is_some(),
            ports,
        })
    })
}

/// A service port with its target resolved in `pod`: a number as it is, a name through the
/// pod's container ports (none when the pod has no port of that name).
fn resolve(port: &ServicePort, pod: &Pod) -> Option<EndpointPort> {
    let number = match &port.target_port {
        None => port.port,
        Some(IntOrString::Int(number)) => *number,
        Some(IntOrString::String(name)) => {
            pod.spec
                .iter()
                .flat_map(|s| &s.containers)
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| p.name.as_deref() == Some(name.as_str()))?
                .container_port
        }
    };
    Some(EndpointPort {
        name: port.name.clone(),
        port: number,
        protocol: port.protocol.clone(),
        app_protocol: port.app_protocol.clone(),
    })
}

fn slice_port(port: &EndpointPort) -> SlicePort {
    SlicePort {
        name: Some(port.name.clone().unwrap_or_default()),
        port: Some(port.port),
        protocol: port.protocol.clone(),
        app_protocol: port.app_protocol.clone(),
    }
}

/// The pod's `hostname`, when its `subdomain` is this Service (how a headless Service
/// names its pods in DNS).
fn hostname(service: &Service, pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    (spec.subdomain.is_some() && spec.subdomain == service.metadata.name)
        .then(|| spec.hostname.clone())
        .flatten()
}

fn address(service: &Service, member: &Member<'_>) -> EndpointAddress {
    EndpointAddress {
        ip: member.ip.clone(),
        hostname: hostname(service, member.pod),
        node_name: member.pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        target_ref: Some(target_ref(member.pod)),
    }
}

fn target_ref(pod: &Pod) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".into()),
        name: pod.metadata.name.clone(),
        namespace: pod.metadata.namespace.clone(),
        uid: pod.metadata.uid.clone(),
        ..ObjectReference::default()
    }
}

/// `web-` and a digest of the ports, cut so the name stays a DNS subdomain.
fn slice_name(service: &Service, ports: &[SlicePort]) -> String {
    let mut digest: u32 = 0x811c_9dc5;
    for port in ports {
        let text = format!("{:?}/{:?}/{:?};", port.name, port.port, port.protocol);
        for byte in text.bytes() {
            digest = (digest ^ u32::from(byte)).wrapping_mul(0x0100_0193);
        }
    }
    let name = service.metadata.name.as_deref().unwrap_or_default();
    let prefix: String = name.chars().take(240).collect();
    format!("{prefix}-{digest:08x}")
}

fn empty_slice(service: &Service, name: String, ports: Vec<SlicePort>) -> EndpointSlice {
    let mut labels = service.metadata.labels.clone().unwrap_or_default();
    let service_name = service.metadata.name.clone().unwrap_or_default();
    labels.insert(SERVICE_NAME_LABEL.into(), service_name.clone());
    labels.insert(MANAGED_BY_LABEL.into(), MANAGER.into());
    EndpointSlice {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: service.metadata.namespace.clone(),
            labels: Some(labels),
            owner_references: Some(vec![OwnerReference {
                api_version: "v1".into(),
                kind: "Service".into(),
                name: service_name,
                uid: service.metadata.uid.clone().unwrap_or_default(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..ObjectMeta::default()
        },
        address_type: "IPv4".into(),
        endpoints: Some(Vec::new()),
        ports: (!ports.is_empty()).then_some(ports),
    }
}

#[cfg(test)]
mod tests;
