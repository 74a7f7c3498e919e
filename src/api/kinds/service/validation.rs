//! Kubernetes' `ValidateService` and `ValidateServiceUpdate`, with its field paths and
//! messages.

use std::collections::BTreeSet;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use super::{
    LOAD_BALANCER_ALGORITHM, LOAD_BALANCER_ALGORITHMS, needs_cluster_ip, needs_node_ports, type_of,
};
use crate::api::error::Cause;
use crate::api::kinds::meta;

/// The `clusterIP` of a headless service.
pub const NONE: &str = "None";

const TYPES: &[&str] = &["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"];
const PROTOCOLS: &[&str] = &["TCP", "UDP", "SCTP"];
const AFFINITIES: &[&str] = &["None", "ClientIP"];
const TRAFFIC_POLICIES: &[&str] = &["Cluster", "Local"];
/// Kubernetes' bound on `sessionAffinityConfig.clientIP.timeoutSeconds`: one day.
const MAX_AFFINITY_SECONDS: i32 = 86_400;
const PORT_RANGE: &str = "must be between 1 and 65535, inclusive";

pub fn validate(spec: &ServiceSpec, causes: &mut Vec<Cause>) {
    let kind = type_of(spec);
    if !TYPES.contains(&kind) {
        causes.push(Cause::unsupported("spec.type", kind, TYPES));
        return;
    }
    validate_cluster_ip(spec, causes);
    validate_ports(spec, causes);
    validate_external_name(spec, causes);
    validate_affinity(spec, causes);
    validate_policies(spec, causes);
    if let Some(selector) = &spec.selector {
        let labels = serde_json::to_value(selector).unwrap_or(Value::Null);
        meta::validate_labels(&labels, "spec.selector", causes);
    }
}

/// The proxy's balancing annotation, when set, names an algorithm it has.
pub fn validate_algorithm(metadata: &ObjectMeta, causes: &mut Vec<Cause>) {
    let annotations = metadata.annotations.as_ref();
    let Some(value) = annotations.and_then(|a| a.get(LOAD_BALANCER_ALGORITHM)) else {
        return;
    };
    if !LOAD_BALANCER_ALGORITHMS.contains(&value.as_str()) {
        causes.push(Cause::unsupported(
            format!("metadata.annotations[{LOAD_BALANCER_ALGORITHM}]"),
            value,
            LOAD_BALANCER_ALGORITHMS,
        ));
    }
}

/// The cluster IP may not change once set (ExternalName has none).
pub fn validate_update(old: &ServiceSpec, new: &ServiceSpec, causes: &mut Vec<Cause>) {
    let set = |spec: &ServiceSpec| spec.cluster_ip.clone().filter(|ip| !ip.is_empty());
    if needs_cluster_ip(old) && needs_cluster_ip(new) && set(old).is_some() && set(old) != set(new)
    {
        causes.push(Cause::invalid(
            "spec.clusterIP",
            set(new).unwrap_or_default(),
            "field is immutable",
        ));
    }
}

fn validate_cluster_ip(spec: &ServiceSpec, causes: &mut Vec<Cause>) {
    let ip = spec.cluster_ip.as_deref().unwrap_or_default();
    if !needs_cluster_ip(spec) {
        if !ip.is_empty() {
            causes.push(Cause::forbidden(
                "spec.clusterIPs",
                "may not be set for ExternalName services",
            ));
        }
        return;
    }
    if ip == NONE && needs_node_ports(spec) {
        causes.push(Cause::invalid(
            "spec.clusterIPs[0]",
            NONE,
            &format!("may not be set to 'None' for {} services", type_of(spec)),
        ));
    } else if !ip.is_empty() && ip != NONE && ip.parse::<IpAddr>().is_err() {
        causes.push(Cause::invalid(
            "spec.clusterIPs[0]",
            ip,
            "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
        ));
    }
    if let Some(first) = spec.cluster_ips.as_ref().and_then(|ips| ips.first())
        && !ip.is_empty()
        && first != ip
    {
        causes.push(Cause::invalid(
            "spec.clusterIPs[0]",
            first.as_str(),
            "must match `spec.clusterIP`",
        ));
    }
}

fn validate_ports(spec: &ServiceSpec, causes: &mut Vec<Cause>) {
    let ports = spec.ports.as_deref().unwrap_or_default();
    let headless = spec.cluster_ip.as_deref() == Some(NONE);
    if ports.is_empty() && needs_cluster_ip(spec) && !headless {
        causes.push(Cause::required("spec.ports"));
    }
    let mut names = BTreeSet::new();
    let mut bindings = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let path = format!("spec.ports[{i}]");
        validate_port_name(&path, port, ports.len() > 1, causes);
        if let Some(name) = port.name.as_deref().filter(|n| !n.is_empty())
            && !names.insert(name)
        {
            causes.push(Cause::duplicate(format!("{path}.name"), name));
        }
        validate_port_numbers(&path, spec, port, causes);
        let protocol = port.protocol.as_deref().unwrap_or("TCP");
        if !PROTOCOLS.contains(&protocol) {
            causes.push(Cause::unsupported(
                format!("{path}.protocol"),
                protocol,
                PROTOCOLS,
            ));
        }
        if !bindings.insert((port.port, protocol)) {
            causes.push(Cause::duplicate(path, format!("{}/{protocol}", port.port)));
        }
    }
}

fn validate_port_name(path: &str, port: &ServicePort, several: bool, causes: &mut Vec<Cause>) {
    match port.name.as_deref().filter(|n| !n.is_empty()) {
        None if several => causes.push(Cause::required(format!("{path}.name"))),
        None => {}
        Some(name) => {
            if let Some(error) = meta::dns_label_error(name) {
                causes.push(Cause::invalid(format!("{path}.name"), name, &error));
            }
        }
    }
}

fn validate_port_numbers(
    path: &str,
    spec: &ServiceSpec,
    port: &ServicePort,
    causes: &mut Vec<Cause>,
) {
    if !(1..=65535).contains(&port.port) {
        causes.push(Cause::invalid(
            format!("{path}.port"),
            port.port,
            PORT_RANGE,
        ));
    }
    match &port.target_port {
        Some(IntOrString::Int(target)) if !(1..=65535).contains(target) => {
            causes.push(Cause::invalid(
                format!("{path}.targetPort"),
                *target,
                PORT_RANGE,
            ));
        }
        Some(IntOrString::String(name)) if port_name_error(name).is_some() => {
            let error = port_name_error(name).unwrap_or_default();
            causes.push(Cause::invalid(
                format!("{path}.targetPort"),
                name.as_str(),
                &error,
            ));
        }
        _ => {}
    }
    match port.node_port {
        Some(node_port) if !needs_node_ports(spec) && node_port != 0 => {
            causes.push(Cause::forbidden(
                format!("{path}.nodePort"),
                format!("may not be used when `type` is '{}'", type_of(spec)),
            ));
        }
        Some(node_port) if !(0..=65535).contains(&node_port) => {
            causes.push(Cause::invalid(
                format!("{path}.nodePort"),
                node_port,
                PORT_RANGE,
            ));
        }
        _ => {}
    }
}

/// Why `name` is not an IANA service name (a named `targetPort`): ≤15 lowercase
/// alphanumerics or '-', at least one letter, no '-' at the ends or twice in a row.
pub fn port_name_error(name: &str) -> Option<String> {
    let valid = !name.is_empty()
        && name.len() <= 15
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && name.bytes().any(|b| b.is_ascii_lowercase())
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--");
    (!valid).then(|| {
        "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-), contain at least one letter (a-z), not start or end with a hyphen and not contain adjacent hyphens, and be no more than 15 characters".into()
    })
}

fn validate_external_name(spec: &ServiceSpec, causes: &mut Vec<Cause>) {
    if type_of(spec) != "ExternalName" {
        return;
    }
    let name = spec.external_name.as_deref().unwrap_or_default();
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        causes.push(Cause::required("spec.externalName"));
    } else if let Some(error) = meta::dns_subdomain_error(trimmed) {
        causes.push(Cause::invalid("spec.externalName", name, &error));
    }
}

fn validate_affinity(spec: &ServiceSpec, causes: &mut Vec<Cause>) {
    let affinity = spec.session_affinity.as_deref().unwrap_or("None");
    if !AFFINITIES.contains(&affinity) {
        causes.push(Cause::unsupported(
            "spec.sessionAffinity",
            affinity,
            AFFINITIES,
        ));
    }
    let timeout = spec
        .session_affinity_config
        .as_ref()
        .and_then(|c| c.client_ip.as_ref())
        .and_then(|c| c.timeout_seconds);
    match timeout {
        Some(_) if affinity != "ClientIP" => causes.push(Cause::forbidden(
            "spec.sessionAffinityConfig",
            format!("must not be set when session affinity is {affinity}"),
        )),
        Some(seconds) if !(1..=MAX_AFFINITY_SECONDS).contains(&seconds) => {
            causes.push(Cause::invalid(
                "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                seconds,
                &format!("must be greater than 0 and less than {MAX_AFFINITY_SECONDS}"),
            ));
        }
        _ => {}
    }
}

fn validate_policies(spec: &ServiceSpec, causes: &mut Vec<Cause>) {
    let policies = [
        ("spec.externalTrafficPolicy", &spec.external_traffic_policy),
        ("spec.internalTrafficPolicy", &spec.internal_traffic_policy),
    ];
    for (field, policy) in policies {
        if let Some(policy) = policy.as_deref()
            && !TRAFFIC_POLICIES.contains(&policy)
        {
            causes.push(Cause::unsupported(field, policy, TRAFFIC_POLICIES));
        }
    }
    if spec.external_traffic_policy.is_some() && !needs_node_ports(spec) {
        causes.push(Cause::invalid(
            "spec.externalTrafficPolicy",
            spec.external_traffic_policy.as_deref().unwrap_or_default(),
            "may only be set for externally-accessible services",
        ));
    }
}
