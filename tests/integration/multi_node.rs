//! Several nodes: agents join over the network with the node token, keep their pods through
//! an API server outage and resync; a dead node's pods are replaced elsewhere.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;
use wasmkube::client::{Client, DeleteParams, ListParams};

use crate::census::{is_ready, live_pods};
use crate::processes::{free_port, start_agent, start_control_plane, volume_path};
use crate::support::{PodBuilder, eventually, run_command};

const PODS: &str = "/api/v1/namespaces/default/pods";

/// A pod pinned to `node` that appends a line to `/data/ticks` every 100 ms.
fn ticker(name: &str, node: &str) -> Value {
    let mut pod = PodBuilder::named(name)
        .container("t", &["append-every", "100", "/data/ticks", "tick"])
        .with(
            "volumeMounts",
            json!([{"name": "data", "mountPath": "/data"}]),
        )
        .empty_dir("data")
        .build();
    pod["spec"]["nodeName"] = json!(node);
    pod
}

async fn wait_nodes_ready(client: &Client, names: &[&str]) {
    eventually(Duration::from_secs(30), "the nodes to be Ready", || async {
        for name in names {
            let node = client.get(&format!("/api/v1/nodes/{name}")).await.ok()?;
            is_ready(&node).then_some(())?;
        }
        Some(())
    })
    .await
}

async fn wait_running(client: &Client, name: &str) -> Value {
    eventually(
        Duration::from_secs(30),
        &format!("{name} Running"),
        || async {
            let pod = client.get(&format!("{PODS}/{name}")).await.ok()?;
            let running = pod["status"]["containerStatuses"][0]["state"]["running"].is_object();
            running.then_some(pod)
        },
    )
    .await
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

async fn lease_renewed_after(
    client: &Client,
    node: &str,
    after: chrono::DateTime<chrono::Utc>,
) -> bool {
    let path = format!("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{node}");
    let Ok(lease) = client.get(&path).await else {
        return false;
    };
    lease["spec"]["renewTime"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .is_some_and(|t| t > after)
}

#[tokio::test]
async fn pods_keep_running_through_an_api_server_outage_and_agents_resync_when_it_returns() {
    let root = tempfile::tempdir().unwrap();
    let (server_dir, a1_dir, a2_dir) = (
        root.path().join("s"),
        root.path().join("a1"),
        root.path().join("a2"),
    );
    let port = free_port();
    let url = format!("https://127.0.0.1:{port}");
    let (mut server, client) = start_control_plane("server", &server_dir, port).await;
    let token = std::fs::read_to_string(server_dir.join("node-token")).unwrap();
    let _edge1 = start_agent(&url, &token, "edge-1", &a1_dir);
    let edge2 = start_agent(&url, &token, "edge-2", &a2_dir);
    wait_nodes_ready(&client, &["edge-1", "edge-2"]).await;
    client
        .create(PODS, &ticker("steady", "edge-1"))
        .await
        .unwrap();
    client
        .create(PODS, &ticker("doomed", "edge-2"))
        .await
        .unwrap();
    let steady = wait_running(&client, "steady").await;
    let doomed = wait_running(&client, "doomed").await;
    let started_at =
        steady["status"]["containerStatuses"][0]["state"]["running"]["startedAt"].clone();
    let ticks =
        volume_path(&a1_dir, steady["metadata"]["uid"].as_str().unwrap(), "data").join("ticks");
    let doomed_dir = a2_dir
        .join("pods")
        .join(doomed["metadata"]["uid"].as_str().unwrap());

    // edge-2 is frozen through the outage so it cannot see what happens right after it.
    edge2.freeze();
    server.kill_9();
    let before = file_len(&ticks);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(
        file_len(&ticks) > before,
        "steady kept running during the outage"
    );

    let (_server, client) = start_control_plane("server", &server_dir, port).await;
    let returned = chrono::Utc::now();
    let back = Instant::now();
    // Deleted while edge-2 could not hear of it.
    let force = DeleteParams {
        grace_period_seconds: Some(0),
        ..Default::default()
    };
    client
        .delete(&format!("{PODS}/doomed"), &force)
        .await
        .unwrap();
    edge2.thaw();

    eventually(Duration::from_secs(10), "both agents to resync", || async {
        let renewed = lease_renewed_after(&client, "edge-1", returned).await
            && lease_renewed_after(&client, "edge-2", returned).await;
        renewed.then_some(())
    })
    .await;
    eventually(
        Duration::from_secs(10),
        "the deleted pod to be stopped",
        || async { (!doomed_dir.exists()).then_some(()) },
    )
    .await;
    let resynced = back.elapsed();
    let steady = client.get(&format!("{PODS}/steady")).await.unwrap();
    let status = &steady["status"]["containerStatuses"][0];
    assert_eq!(status["restartCount"], 0, "no restart: {status}");
    assert_eq!(
        status["state"]["running"]["startedAt"], started_at,
        "same container instance"
    );
    assert_eq!(steady["status"]["phase"], "Running");
    let pods = client.list(PODS, &ListParams::default()).await.unwrap();
    assert_eq!(pods["items"].as_array().unwrap().len(), 1, "{pods}");
    eprintln!(
        "agents resynced {:.1}s after the API server returned",
        resynced.as_secs_f64()
    );
}

#[tokio::test]
async fn an_agent_with_a_malformed_or_foreign_token_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let port = free_port();
    let (_server, _client) = start_control_plane("server", &root.path().join("s"), port).await;
    let url = format!("https://127.0.0.1:{port}");
    let agent = |token: &str| {
        let dir = root.path().join("a").to_str().unwrap().to_string();
        let token = token.to_string();
        let url = url.clone();
        async move {
            let command = tokio::process::Command::new(env!("CARGO_BIN_EXE_wasmkube"));
            let args = [
                "agent",
                "--data-dir",
                &dir,
                "--server",
                &url,
                "--token",
                &token,
                "--name",
                "x",
            ];
            run_command(command, &args, None).await
        }
    };
    let malformed = agent("secret").await;
    assert!(!malformed.success);
    assert!(
        malformed.stderr.contains("node token is malformed"),
        "{}",
        malformed.stderr
    );
    let foreign = agent(&format!("K10{}::node:secret", "0".repeat(64))).await;
    assert!(!foreign.success);
    assert!(
        foreign.stderr.contains("is not the one the token names"),
        "{}",
        foreign.stderr
    );
}

#[tokio::test]
async fn a_killed_agent_turns_not_ready_and_its_pods_are_replaced_on_the_other_nodes() {
    let cluster = wasmkube::testing::Cluster::start_with(|c| c.embedded_node = false)
        .await
        .unwrap();
    let root = tempfile::tempdir().unwrap();
    let (url, token) = (cluster.api_url(), cluster.node_token());
    let mut agents: Vec<_> = ["edge-1", "edge-2", "edge-3"]
        .iter()
        .map(|name| start_agent(&url, &token, name, &root.path().join(name)))
        .collect();
    let client = cluster.client();
    wait_nodes_ready(&client, &["edge-1", "edge-2", "edge-3"]).await;
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 6, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": PodBuilder::named("x").container("c", &["sleep", "600000"]).build()["spec"]}},
    });
    client
        .create("/apis/apps/v1/namespaces/default/deployments", &deployment)
        .await
        .unwrap();
    let api = cluster.api().clone();
    eventually(
        Duration::from_secs(30),
        "6 pods Running, 2 per node",
        || async {
            let pods = live_pods(&api);
            let per_node = |n: &str| pods.iter().filter(|(node, run)| node == n && *run).count();
            let spread = ["edge-1", "edge-2", "edge-3"]
                .iter()
                .all(|n| per_node(n) == 2);
            (pods.len() == 6 && spread).then_some(())
        },
    )
    .await;

    agents[2].kill_9();
    let killed = Instant::now();
    let (mut not_ready_after, mut most_pods) = (None, 0);
    let replaced_after = eventually(Duration::from_secs(30), "replacements Running", || {
        let pods = live_pods(&api);
        most_pods = most_pods.max(pods.len());
        let node = api
            .get(&wasmkube::api::kinds::NODES, None, "edge-3")
            .unwrap();
        if !is_ready(&node) && not_ready_after.is_none() {
            not_ready_after = Some(killed.elapsed());
        }
        let survivors = pods.iter().filter(|(n, run)| n != "edge-3" && *run).count();
        std::future::ready((survivors == 6 && pods.len() == 6).then(|| killed.elapsed()))
    })
    .await;
    let not_ready_after = not_ready_after.expect("edge-3 turned NotReady");
    assert!(
        not_ready_after <= Duration::from_secs(15),
        "NotReady after {not_ready_after:?}"
    );
    assert!(
        most_pods <= 6 + 2,
        "at most replicas + maxSurge (2) pods at once, saw {most_pods}"
    );
    eprintln!(
        "node killed: NotReady after {:.1}s, 6/6 Running elsewhere after {:.1}s",
        not_ready_after.as_secs_f64(),
        replaced_after.as_secs_f64()
    );
    drop(agents);
    cluster.shutdown().await;
}

#[tokio::test]
async fn pods_of_a_deleted_node_are_deleted_after_the_quarantine() {
    let cluster = wasmkube::testing::Cluster::start_with(|c| {
        c.node_lifecycle.orphan_quarantine = Duration::from_secs(1);
    })
    .await
    .unwrap();
    let client = cluster.client();
    let mut ghost = PodBuilder::named("ghost")
        .container("c", &["sleep", "600000"])
        .build();
    ghost["spec"]["nodeName"] = json!("deleted-node");
    client.create(PODS, &ghost).await.unwrap();
    client
        .create(
            PODS,
            &PodBuilder::named("kept")
                .container("c", &["sleep", "600000"])
                .build(),
        )
        .await
        .unwrap();
    eventually(
        Duration::from_secs(15),
        "the orphan to be deleted",
        || async {
            client
                .get(&format!("{PODS}/ghost"))
                .await
                .is_err()
                .then_some(())
        },
    )
    .await;
    wait_running(&client, "kept").await;
    cluster.shutdown().await;
}
