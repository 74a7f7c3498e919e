use super::*;
use serde_json::{Value, json};

fn service(spec: Value) -> Service {
    serde_json::from_value(
        json!({"metadata": {"name": "web", "namespace": "default", "uid": "s-1",
        "labels": {"team": "a"}}, "spec": spec}),
    )
    .unwrap()
}

fn pod(name: &str, ip: &str, ready: bool) -> Value {
    json!({"metadata": {"name": name, "namespace": "default", "uid": format!("u-{name}")},
        "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "x.wasm",
            "ports": [{"name": "http", "containerPort": 8080}]}]},
        "status": {"phase": "Running", "podIP": ip,
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}})
}

/// A ready pod, a pod not ready, and a ready pod being deleted.
fn three_pods() -> Vec<Pod> {
    let mut terminating = pod("c", "10.0.0.3", true);
    terminating["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
    pods(vec![
        pod("a", "10.0.0.1", true),
        pod("b", "10.0.0.2", false),
        terminating,
    ])
}

fn pods(values: Vec<Value>) -> Vec<Pod> {
    values
        .into_iter()
        .map(|v| serde_json::from_value(v).unwrap())
        .collect()
}

fn ips(addresses: &Option<Vec<EndpointAddress>>) -> Vec<&str> {
    addresses.iter().flatten().map(|a| a.ip.as_str()).collect()
}

#[test]
fn ready_pods_are_addresses_and_others_not_ready_addresses_on_the_named_port() {
    let service = service(json!({"ports": [{"name": "web", "port": 80, "targetPort": "http"}]}));
    let members = three_pods();
    let endpoints = endpoints(&service, &members);
    let subsets = endpoints.subsets.unwrap();
    assert_eq!(subsets.len(), 1);
    assert_eq!(ips(&subsets[0].addresses), ["10.0.0.1"]);
    assert_eq!(ips(&subsets[0].not_ready_addresses), ["10.0.0.2"]);
    let port = &subsets[0].ports.as_ref().unwrap()[0];
    assert_eq!((port.name.as_deref(), port.port), (Some("web"), 8080));
    let address = &subsets[0].addresses.as_ref().unwrap()[0];
    assert_eq!(address.node_name.as_deref(), Some("node-1"));
    assert_eq!(
        address.target_ref.as_ref().unwrap().uid.as_deref(),
        Some("u-a")
    );
    assert_eq!(endpoints.metadata.labels.unwrap()["team"], "a");
}

#[test]
fn publishing_not_ready_addresses_makes_every_pod_an_address() {
    let service = service(json!({"publishNotReadyAddresses": true, "ports": [{"port": 80}]}));
    let members = pods(vec![
        pod("a", "10.0.0.1", true),
        pod("b", "10.0.0.2", false),
    ]);
    let subsets = endpoints(&service, &members).subsets.unwrap();
    assert_eq!(ips(&subsets[0].addresses), ["10.0.0.1", "10.0.0.2"]);
    assert!(subsets[0].not_ready_addresses.is_none());
}

#[test]
fn slices_mark_terminating_pods_and_carry_the_service_labels() {
    let service = service(json!({"ports": [{"name": "web", "port": 80, "targetPort": 8080}]}));
    let members = three_pods();
    let slices = slices(&service, &members);
    assert_eq!(slices.len(), 1);
    let slice = &slices[0];
    let labels = slice.metadata.labels.as_ref().unwrap();
    assert_eq!(labels[SERVICE_NAME_LABEL], "web");
    assert_eq!(labels[MANAGED_BY_LABEL], MANAGER);
    let conditions: Vec<(bool, bool, bool)> = slice
        .endpoints
        .iter()
        .flatten()
        .map(|e| {
            let c = e.conditions.as_ref().unwrap();
            (c.ready.unwrap(), c.serving.unwrap(), c.terminating.unwrap())
        })
        .collect();
    assert_eq!(
        conditions,
        [
            (true, true, false),
            (false, false, false),
            (false, true, true)
        ]
    );
    assert_eq!(slice.ports.as_ref().unwrap()[0].port, Some(8080));
    assert!(
        slice.metadata.owner_references.as_ref().unwrap()[0]
            .controller
            .unwrap()
    );
}

#[test]
fn a_service_with_no_pods_has_one_empty_slice_and_no_subsets() {
    let service = service(json!({"ports": [{"port": 80}]}));
    assert!(endpoints(&service, &[]).subsets.is_none());
    let slices = slices(&service, &[]);
    assert_eq!(slices.len(), 1);
    assert!(slices[0].endpoints.as_ref().unwrap().is_empty());
}

#[test]
fn pods_lacking_a_named_port_or_an_ip_or_that_finished_are_left_out_of_it() {
    let service = service(json!({"ports": [
        {"name": "web", "port": 80, "targetPort": "http"},
        {"name": "metrics", "port": 9090, "targetPort": "metrics"},
    ]}));
    let mut finished = pod("b", "10.0.0.2", false);
    finished["status"]["phase"] = json!("Succeeded");
    let mut portless = pod("p", "10.0.0.4", true);
    portless["spec"]["containers"][0]["ports"] = json!([]);
    let members = pods(vec![
        pod("a", "10.0.0.1", true),
        pod("n", "", true),
        finished,
        portless,
    ]);
    let subsets = endpoints(&service, &members).subsets.unwrap();
    assert_eq!(subsets.len(), 1);
    assert_eq!(ips(&subsets[0].addresses), ["10.0.0.1"]);
    let ports: Vec<_> = subsets[0]
        .ports
        .iter()
        .flatten()
        .map(|p| p.name.clone().unwrap())
        .collect();
    assert_eq!(ports, ["web"]);
}

#[test]
fn a_pod_whose_subdomain_is_the_service_gets_its_hostname() {
    let service = service(json!({"clusterIP": "None", "ports": [{"port": 80}]}));
    let mut named = pod("a", "10.0.0.1", true);
    named["spec"]["hostname"] = json!("db-0");
    named["spec"]["subdomain"] = json!("web");
    let slices = slices(&service, &pods(vec![named, pod("b", "10.0.0.2", true)]));
    let hostnames: Vec<Option<String>> = slices[0]
        .endpoints
        .iter()
        .flatten()
        .map(|e| e.hostname.clone())
        .collect();
    assert_eq!(hostnames, [Some("db-0".to_string()), None]);
}
