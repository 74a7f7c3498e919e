use super::*;
use serde_json::{Value, json};

fn service(spec: Value, status: Value) -> Service {
    serde_json::from_value(json!({"metadata": {"name": "web", "namespace": "shop"},
        "spec": spec, "status": status}))
    .unwrap()
}

fn slice(ports: Value, endpoints: Value) -> EndpointSlice {
    serde_json::from_value(json!({"metadata": {"name": "web-abc", "namespace": "shop"},
        "addressType": "IPv4", "ports": ports, "endpoints": endpoints}))
    .unwrap()
}

fn endpoint(ip: &str, ready: bool) -> Value {
    json!({"addresses": [ip], "conditions": {"ready": ready}})
}

fn three_ready() -> Vec<EndpointSlice> {
    vec![slice(
        json!([{"name": "http", "port": 8080}]),
        json!([
            endpoint("10.244.1.2", true),
            endpoint("10.244.1.3", true),
            endpoint("10.244.2.2", true),
            endpoint("10.244.2.3", false)
        ]),
    )]
}

fn at(address: &str) -> Front {
    Front::Address(address.parse().unwrap())
}

/// A table holding `shop/web` at 10.96.0.10:80 with [`three_ready`] endpoints.
fn cluster_ip_table() -> ServiceTable {
    let table = ServiceTable::default();
    let spec = json!({"clusterIP": "10.96.0.10", "ports": [{"name": "http", "port": 80}]});
    let web = service(spec, json!({}));
    table.set_service("shop", "web", Some(&web), &three_ready());
    table
}

fn client(n: u8) -> IpAddr {
    IpAddr::from([10, 244, 9, n])
}

#[test]
fn connections_to_a_cluster_ip_take_the_ready_endpoints_in_turn() {
    let table = cluster_ip_table();
    let picks: Vec<Pick> = (0..6)
        .map(|_| table.pick(at("10.96.0.10:80"), client(1), &[]))
        .collect();
    let endpoints = ["10.244.1.2:8080", "10.244.1.3:8080", "10.244.2.2:8080"];
    let expected: Vec<Pick> = endpoints
        .iter()
        .chain(&endpoints)
        .map(|e| Pick::Endpoint(e.parse().unwrap()))
        .collect();
    assert_eq!(picks, expected);
    assert_eq!(
        table.pick(at("10.96.0.10:81"), client(1), &[]),
        Pick::NotAService
    );
    assert_eq!(
        table.pick(at("10.96.0.11:80"), client(1), &[]),
        Pick::NotAService
    );
}

#[test]
fn a_retry_skips_endpoints_already_tried_and_finds_none_left() {
    let table = cluster_ip_table();
    let mut tried = Vec::new();
    for _ in 0..3 {
        let Pick::Endpoint(endpoint) = table.pick(at("10.96.0.10:80"), client(1), &tried) else {
            panic!("an endpoint is left");
        };
        assert!(!tried.contains(&endpoint));
        tried.push(endpoint);
    }
    assert_eq!(
        table.pick(at("10.96.0.10:80"), client(1), &tried),
        Pick::NoEndpoint
    );
}

#[test]
fn client_ip_affinity_keeps_each_client_on_one_endpoint_while_it_is_ready() {
    let table = ServiceTable::default();
    let spec = json!({"clusterIP": "10.96.0.10", "sessionAffinity": "ClientIP",
        "ports": [{"name": "http", "port": 80}]});
    let web = service(spec, json!({}));
    table.set_service("shop", "web", Some(&web), &three_ready());
    let front = at("10.96.0.10:80");
    let first = table.pick(front, client(1), &[]);
    let second = table.pick(front, client(2), &[]);
    assert_ne!(first, second);
    for _ in 0..5 {
        assert_eq!(table.pick(front, client(1), &[]), first);
        assert_eq!(table.pick(front, client(2), &[]), second);
    }
    // The first client's endpoint stops being ready: it moves, and stays where it moved.
    let Pick::Endpoint(gone) = first else {
        panic!("an endpoint")
    };
    let mut slices = three_ready();
    for e in slices[0].endpoints.as_mut().unwrap() {
        if e.addresses[0] == gone.ip().to_string() {
            e.conditions.as_mut().unwrap().ready = Some(false);
        }
    }
    table.set_service("shop", "web", Some(&web), &slices);
    let moved = table.pick(front, client(1), &[]);
    assert!(!matches!(moved, Pick::NoEndpoint) && moved != first);
    assert_eq!(table.pick(front, client(1), &[]), moved);
    assert_eq!(table.pick(front, client(2), &[]), second);
}

#[test]
fn node_ports_and_ingress_addresses_answer_only_for_their_types() {
    let table = ServiceTable::default();
    let spec = json!({"type": "LoadBalancer", "clusterIP": "10.96.0.10",
        "ports": [{"name": "http", "port": 80, "nodePort": 30080}]});
    let status = json!({"loadBalancer": {"ingress": [{"ip": "127.0.100.1"}]}});
    table.set_service("shop", "web", Some(&service(spec, status)), &three_ready());
    for front in [
        at("10.96.0.10:80"),
        at("127.0.100.1:80"),
        Front::NodePort(30080),
    ] {
        assert!(
            matches!(table.pick(front, client(1), &[]), Pick::Endpoint(_)),
            "{front:?}"
        );
    }
    let spec = json!({"type": "ClusterIP", "clusterIP": "10.96.0.10",
        "ports": [{"name": "http", "port": 80, "nodePort": 30080}]});
    let status = json!({"loadBalancer": {"ingress": [{"ip": "127.0.100.1"}]}});
    table.set_service("shop", "web", Some(&service(spec, status)), &three_ready());
    assert_eq!(
        table.fronts(),
        vec![(at("10.96.0.10:80"), "shop/web".to_string())]
    );
    table.set_service("shop", "web", None, &[]);
    assert!(table.fronts().is_empty());
}

#[test]
fn a_service_without_ready_endpoints_or_with_another_port_name_has_none() {
    let table = ServiceTable::default();
    let spec = json!({"clusterIP": "10.96.0.10", "ports": [{"name": "metrics", "port": 9090}]});
    table.set_service(
        "shop",
        "web",
        Some(&service(spec, json!({}))),
        &three_ready(),
    );
    assert_eq!(
        table.pick(at("10.96.0.10:9090"), client(1), &[]),
        Pick::NoEndpoint
    );
    let headless = json!({"clusterIP": "None", "ports": [{"name": "http", "port": 80}]});
    table.set_service(
        "shop",
        "web",
        Some(&service(headless, json!({}))),
        &three_ready(),
    );
    assert!(table.fronts().is_empty());
}

#[test]
fn every_change_is_announced() {
    let table = ServiceTable::default();
    let changes = table.changes();
    table.set_service("shop", "web", None, &[]);
    assert!(changes.has_changed().unwrap());
}
