//! `describe service`: kubectl's layout — addresses, each port with its target and node port,
//! the ready endpoints from the Service's EndpointSlices, affinity and traffic policies.

use k8s_openapi::api::core::v1::{Service, ServicePort};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::describe::{Out, labels_and_annotations, metadata};

/// Writes the Service's fields; `slices` are its EndpointSlices.
pub fn service(out: &mut Out, service: &Service, slices: &[EndpointSlice]) {
    metadata(out, &service.metadata, true);
    labels_and_annotations(out, &service.metadata);
    let spec = service.spec.clone().unwrap_or_default();
    let selector: Vec<String> = spec
        .selector
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    out.field(0, "Selector", selector.join(","));
    let kind = spec.type_.as_deref().unwrap_or("ClusterIP");
    out.field(0, "Type", kind);
    if kind == "ExternalName" {
        out.field(
            0,
            "External Name",
            spec.external_name.as_deref().unwrap_or_default(),
        );
    } else {
        let policy = spec.ip_family_policy.as_deref().unwrap_or("<none>");
        out.field(0, "IP Family Policy", policy);
        out.field(
            0,
            "IP Families",
            spec.ip_families.unwrap_or_default().join(","),
        );
        out.field(0, "IP", spec.cluster_ip.as_deref().unwrap_or_default());
        out.field(0, "IPs", spec.cluster_ips.unwrap_or_default().join(","));
    }
    let ingress = service
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref());
    let ingress: Vec<String> = ingress
        .into_iter()
        .flatten()
        .filter_map(|i| i.ip.clone().or_else(|| i.hostname.clone()))
        .collect();
    if !ingress.is_empty() {
        out.field(0, "LoadBalancer Ingress", ingress.join(", "));
    }
    for port in spec.ports.iter().flatten() {
        ports(out, port, slices);
    }
    out.field(
        0,
        "Session Affinity",
        spec.session_affinity.as_deref().unwrap_or("None"),
    );
    if let Some(policy) = &spec.external_traffic_policy {
        out.field(0, "External Traffic Policy", policy);
    }
    if let Some(policy) = &spec.internal_traffic_policy {
        out.field(0, "Internal Traffic Policy", policy);
    }
}

/// `Port`, `TargetPort`, `NodePort` and `Endpoints` of one port.
fn ports(out: &mut Out, port: &ServicePort, slices: &[EndpointSlice]) {
    let name = port
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or("<unset>".into());
    let protocol = port.protocol.as_deref().unwrap_or("TCP");
    out.field(0, "Port", format!("{name}  {}/{protocol}", port.port));
    let target = match &port.target_port {
        Some(IntOrString::Int(number)) => number.to_string(),
        Some(IntOrString::String(named)) => named.clone(),
        None => port.port.to_string(),
    };
    out.field(0, "TargetPort", format!("{target}/{protocol}"));
    if let Some(node_port) = port.node_port.filter(|p| *p != 0) {
        out.field(0, "NodePort", format!("{name}  {node_port}/{protocol}"));
    }
    out.field(0, "Endpoints", endpoints(port, slices));
}

/// The ready `ip:port` of the port in the slices, as kubectl's `formatEndpointSlices`.
fn endpoints(port: &ServicePort, slices: &[EndpointSlice]) -> String {
    let mut list = Vec::new();
    for slice in slices {
        let matching = slice.ports.iter().flatten().find(|p| {
            p.name.as_deref().unwrap_or_default() == port.name.as_deref().unwrap_or_default()
        });
        let Some(number) = matching.and_then(|p| p.port) else {
            continue;
        };
        for endpoint in slice.endpoints.iter().flatten() {
            let ready = endpoint.conditions.as_ref().and_then(|c| c.ready) != Some(false);
            if ready {
                list.extend(endpoint.addresses.iter().map(|a| format!("{a}:{number}")));
            }
        }
    }
    let shown = list[..list.len().min(3)].join(",");
    if list.len() > 3 {
        format!("{shown} + {} more...", list.len() - 3)
    } else {
        shown
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_node_port_service_is_described_as_kubectl_describes_it() {
        let service: Service = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            "spec": {"type": "NodePort", "selector": {"app": "web"}, "clusterIP": "10.96.0.7",
                     "clusterIPs": ["10.96.0.7"], "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                     "ports": [{"port": 80, "targetPort": 8080, "nodePort": 30080, "protocol": "TCP"}],
                     "sessionAffinity": "None", "externalTrafficPolicy": "Cluster",
                     "internalTrafficPolicy": "Cluster"}})).unwrap();
        let slice: EndpointSlice = serde_json::from_value(json!({"metadata": {"name": "web-1"},
            "addressType": "IPv4", "ports": [{"name": "", "port": 8080}],
            "endpoints": [{"addresses": ["10.244.0.5"], "conditions": {"ready": true}},
                          {"addresses": ["10.244.0.6"], "conditions": {"ready": false}}]}))
        .unwrap();
        let mut out = Out::default();
        super::service(&mut out, &service, &[slice]);
        let text = out.render();
        for line in [
            "Selector:                 app=web",
            "Type:                     NodePort",
            "IP Family Policy:         SingleStack",
            "IP:                       10.96.0.7",
            "Port:                     <unset>  80/TCP",
            "TargetPort:               8080/TCP",
            "NodePort:                 <unset>  30080/TCP",
            "Endpoints:                10.244.0.5:8080",
            "External Traffic Policy:  Cluster",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} not in\n{text}");
        }
    }
}
