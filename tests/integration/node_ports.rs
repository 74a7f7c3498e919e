//! Node ports and load balancers across nodes: a `server` and two agents as child processes,
//! each agent at an address of its own. A NodePort Service answers on every node's address,
//! `externalTrafficPolicy: Local` keeps a node's traffic on its own endpoints, the `server`
//! (which has no node) serves a LoadBalancer through the nodes' tunnels, and deleting the
//! Service closes every listener.

use std::time::Duration;

use hyper_util::client::legacy::Client as HttpClientBuilder;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use wasmkube::client::Client;

use crate::load_balancer::{HttpClient, get};
use crate::pod_network::with_echo;
use crate::processes::{Process, free_port, start_agent_at, start_control_plane_with};
use crate::support::{PodBuilder, eventually};

const PODS: &str = "/api/v1/namespaces/default/pods";
const SERVICES: &str = "/api/v1/namespaces/default/services";
/// The agents' addresses and the server's load balancer pool: in 127.1.0.0/16, which no
/// other test uses (in-process clusters take 127.0.x.x, pods 127.112.x.x and up).
const EDGE_1: &str = "127.1.61.1";
const EDGE_2: &str = "127.1.61.2";
const LB_POOL: &str = "127.1.62.0/28";
const CONVERGE: Duration = Duration::from_secs(40);

/// The body of a 200 at `url`, once one comes.
async fn answered(client: &HttpClient, url: &str) -> String {
    eventually(CONVERGE, &format!("a 200 at {url}"), || async {
        match get(client, url).await? {
            (200, body) => Some(body),
            _ => None,
        }
    })
    .await
}

async fn patch_service(client: &Client, patch: &Value) {
    client
        .patch(&format!("{SERVICES}/web"), patch)
        .await
        .unwrap();
}

#[tokio::test]
async fn node_ports_answer_on_every_node_local_keeps_to_its_own_and_the_server_balances() {
    let root = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("https://127.0.0.1:{port}");
    let (server, client) = start_control_plane_with(
        "server",
        &root.path().join("s"),
        port,
        &["--lb-pool", LB_POOL],
    )
    .await;
    let token = std::fs::read_to_string(root.path().join("s/node-token")).unwrap();
    let _processes: Vec<Process> = vec![
        server,
        start_agent_at(&url, &token, "edge-1", EDGE_1, &root.path().join("e1")),
        start_agent_at(&url, &token, "edge-2", EDGE_2, &root.path().join("e2")),
    ];
    let mut web = with_echo(PodBuilder::named("web")).build();
    web["metadata"]["labels"] = json!({"app": "web"});
    web["spec"]["nodeName"] = json!("edge-1");
    client.create(PODS, &web).await.unwrap();
    let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"type": "NodePort", "selector": {"app": "web"},
                 "ports": [{"port": 80, "targetPort": 8080}]}});
    let service = client.create(SERVICES, &service).await.unwrap();
    let node_port = service["spec"]["ports"][0]["nodePort"].as_u64().unwrap();
    let http: HttpClient = HttpClientBuilder::builder(TokioExecutor::new()).build_http();
    let on = |node: &str| format!("http://{node}:{node_port}/");

    // Each node's port, the one without the pod through the tunnel to the other.
    for node in [EDGE_1, EDGE_2] {
        let body = answered(&http, &on(node)).await;
        assert!(body.starts_with("pod=web "), "{node}: {body}");
    }

    patch_service(
        &client,
        &json!({"spec": {"externalTrafficPolicy": "Local"}}),
    )
    .await;
    let body = eventually(CONVERGE, "a 503 on the node without endpoints", || async {
        match get(&http, &on(EDGE_2)).await? {
            (503, body) => Some(body),
            _ => None,
        }
    })
    .await;
    assert!(body.contains("default/web has no ready endpoint"), "{body}");
    let body = answered(&http, &on(EDGE_1)).await;
    assert!(
        body.starts_with("pod=web "),
        "the node with the pod: {body}"
    );

    // The server has no node and no pod: its load balancer reaches the pod on edge-1.
    patch_service(&client, &json!({"spec": {"type": "LoadBalancer"}})).await;
    let ingress = eventually(CONVERGE, "an ingress address", || async {
        let service = client.get(&format!("{SERVICES}/web")).await.ok()?;
        let ip = service["status"]["loadBalancer"]["ingress"][0]["ip"].as_str()?;
        Some(ip.to_string())
    })
    .await;
    assert!(
        ingress.starts_with("127.1.62."),
        "from --lb-pool: {ingress}"
    );
    let body = answered(&http, &format!("http://{ingress}:80/")).await;
    assert!(body.starts_with("pod=web "), "{body}");

    client
        .delete(&format!("{SERVICES}/web"), &Default::default())
        .await
        .unwrap();
    for url in [on(EDGE_1), on(EDGE_2), format!("http://{ingress}:80/")] {
        let fresh: HttpClient = HttpClientBuilder::builder(TokioExecutor::new()).build_http();
        eventually(CONVERGE, &format!("{url} closed"), || async {
            get(&fresh, &url).await.is_none().then_some(())
        })
        .await;
    }
}
