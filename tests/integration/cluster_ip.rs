//! Services inside the cluster: the proxy's table follows Services and EndpointSlices, and
//! pods reach a Service's ready endpoints by its cluster IP and DNS names, in turn.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use wasmkube::api::Api;
use wasmkube::api::kinds::{DEPLOYMENTS, ENDPOINT_SLICES, PODS, SERVICES};
use wasmkube::proxy::{Front, Pick, ServiceTable};
use wasmkube::testing::Cluster;

use crate::pod_network::{with_client, with_echo};
use crate::support::{PodBuilder, eventually};

/// Pods start in well under a second; this leaves room for a loaded machine.
const CONVERGE: Duration = Duration::from_secs(60);

/// A Deployment of `replicas` http-echo pods labelled `app: web`.
pub fn echo_deployment(replicas: i64) -> Value {
    let pod = with_echo(PodBuilder::named("template")).build();
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod["spec"]},
        },
    })
}

/// A Service in front of `app: web` pods' `http` port, with `spec` merged in.
pub fn web_service(spec: Value) -> Value {
    let mut service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}});
    for (field, value) in spec.as_object().into_iter().flatten() {
        service["spec"][field] = value.clone();
    }
    service
}

/// The names of the running `app: web` pods, once there are `count` of them.
pub async fn web_pods(api: &Arc<Api>, count: usize) -> Vec<String> {
    eventually(CONVERGE, &format!("{count} running web pods"), || async {
        let pods = api.list(&PODS, Some("default"), &Default::default()).ok()?;
        let names: Vec<String> = pods["items"]
            .as_array()?
            .iter()
            .filter(|p| p["metadata"]["labels"]["app"] == "web")
            .filter(|p| p["status"]["phase"] == "Running")
            .filter_map(|p| Some(p["metadata"]["name"].as_str()?.to_string()))
            .collect();
        (names.len() == count).then_some(names)
    })
    .await
}

/// The log of the client pod's `container` so far; `None` before it runs.
async fn logs(api: &Arc<Api>, container: &str) -> Option<String> {
    let options = wasmkube::api::logs::LogOptions {
        container: Some(container.into()),
        ..Default::default()
    };
    let mut chunks = api.pod_logs("default", "client", &options).await.ok()?;
    let mut text = String::new();
    while let Some(chunk) = chunks.recv().await {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    Some(text)
}

fn cluster_ip(service: &Value) -> IpAddr {
    service["spec"]["clusterIP"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn the_table_follows_a_selectorless_service_and_the_slice_its_user_writes() {
    let cluster = Cluster::start().await.unwrap();
    let api = cluster.api();
    let table = Arc::new(ServiceTable::default());
    let shutdown = CancellationToken::new();
    tokio::spawn(table.clone().follow(api.clone(), shutdown.clone()));
    let spec = json!({"ports": [{"name": "pg", "port": 5432}]});
    let service = json!({"metadata": {"name": "db"}, "spec": spec});
    let service = api.create(&SERVICES, Some("default"), service).unwrap();
    let front = Front::Address(SocketAddr::new(cluster_ip(&service), 5432));
    let client: IpAddr = [10, 244, 0, 9].into();
    eventually(CONVERGE, "the service without endpoints", || async {
        (table.pick(front, client, &[]) == Pick::NoEndpoint).then_some(())
    })
    .await;
    let slice = json!({"metadata": {"name": "db-1", "labels": {"kubernetes.io/service-name": "db"}},
        "addressType": "IPv4", "ports": [{"name": "pg", "port": 15432}],
        "endpoints": [{"addresses": ["192.0.2.10"], "conditions": {"ready": true}}]});
    api.create(&ENDPOINT_SLICES, Some("default"), slice)
        .unwrap();
    let endpoint: SocketAddr = "192.0.2.10:15432".parse().unwrap();
    eventually(CONVERGE, "the user's endpoint", || async {
        (table.pick(front, client, &[]) == Pick::Endpoint(endpoint)).then_some(())
    })
    .await;
    api.delete(&SERVICES, Some("default"), "db", &Default::default())
        .unwrap();
    eventually(CONVERGE, "the service gone from the table", || async {
        (table.pick(front, client, &[]) == Pick::NotAService).then_some(())
    })
    .await;
    shutdown.cancel();
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_pod_reaches_all_three_replicas_by_the_services_names_and_its_cluster_ip() {
    let cluster = Cluster::start().await.unwrap();
    let api = cluster.api();
    api.create(&DEPLOYMENTS, Some("default"), echo_deployment(3))
        .unwrap();
    let service = api
        .create(&SERVICES, Some("default"), web_service(json!({})))
        .unwrap();
    let names = web_pods(api, 3).await;
    let by_ip = format!("http://{}:80/", cluster_ip(&service));
    let targets = [
        ("short", "http://web:80/"),
        ("namespaced", "http://web.default:80/"),
        ("full", "http://web.default.svc.cluster.local:80/"),
        ("ip", by_ip.as_str()),
    ];
    let mut client = PodBuilder::named("client").restart_policy("Never");
    for (container, target) in targets {
        // Retries until the endpoints are in: the pods may be Running before they are ready.
        let args = ["--count", "0", "--every", "50", target];
        client = with_client(client, container, &args);
    }
    api.create(&PODS, Some("default"), client.build()).unwrap();
    for (container, _) in targets {
        let what = format!("{container}: answers of all three replicas");
        eventually(CONVERGE, &what, || async {
            let log = logs(api, container).await?;
            names
                .iter()
                .all(|name| log.contains(&format!("200 pod={name} ")))
                .then_some(())
        })
        .await;
    }
    cluster.shutdown().await;
}
