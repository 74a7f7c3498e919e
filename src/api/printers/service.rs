//! The columns of Services, Endpoints and EndpointSlices, filled as kubectl's printers fill
//! them (`printService`, `printEndpoints`, `printEndpointSlice`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::{Column, Columns, age, decode, or_none, text};

/// How many addresses a cell lists before `+ N more...`.
const SHOWN: usize = 3;

pub static COLUMNS: Columns = Columns {
    columns: &[
        Column::standard("NAME"),
        Column::standard("TYPE"),
        Column::standard("CLUSTER-IP"),
        Column::standard("EXTERNAL-IP"),
        Column::standard("PORT(S)"),
        Column::standard("AGE"),
        Column::wide("SELECTOR"),
    ],
    cells: |object, now| {
        let service: Service = decode(object);
        let spec = service.spec.unwrap_or_default();
        let kind = spec.type_.clone().unwrap_or_else(|| "ClusterIP".into());
        let cluster_ip = or_none(spec.cluster_ip.clone());
        let external = external_ip(&kind, &spec, service.status.as_ref());
        let ports: Vec<String> = spec
            .ports
            .iter()
            .flatten()
            .map(|p| {
                let protocol = p.protocol.as_deref().unwrap_or("TCP");
                match p.node_port.filter(|n| *n != 0) {
                    Some(node_port) => format!("{}:{node_port}/{protocol}", p.port),
                    None => format!("{}/{protocol}", p.port),
                }
            })
            .collect();
        vec![
            text(object, "/metadata/name"),
            kind,
            cluster_ip,
            external,
            or_none(Some(ports.join(","))),
            age(object, now),
            selector(spec.selector.as_ref()),
        ]
    },
};

/// kubectl's `getServiceExternalIP`: the external IPs, a LoadBalancer's ingress (`<pending>`
/// until it has one), or an ExternalName's name.
fn external_ip(
    kind: &str,
    spec: &k8s_openapi::api::core::v1::ServiceSpec,
    status: Option<&k8s_openapi::api::core::v1::ServiceStatus>,
) -> String {
    let mut addresses: Vec<String> = Vec::new();
    match kind {
        "ExternalName" => return spec.external_name.clone().unwrap_or_default(),
        "LoadBalancer" => {
            let ingress = status
                .and_then(|s| s.load_balancer.as_ref())
                .and_then(|lb| lb.ingress.as_ref());
            for entry in ingress.into_iter().flatten() {
                addresses.extend(entry.ip.clone().or_else(|| entry.hostname.clone()));
            }
            addresses.extend(spec.external_ips.iter().flatten().cloned());
            if addresses.is_empty() {
                return "<pending>".into();
            }
        }
        _ => addresses.extend(spec.external_ips.iter().flatten().cloned()),
    }
    or_none(Some(addresses.join(",")))
}

/// A selector as `app=web,tier=front`, or `<none>`.
fn selector(selector: Option<&BTreeMap<String, String>>) -> String {
    let pairs: Vec<String> = selector
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    or_none(Some(pairs.join(",")))
}

pub static ENDPOINTS_COLUMNS: Columns = Columns {
    columns: &[
        Column::standard("NAME"),
        Column::standard("ENDPOINTS"),
        Column::standard("AGE"),
    ],
    cells: |object, now| {
        let endpoints: Endpoints = decode(object);
        vec![
            text(object, "/metadata/name"),
            format_endpoints(&endpoints),
            age(object, now),
        ]
    },
};

/// kubectl's `formatEndpoints`: `ip:port` per address and port, the first three, then
/// `+ N more...`; a subset without ports lists bare addresses.
fn format_endpoints(endpoints: &Endpoints) -> String {
    let subsets = endpoints.subsets.as_deref().unwrap_or_default();
    if subsets.is_empty() {
        return "<none>".into();
    }
    let mut all = Vec::new();
    for subset in subsets {
        let addresses = subset.addresses.as_deref().unwrap_or_default();
        match subset.ports.as_deref() {
            None | Some([]) => all.extend(addresses.iter().map(|a| a.ip.clone())),
            Some(ports) => {
                for port in ports {
                    all.extend(addresses.iter().map(|a| join_host_port(&a.ip, port.port)));
                }
            }
        }
    }
    with_more(&all, "")
}

fn join_host_port(ip: &str, port: i32) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// The first three of `all` joined, then `+ N more...`; `empty` when there are none.
fn with_more(all: &[String], empty: &str) -> String {
    let shown = all[..all.len().min(SHOWN)].join(",");
    match all.len() {
        0 => empty.into(),
        n if n > SHOWN => format!("{shown} + {} more...", n - SHOWN),
        _ => shown,
    }
}

pub static ENDPOINT_SLICE_COLUMNS: Columns = Columns {
    columns: &[
        Column::standard("NAME"),
        Column::standard("ADDRESSTYPE"),
        Column::standard("PORTS"),
        Column::standard("ENDPOINTS"),
        Column::standard("AGE"),
    ],
    cells: |object, now| {
        let slice: EndpointSlice = decode(object);
        let ports: Vec<String> = slice
            .ports
            .iter()
            .flatten()
            .map(|p| match (p.port, &p.name) {
                (Some(port), _) => port.to_string(),
                (None, Some(name)) => name.clone(),
                (None, None) => "*".into(),
            })
            .collect();
        let addresses: Vec<String> = slice
            .endpoints
            .iter()
            .flatten()
            .flat_map(|e| e.addresses.iter().cloned())
            .collect();
        vec![
            text(object, "/metadata/name"),
            slice.address_type.clone(),
            with_more(&ports, "<unset>"),
            with_more(&addresses, "<unset>"),
            age(object, now),
        ]
    },
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::printers::{Printer, test_now};
    use serde_json::json;

    fn cells(columns: &Columns, object: serde_json::Value) -> Vec<String> {
        let mut cells = columns.cells(&object, test_now());
        cells.remove(0);
        cells
    }

    #[test]
    fn services_print_their_type_address_and_ports_as_kubectl() {
        let meta = json!({"name": "web", "creationTimestamp": "2024-01-09T23:00:00Z"});
        let node_port = json!({"metadata": meta, "spec": {"type": "NodePort", "clusterIP": "10.96.0.7",
            "selector": {"app": "web"},
            "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]}});
        assert_eq!(
            cells(&COLUMNS, node_port),
            [
                "NodePort",
                "10.96.0.7",
                "<none>",
                "80:30080/TCP,53/UDP",
                "60m",
                "app=web"
            ]
        );
        let pending = json!({"metadata": meta, "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.8",
            "ports": [{"port": 80, "nodePort": 31000}]}});
        assert_eq!(cells(&COLUMNS, pending)[2], "<pending>");
        let external = json!({"metadata": meta, "spec": {"type": "ExternalName", "externalName": "example.com"}});
        assert_eq!(
            cells(&COLUMNS, external),
            [
                "ExternalName",
                "<none>",
                "example.com",
                "<none>",
                "60m",
                "<none>"
            ]
        );
    }

    #[test]
    fn endpoints_list_three_addresses_then_how_many_more() {
        let addresses: Vec<_> = (5..9)
            .map(|i| json!({"ip": format!("10.244.0.{i}")}))
            .collect();
        let endpoints = json!({"metadata": {"name": "web"},
            "subsets": [{"addresses": addresses, "ports": [{"port": 8080}]}]});
        assert_eq!(
            cells(&ENDPOINTS_COLUMNS, endpoints)[0],
            "10.244.0.5:8080,10.244.0.6:8080,10.244.0.7:8080 + 1 more..."
        );
        assert_eq!(
            cells(&ENDPOINTS_COLUMNS, json!({"metadata": {"name": "x"}}))[0],
            "<none>"
        );
    }

    #[test]
    fn endpoint_slices_print_ports_and_addresses() {
        let slice = json!({"metadata": {"name": "web-abcde"}, "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": ["10.244.0.5"]}, {"addresses": ["10.244.0.6"]}]});
        let got = cells(&ENDPOINT_SLICE_COLUMNS, slice);
        assert_eq!(got[..3], ["IPv4", "8080", "10.244.0.5,10.244.0.6"]);
        let empty = json!({"metadata": {"name": "web-x"}, "addressType": "IPv4", "endpoints": []});
        assert_eq!(
            cells(&ENDPOINT_SLICE_COLUMNS, empty)[1..3],
            ["<unset>", "<unset>"]
        );
    }
}
