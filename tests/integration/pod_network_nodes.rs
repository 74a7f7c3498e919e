//! The pod network across nodes: a server and two agents as child processes; a pod reaches a
//! pod of the other node by its pod IP (TCP and `wasi:http`) through the node tunnel, and by
//! a Service's DNS name, the API server reads logs of pods on either agent through the
//! agent's endpoint, and that endpoint refuses clients without a certificate of the cluster.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use wasmkube::client::Client;

use crate::pod_network::{with_client, with_echo};
use crate::processes::{Process, free_port, start_agent, start_control_plane};
use crate::support::{PodBuilder, eventually};

const PODS: &str = "/api/v1/namespaces/default/pods";

fn pinned(mut pod: Value, node: &str) -> Value {
    pod["spec"]["nodeName"] = json!(node);
    pod
}

async fn wait_for(
    client: &Client,
    path: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    eventually(Duration::from_secs(40), what, || async {
        let object = client.get(path).await.ok()?;
        check(&object).then_some(object)
    })
    .await
}

/// Waits until the log of `container` of pod `pod`, read through the API server, has `needle`.
async fn logged(client: &Client, pod: &str, container: &str, needle: &str) -> String {
    let path = format!("{PODS}/{pod}/log?container={container}");
    let what = format!("{pod}/{container} to log {needle:?}");
    eventually(Duration::from_secs(40), &what, || async {
        let text = client.get_text(&path).await.ok()?;
        text.contains(needle).then_some(text)
    })
    .await
}

/// A server with its data in `root/s` and agents named `agents`; the processes (stopped when
/// dropped) and an admin client.
async fn start_cluster(root: &Path, agents: &[&str]) -> (Vec<Process>, Client) {
    let port = free_port();
    let url = format!("https://127.0.0.1:{port}");
    let (server, client) = start_control_plane("server", &root.join("s"), port).await;
    let token = std::fs::read_to_string(root.join("s/node-token")).unwrap();
    let mut processes = vec![server];
    for name in agents {
        processes.push(start_agent(&url, &token, name, &root.join(name)));
    }
    (processes, client)
}

#[tokio::test]
async fn a_pod_reaches_a_pod_of_another_node_by_pod_ip_through_the_tunnel() {
    let root = tempfile::tempdir().unwrap();
    let (_processes, client) = start_cluster(root.path(), &["edge-1", "edge-2"]).await;
    let mut blocks = Vec::new();
    for name in ["edge-1", "edge-2"] {
        let node = wait_for(
            &client,
            &format!("/api/v1/nodes/{name}"),
            "a block and an endpoint",
            |n| {
                n["spec"]["podCIDR"].is_string()
                    && n["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"].as_u64() > Some(0)
            },
        )
        .await;
        blocks.push(node["spec"]["podCIDR"].as_str().unwrap().to_string());
    }
    assert_ne!(blocks[0], blocks[1], "each node has a block of its own");

    let web = with_echo(PodBuilder::named("web"))
        .container("tcp", &["serve-tcp", "9000", "far"])
        .build();
    client.create(PODS, &pinned(web, "edge-1")).await.unwrap();
    let web = wait_for(&client, &format!("{PODS}/web"), "web Running", |p| {
        p["status"]["phase"] == "Running"
    })
    .await;
    let ip = web["status"]["podIP"].as_str().unwrap().to_string();
    let http_target = format!("http://{ip}:8080/across");
    let tcp_target = format!("{ip}:9000");
    let every = ["--count", "0", "--every", "300"];
    let http_args: Vec<&str> = every
        .iter()
        .copied()
        .chain([http_target.as_str()])
        .collect();
    let tcp_args: Vec<&str> = every
        .iter()
        .copied()
        .chain([tcp_target.as_str(), "ping"])
        .collect();
    let caller = with_client(PodBuilder::named("caller"), "http", &http_args);
    let caller = with_client(caller, "tcp", &tcp_args).build();
    client
        .create(PODS, &pinned(caller, "edge-2"))
        .await
        .unwrap();
    let caller = wait_for(&client, &format!("{PODS}/caller"), "caller Running", |p| {
        p["status"]["phase"] == "Running"
    })
    .await;
    let caller_ip = caller["status"]["podIP"].as_str().unwrap();

    logged(
        &client,
        "caller",
        "http",
        "200 pod=web version=v1 path=/across",
    )
    .await;
    let seen = format!("far (to {ip}:9000 from {caller_ip}:");
    logged(&client, "caller", "tcp", &seen).await;
    // The server's own pod's log, from the other agent.
    logged(&client, "web", "tcp", "serving on 127.0.0.1:9000").await;
}

#[tokio::test]
async fn a_pod_on_a_joined_agent_reaches_a_service_by_name_whose_endpoint_is_on_another() {
    let root = tempfile::tempdir().unwrap();
    let (_processes, client) = start_cluster(root.path(), &["edge-1", "edge-2"]).await;
    let mut web = with_echo(PodBuilder::named("web")).build();
    web["metadata"]["labels"] = json!({"app": "web"});
    client.create(PODS, &pinned(web, "edge-1")).await.unwrap();
    let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}});
    client
        .create("/api/v1/namespaces/default/services", &service)
        .await
        .unwrap();
    let args = [
        "--count",
        "0",
        "--every",
        "300",
        "http://web.default.svc.cluster.local/",
    ];
    let caller = with_client(PodBuilder::named("caller"), "http", &args).build();
    client
        .create(PODS, &pinned(caller, "edge-2"))
        .await
        .unwrap();
    logged(&client, "caller", "http", "200 pod=web version=v1 path=/").await;
}

#[tokio::test]
async fn a_nodes_endpoint_refuses_a_client_without_a_cluster_certificate() {
    let root = tempfile::tempdir().unwrap();
    let (_processes, client) = start_cluster(root.path(), &["edge-1"]).await;
    let token = std::fs::read_to_string(root.path().join("s/node-token")).unwrap();
    let node = wait_for(&client, "/api/v1/nodes/edge-1", "the endpoint", |n| {
        n["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"].as_u64() > Some(0)
    })
    .await;
    let endpoint_port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        .as_u64()
        .unwrap();
    let ca = std::fs::read_to_string(root.path().join("s/tls/ca.crt")).unwrap();
    // The admin's token is no certificate: the node does not finish the handshake.
    let outsider =
        Client::with_ca(&format!("https://127.0.0.1:{endpoint_port}"), &token, &ca).unwrap();
    let answer = outsider.get("/healthz").await;
    assert!(answer.is_err(), "the node answered an outsider: {answer:?}");
}
