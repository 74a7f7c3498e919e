//! Crash safety: `kill -9` of a real `wasmkube up` loses nothing acknowledged, and pods come back.

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use wasmkube::client::{Client, ListParams};

use crate::processes::{Process, free_port, start_control_plane};
use crate::support::{PodBuilder, eventually};

const PODS: &str = "/api/v1/namespaces/default/pods";

struct Server {
    process: Process,
    client: Client,
}

async fn start_server(data_dir: &Path, port: u16) -> Server {
    let (process, client) = start_control_plane("up", data_dir, port).await;
    Server { process, client }
}

/// Waits until the survivor pod runs after `restarts` restarts (one per node restart).
async fn started_and_restarts(client: &Client, restarts: i64) {
    eventually(Duration::from_secs(20), "survivor Running", || async {
        let pod = client.get(&format!("{PODS}/survivor")).await.ok()?;
        let status = &pod["status"]["containerStatuses"][0];
        let running = status["state"]["running"].is_object() && pod["status"]["phase"] == "Running";
        (running && status["restartCount"] == restarts).then_some(())
    })
    .await
}

#[tokio::test]
async fn kill_9_during_writes_loses_no_acknowledged_object_and_pods_come_back() {
    let data_dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = start_server(data_dir.path(), port).await;
    let runner = PodBuilder::named("survivor")
        .container("c", &["sleep", "600000"])
        .build();
    server.client.create(PODS, &runner).await.unwrap();
    started_and_restarts(&server.client, 0).await;

    // Write in the background, and kill -9 the server in the middle of the stream.
    let writer = server.client.clone();
    let writes = tokio::spawn(async move {
        let mut acknowledged = Vec::new();
        for i in 0..10_000 {
            let mut pod = PodBuilder::named(&format!("w{i}"))
                .container("c", &["spin"])
                .build();
            pod["spec"]["nodeName"] = json!("parked");
            match writer.create(PODS, &pod).await {
                Ok(created) => acknowledged.push((
                    format!("w{i}"),
                    created["metadata"]["resourceVersion"]
                        .as_str()
                        .unwrap()
                        .parse::<u64>()
                        .unwrap(),
                )),
                Err(_) => break,
            }
        }
        acknowledged
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.process.kill_9();
    let acknowledged = writes.await.unwrap();
    assert!(
        !acknowledged.is_empty(),
        "some writes were acknowledged before the kill"
    );

    let mut server = start_server(data_dir.path(), port).await;
    let list = server
        .client
        .list(PODS, &ListParams::default())
        .await
        .unwrap();
    let stored: std::collections::HashSet<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["metadata"]["name"].as_str())
        .collect();
    for (name, _) in &acknowledged {
        assert!(
            stored.contains(name.as_str()),
            "acknowledged {name} was lost"
        );
    }
    let last_acknowledged = acknowledged.iter().map(|(_, rv)| *rv).max().unwrap();
    let mut probe = PodBuilder::named("after-restart")
        .container("c", &["spin"])
        .build();
    probe["spec"]["nodeName"] = json!("parked");
    let after = server.client.create(PODS, &probe).await.unwrap();
    let after_rv: u64 = after["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        after_rv > last_acknowledged,
        "resourceVersion {after_rv} must exceed {last_acknowledged}"
    );
    started_and_restarts(&server.client, 1).await;
    server.process.kill_9();
}
