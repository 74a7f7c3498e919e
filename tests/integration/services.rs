//! Services on a real cluster: cluster IPs and node ports allocated over HTTPS without
//! collisions, the `kubernetes` Service, and Endpoints and EndpointSlices following the pods.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};
use wasmkube::api::kinds::{ENDPOINT_SLICES, ENDPOINTS, SERVICES};
use wasmkube::api::selectors::LabelSelector;
use wasmkube::api::service_network::ServiceNetwork;
use wasmkube::api::{DeleteOptions, ListOptions};
use wasmkube::client::Client;
use wasmkube::testing::Cluster;

use crate::kubectl::{kubectl, row};
use crate::support::{PodBuilder, eventually};

const SERVICES_PATH: &str = "/api/v1/namespaces/default/services";
const LIMIT: Duration = Duration::from_secs(30);

fn service(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec})
}

/// The message of a refused create.
async fn refusal(client: &Client, object: &Value) -> String {
    let error = client.create(SERVICES_PATH, object).await.unwrap_err();
    assert_eq!(error.code(), Some(422), "{error}");
    error.to_string()
}

#[tokio::test]
async fn concurrent_creates_get_distinct_cluster_ips_and_taken_ones_are_refused_until_released() {
    let cluster = Cluster::start().await.unwrap();
    let client = cluster.client();
    let creates = (0..24).map(|i| {
        let client = client.clone();
        tokio::spawn(async move {
            let object = service(&format!("s{i}"), json!({"ports": [{"port": 80}]}));
            client.create(SERVICES_PATH, &object).await.unwrap()
        })
    });
    let mut ips = HashSet::new();
    for created in futures::future::join_all(creates).await {
        let ip = created.unwrap()["spec"]["clusterIP"]
            .as_str()
            .unwrap()
            .to_string();
        let parsed: std::net::Ipv4Addr = ip.parse().unwrap();
        assert!(
            ServiceNetwork::default()
                .cidr
                .index_of(parsed)
                .is_some_and(|i| i > 0),
            "{ip}"
        );
        assert!(ips.insert(ip.clone()), "{ip} given twice");
    }
    let taken = ips.iter().next().unwrap().clone();
    let again = service(
        "again",
        json!({"clusterIP": taken, "ports": [{"port": 80}]}),
    );
    let message = refusal(&client, &again).await;
    assert!(message.contains(&format!("spec.clusterIPs: Invalid value: []string{{\"{taken}\"}}: failed to allocate IP {taken}: provided IP is already allocated")), "{message}");
    let outside = service(
        "outside",
        json!({"clusterIP": "192.168.1.1", "ports": [{"port": 80}]}),
    );
    let message = refusal(&client, &outside).await;
    assert!(
        message.contains("is not in the valid range. The range of valid IPs is 10.96.0.0/12"),
        "{message}"
    );

    let owner = client
        .list(SERVICES_PATH, &Default::default())
        .await
        .unwrap()["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["spec"]["clusterIP"] == taken.as_str())
        .unwrap()["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    client
        .delete(&format!("{SERVICES_PATH}/{owner}"), &Default::default())
        .await
        .unwrap();
    let reused = client.create(SERVICES_PATH, &again).await.unwrap();
    assert_eq!(
        reused["spec"]["clusterIP"],
        taken.as_str(),
        "a deleted Service's IP is free again"
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn node_ports_are_allocated_in_range_and_a_taken_one_is_refused() {
    let cluster = Cluster::start().await.unwrap();
    let client = cluster.client();
    let first = service(
        "first",
        json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}),
    );
    client.create(SERVICES_PATH, &first).await.unwrap();
    let second = service(
        "second",
        json!({"type": "LoadBalancer", "ports": [{"name": "a", "port": 80}, {"name": "b", "port": 81}]}),
    );
    let created = client.create(SERVICES_PATH, &second).await.unwrap();
    let ports: Vec<i64> = created["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["nodePort"].as_i64().unwrap())
        .collect();
    assert!(
        ports
            .iter()
            .all(|p| (30000..=32767).contains(p) && *p != 30080),
        "{ports:?}"
    );
    assert_ne!(ports[0], ports[1]);
    let clash = service(
        "clash",
        json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}),
    );
    let message = refusal(&client, &clash).await;
    assert!(
        message.contains(
            "spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated"
        ),
        "{message}"
    );
    let low = service(
        "low",
        json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 80}]}),
    );
    let message = refusal(&client, &low).await;
    assert!(message.contains("spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767"), "{message}");
    cluster.shutdown().await;
}

#[tokio::test]
async fn the_kubernetes_service_takes_the_first_address_of_the_configured_range() {
    let cluster = Cluster::start_with(|config| {
        config.service_network.cidr = "10.100.0.0/24".parse().unwrap();
    })
    .await
    .unwrap();
    let api = cluster.api();
    let kubernetes = api.get(&SERVICES, Some("default"), "kubernetes").unwrap();
    assert_eq!(kubernetes["spec"]["clusterIP"], "10.100.0.1");
    assert_eq!(kubernetes["spec"]["ports"][0]["port"], 443);
    let other = api
        .create(
            &SERVICES,
            Some("default"),
            service("web", json!({"ports": [{"port": 80}]})),
        )
        .unwrap();
    let ip = other["spec"]["clusterIP"].as_str().unwrap();
    assert!(ip.starts_with("10.100.0.") && ip != "10.100.0.1", "{ip}");
    cluster.shutdown().await;
}

/// The addresses of the Endpoints `name`, ready and not.
fn endpoint_addresses(endpoints: &Value) -> (usize, usize) {
    let count = |field: &str| {
        endpoints["subsets"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| s[field].as_array().map_or(0, Vec::len))
            .sum()
    };
    (count("addresses"), count("notReadyAddresses"))
}

fn web_pod(name: &str) -> Value {
    let mut pod = PodBuilder::named(name)
        .container("web", &["sleep", "600000"])
        .with("ports", json!([{"name": "http", "containerPort": 8080}]))
        .build();
    pod["metadata"]["labels"] = json!({"app": "web"});
    pod
}

#[tokio::test]
async fn endpoints_and_slices_follow_ready_pods_and_selectorless_services_keep_their_own() {
    let cluster = Cluster::start().await.unwrap();
    let api = cluster.api().clone();
    let ns = Some("default");
    let spec = json!({"selector": {"app": "web"}, "ports": [{"name": "web", "port": 80, "targetPort": "http"}]});
    api.create(&SERVICES, ns, service("web", spec)).unwrap();
    let manual = json!({"ports": [{"port": 5432}]});
    api.create(&SERVICES, ns, service("db", manual)).unwrap();
    let own = json!({"metadata": {"name": "db"}, "subsets": [{"addresses": [{"ip": "192.0.2.10"}], "ports": [{"port": 5432}]}]});
    let own = api.create(&ENDPOINTS, ns, own).unwrap();
    for name in ["web-1", "web-2"] {
        api.create(&wasmkube::api::kinds::PODS, ns, web_pod(name))
            .unwrap();
    }
    eventually(LIMIT, "both pods ready in the Endpoints", || async {
        let endpoints = api.get(&ENDPOINTS, ns, "web").ok()?;
        (endpoint_addresses(&endpoints) == (2, 0)).then_some(())
    })
    .await;
    let endpoints = api.get(&ENDPOINTS, ns, "web").unwrap();
    assert_eq!(
        endpoints["subsets"][0]["ports"][0]["port"], 8080,
        "{endpoints}"
    );
    let options = ListOptions {
        labels: LabelSelector::parse("kubernetes.io/service-name=web").unwrap(),
        ..ListOptions::default()
    };
    let slices = api.list(&ENDPOINT_SLICES, ns, &options).unwrap();
    let slice = &slices["items"][0];
    assert_eq!(
        slice["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"],
        "endpointslice-controller.k8s.io"
    );
    assert_eq!(slice["endpoints"].as_array().unwrap().len(), 2, "{slice}");
    assert_eq!(slice["endpoints"][0]["conditions"]["ready"], true);
    assert_eq!(slice["endpoints"][0]["targetRef"]["kind"], "Pod");

    api.delete(
        &wasmkube::api::kinds::PODS,
        ns,
        "web-1",
        &DeleteOptions::default(),
    )
    .unwrap();
    eventually(LIMIT, "the deleted pod leaves the Endpoints", || async {
        let endpoints = api.get(&ENDPOINTS, ns, "web").ok()?;
        (endpoint_addresses(&endpoints) == (1, 0)).then_some(())
    })
    .await;
    let kept = api.get(&ENDPOINTS, ns, "db").unwrap();
    assert_eq!(
        kept["subsets"], own["subsets"],
        "a selectorless Service's Endpoints are its user's"
    );

    api.delete(&SERVICES, ns, "web", &DeleteOptions::default())
        .unwrap();
    eventually(LIMIT, "the Service's Endpoints and slices gone", || async {
        let endpoints_gone = api.get(&ENDPOINTS, ns, "web").is_err();
        let slices = api.list(&ENDPOINT_SLICES, ns, &options).ok()?;
        (endpoints_gone && slices["items"].as_array()?.is_empty()).then_some(())
    })
    .await;
    cluster.shutdown().await;
}

#[tokio::test]
async fn kubectl_expose_creates_a_service_that_get_and_describe_show() {
    let cluster = Cluster::start().await.unwrap();
    let created = kubectl(
        &cluster,
        &["create", "deployment", "web", "--image=hello:v1"],
        None,
    )
    .await;
    assert!(created.success, "{}", created.stderr);
    let exposed = kubectl(
        &cluster,
        &[
            "expose",
            "deployment",
            "web",
            "--port=80",
            "--target-port=8080",
        ],
        None,
    )
    .await;
    assert!(exposed.success, "{}", exposed.stderr);
    assert_eq!(exposed.stdout.trim(), "service/web exposed");
    let stored = cluster
        .api()
        .get(&SERVICES, Some("default"), "web")
        .unwrap();
    assert_eq!(stored["spec"]["selector"], json!({"app": "web"}));
    assert_eq!(stored["spec"]["ports"][0]["targetPort"], 8080);
    let ip = stored["spec"]["clusterIP"].as_str().unwrap();

    let table = kubectl(&cluster, &["get", "svc", "-o", "wide"], None).await;
    assert!(table.success, "{}", table.stderr);
    let header = row(&table.stdout, "NAME").unwrap();
    assert_eq!(
        header,
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE",
            "SELECTOR"
        ]
    );
    let cells = row(&table.stdout, "web").unwrap();
    assert_eq!(cells[..5], ["web", "ClusterIP", ip, "<none>", "80/TCP"]);
    assert_eq!(cells[6], "app=web");
    assert!(table.stdout.contains("kubernetes "), "{}", table.stdout);

    let described = kubectl(&cluster, &["describe", "svc", "web"], None).await;
    assert!(described.success, "{}", described.stderr);
    for line in [
        "Name:",
        "Selector:",
        "Type:",
        "IP Family Policy:",
        "IP:",
        "TargetPort:",
        "Endpoints:",
    ] {
        assert!(
            described.stdout.contains(line),
            "{line} missing from:\n{}",
            described.stdout
        );
    }
    assert!(described.stdout.contains(ip), "{}", described.stdout);
    for resource in ["endpoints", "endpointslices"] {
        let listed = kubectl(&cluster, &["get", resource], None).await;
        assert!(listed.success, "{}", listed.stderr);
        assert!(listed.stdout.contains("web"), "{}", listed.stdout);
    }
    cluster.shutdown().await;
}
