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

/// `shop/web` at 10.96.0.10:80 with [`three_ready`] endpoints, balanced by least requests.
fn least_requests_table() -> ServiceTable {
    let table = ServiceTable::default();
    let spec = json!({"clusterIP": "10.96.0.10", "ports": [{"name": "http", "port": 80}]});
    let mut web = service(spec, json!({}));
    web.metadata.annotations = Some(
        [(
            LOAD_BALANCER_ALGORITHM_KEY.to_string(),
            "least-requests".to_string(),
        )]
        .into(),
    );
    table.set_service("shop", "web", Some(&web), &three_ready());
    table
}

const LOAD_BALANCER_ALGORITHM_KEY: &str = crate::api::kinds::service::LOAD_BALANCER_ALGORITHM;

fn endpoint_of(pick: Pick) -> SocketAddr {
    match pick {
        Pick::Endpoint(endpoint) => endpoint,
        other => panic!("an endpoint, not {other:?}"),
    }
}

#[test]
fn least_requests_sends_to_the_endpoint_with_fewest_in_flight_and_takes_ties_in_turn() {
    let table = least_requests_table();
    let front = at("10.96.0.10:80");
    // Nothing in flight: ties, taken in turn.
    let (first, held_first) = table.pick_carried(front, client(1), &[]);
    let (second, held_second) = table.pick_carried(front, client(1), &[]);
    let (third, _held_third) = table.pick_carried(front, client(1), &[]);
    let three = [first, second, third].map(endpoint_of);
    assert_eq!(
        three,
        ["10.244.1.2:8080", "10.244.1.3:8080", "10.244.2.2:8080"].map(|e| e.parse().unwrap())
    );
    // The second finishes: it has fewest, whoever's turn it is.
    drop(held_second);
    for _ in 0..3 {
        let (pick, held) = table.pick_carried(front, client(1), &[]);
        assert_eq!(endpoint_of(pick), three[1]);
        drop(held);
    }
    // One more on the second (all have one), then the first finishes: it alone has none.
    let (pick, _again) = table.pick_carried(front, client(1), &[]);
    assert_eq!(endpoint_of(pick), three[1]);
    drop(held_first);
    let (pick, _) = table.pick_carried(front, client(1), &[]);
    assert_eq!(endpoint_of(pick), three[0]);
}

#[test]
fn counts_survive_an_update_of_the_service_and_plain_picks_add_none() {
    let table = least_requests_table();
    let front = at("10.96.0.10:80");
    let (held, _in_flight) = table.pick_carried(front, client(1), &[]);
    // A pod's connection to the cluster IP follows the counts but is not counted.
    let picks: Vec<Pick> = (0..4).map(|_| table.pick(front, client(2), &[])).collect();
    assert!(!picks.contains(&held), "{picks:?}");
    let spec = json!({"clusterIP": "10.96.0.10", "ports": [{"name": "http", "port": 80}]});
    let mut web = service(spec, json!({"loadBalancer": {}}));
    web.metadata.annotations = Some(
        [(
            LOAD_BALANCER_ALGORITHM_KEY.to_string(),
            "least-requests".to_string(),
        )]
        .into(),
    );
    table.set_service("shop", "web", Some(&web), &three_ready());
    for _ in 0..4 {
        assert_ne!(table.pick(front, client(2), &[]), held);
    }
}

#[test]
fn round_robin_is_the_default_and_ignores_what_is_in_flight() {
    let table = cluster_ip_table();
    let front = at("10.96.0.10:80");
    let (first, _held) = table.pick_carried(front, client(1), &[]);
    let _ = table.pick_carried(front, client(1), &[]);
    let _ = table.pick_carried(front, client(1), &[]);
    assert_eq!(table.pick_carried(front, client(1), &[]).0, first);
}

#[test]
fn a_port_speaks_http_or_tcp_as_its_app_protocol_says_and_unset_is_sniffed() {
    let table = ServiceTable::default();
    let spec = json!({"clusterIP": "10.96.0.10", "ports": [
        {"name": "a", "port": 80, "appProtocol": "http"},
        {"name": "b", "port": 81, "appProtocol": "kubernetes.io/h2c"},
        {"name": "c", "port": 82, "appProtocol": "tcp"},
        {"name": "d", "port": 83, "appProtocol": "kubernetes.io/ws"},
        {"name": "e", "port": 84}]});
    table.set_service("shop", "web", Some(&service(spec, json!({}))), &[]);
    let protocols: Vec<Option<AppProtocol>> = (80..=85)
        .map(|port| table.protocol(at(&format!("10.96.0.10:{port}"))))
        .collect();
    use AppProtocol::{Http, Tcp, Unset};
    assert_eq!(
        protocols,
        [
            Some(Http),
            Some(Http),
            Some(Tcp),
            Some(Tcp),
            Some(Unset),
            None
        ]
    );
}

/// Endpoints on two nodes: 10.244.1.x on `edge-1`, 10.244.2.x on `edge-2`.
fn on_two_nodes() -> Vec<EndpointSlice> {
    let on = |ip: &str, node: &str| json!({"addresses": [ip], "nodeName": node});
    vec![slice(
        json!([{"name": "http", "port": 8080}]),
        json!([
            on("10.244.1.2", "edge-1"),
            on("10.244.2.2", "edge-2"),
            on("10.244.2.3", "edge-2")
        ]),
    )]
}

/// Every endpoint `table` gives connections to `front` in a round, sorted.
fn reached(table: &ServiceTable, front: Front) -> Vec<String> {
    let mut seen: Vec<String> = (0..6)
        .filter_map(|_| match table.pick(front, client(1), &[]) {
            Pick::Endpoint(endpoint) => Some(endpoint.to_string()),
            _ => None,
        })
        .collect();
    seen.sort();
    seen.dedup();
    seen
}

#[test]
fn a_local_traffic_policy_keeps_a_nodes_connections_on_its_own_endpoints() {
    let spec = json!({"type": "NodePort", "clusterIP": "10.96.0.10",
        "externalTrafficPolicy": "Local", "internalTrafficPolicy": "Cluster",
        "ports": [{"name": "http", "port": 80, "nodePort": 30080}]});
    let web = service(spec, json!({}));
    let edge_2 = ServiceTable::of_node("edge-2");
    edge_2.set_service("shop", "web", Some(&web), &on_two_nodes());
    assert_eq!(
        reached(&edge_2, Front::NodePort(30080)),
        ["10.244.2.2:8080", "10.244.2.3:8080"]
    );
    let all = ["10.244.1.2:8080", "10.244.2.2:8080", "10.244.2.3:8080"];
    assert_eq!(reached(&edge_2, at("10.96.0.10:80")), all);

    let edge_3 = ServiceTable::of_node("edge-3");
    edge_3.set_service("shop", "web", Some(&web), &on_two_nodes());
    assert_eq!(
        edge_3.pick(Front::NodePort(30080), client(1), &[]),
        Pick::NoEndpoint,
        "a node without endpoints of its own sends nowhere"
    );

    let spec = json!({"type": "ClusterIP", "clusterIP": "10.96.0.10",
        "internalTrafficPolicy": "Local", "ports": [{"name": "http", "port": 80}]});
    let internal = service(spec, json!({}));
    edge_2.set_service("shop", "web", Some(&internal), &on_two_nodes());
    assert_eq!(
        reached(&edge_2, at("10.96.0.10:80")),
        ["10.244.2.2:8080", "10.244.2.3:8080"]
    );
}

#[test]
fn a_load_balancer_address_reaches_every_endpoint_whatever_the_policy() {
    let spec = json!({"type": "LoadBalancer", "clusterIP": "10.96.0.10",
        "externalTrafficPolicy": "Local",
        "ports": [{"name": "http", "port": 80, "nodePort": 30080}]});
    let status = json!({"loadBalancer": {"ingress": [{"ip": "127.0.100.1"}]}});
    let web = service(spec, status);
    let control_plane = ServiceTable::default();
    control_plane.set_service("shop", "web", Some(&web), &on_two_nodes());
    let all = ["10.244.1.2:8080", "10.244.2.2:8080", "10.244.2.3:8080"];
    assert_eq!(reached(&control_plane, at("127.0.100.1:80")), all);
    assert_eq!(
        control_plane.pick(Front::NodePort(30080), client(1), &[]),
        Pick::NoEndpoint,
        "the control plane is no node: no endpoint is local to it"
    );
}

#[test]
fn app_protocol_comes_from_app_protocol_then_from_an_http_port_name() {
    let port = |value: Value| -> ServicePort { serde_json::from_value(value).unwrap() };
    let cases = [
        (
            json!({"port": 80, "appProtocol": "http"}),
            AppProtocol::Http,
        ),
        (
            json!({"port": 80, "name": "http", "appProtocol": "tcp"}),
            AppProtocol::Tcp,
        ),
        (json!({"port": 80, "name": "http"}), AppProtocol::Http),
        (json!({"port": 80, "name": "http-web"}), AppProtocol::Http),
        (json!({"port": 80, "name": "grpc"}), AppProtocol::Unset),
        (json!({"port": 80, "name": "https"}), AppProtocol::Unset),
        (json!({"port": 80, "name": "httpd"}), AppProtocol::Unset),
        (json!({"port": 80, "name": "sniffed"}), AppProtocol::Unset),
        (json!({"port": 80}), AppProtocol::Unset),
    ];
    for (value, expected) in cases {
        assert_eq!(AppProtocol::of(&port(value.clone())), expected, "{value}");
    }
}
