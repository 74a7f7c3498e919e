//! API budgets of issue #10 over HTTPS, as today's clients use the API. Prints a table.
//!
//! `cargo bench --bench api` (release build; kubectl 1.37 first on PATH, as `.ci/run` puts
//! it). Budgets: at 1,000 writes/s from 8 clients, a single-object write p99 < 10 ms and a
//! get p99 < 5 ms (gets paced alongside, 8 clients); `kubectl get pods` over 1,000 pods
//! < 300 ms end to end; a watch of 1,000 pods started with `sendInitialEvents` delivers them
//! all and the closing bookmark < 200 ms. Medians of 5 runs where a run is one measurement.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;
use wasmkube::api::kinds::PODS;
use wasmkube::api::watch::INITIAL_EVENTS_END;
use wasmkube::testing::Cluster;

mod support;
use support::load::{LEASES_PATH, Pace, cluster_and_clients, paced, paced_lease_creates};
use support::{exerciser, header, millis, p50_p99, row};

const PACE: Pace = Pace {
    clients: 8,
    per_second: 1_000,
    seconds: 10,
};
const PODS_LISTED: usize = 1_000;
const RUNS: usize = 5;

/// Paced creates and, beside them, paced gets of what is there; (writes, gets), sorted.
async fn writes_and_gets() -> (Vec<Duration>, Vec<Duration>) {
    let (cluster, mut clients) = cluster_and_clients(PACE.clients * 2).await;
    let readers = Arc::new(clients.split_off(PACE.clients as usize));
    let writes = tokio::spawn(paced_lease_creates(PACE, clients));
    let gets = paced(PACE, move |client, _| {
        let readers = readers.clone();
        async move {
            let path = format!("{LEASES_PATH}/warm-{client}");
            readers[client as usize].get(&path).await.unwrap();
        }
    })
    .await;
    let writes = writes.await.unwrap();
    cluster.shutdown().await;
    (writes, gets)
}

/// A cluster holding `PODS_LISTED` pending pods (no node runs them).
async fn cluster_with_pods() -> Cluster {
    let cluster = Cluster::start_with(|config| config.embedded_node = false)
        .await
        .unwrap();
    let pods = (0..PODS_LISTED)
        .map(|i| {
            json!({"metadata": {"name": format!("pod-{i}"), "labels": {"app": "bench"}},
                   "spec": {"containers": [{"name": "c", "image": exerciser()}]}})
        })
        .collect();
    cluster
        .api()
        .create_many(&PODS, Some("default"), pods)
        .unwrap();
    cluster
}

/// `kubectl get pods` end to end (process start, discovery from its cache, the Table).
fn kubectl_get_pods(cluster: &Cluster) -> Duration {
    let cache = cluster.data_dir().join("kubectl-cache");
    let start = Instant::now();
    let output = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(cluster.kubeconfig())
        .arg("--cache-dir")
        .arg(&cache)
        .args(["get", "pods"])
        .output()
        .expect("kubectl on PATH");
    let elapsed = start.elapsed();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows = String::from_utf8_lossy(&output.stdout).lines().count();
    assert_eq!(rows, PODS_LISTED + 1, "a header and every pod");
    elapsed
}

/// A watch-list of every pod: from the request to the bookmark closing the initial state.
async fn watch_list(cluster: &Cluster) -> Duration {
    let client = cluster.client();
    let path = "/api/v1/namespaces/default/pods?watch=true&sendInitialEvents=true\
                &resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true";
    let start = Instant::now();
    let mut lines = client.stream_lines(path).await.unwrap();
    let mut added = 0;
    while let Some(line) = lines.next().await {
        let event: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        match event["type"].as_str() {
            Some("ADDED") => added += 1,
            Some("BOOKMARK") => {
                let end = &event["object"]["metadata"]["annotations"][INITIAL_EVENTS_END];
                assert_eq!(end, "true");
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let elapsed = start.elapsed();
    assert_eq!(added, PODS_LISTED);
    elapsed
}

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

#[tokio::main]
async fn main() {
    header();
    let (writes, gets) = writes_and_gets().await;
    p50_p99("write (1,000 writes/s, 8 clients)", &writes, "< 10 ms");
    p50_p99("get (beside the writes)", &gets, "< 5 ms");

    let cluster = cluster_with_pods().await;
    kubectl_get_pods(&cluster); // fills kubectl's discovery cache, as any second run has it
    let runs = (0..RUNS).map(|_| kubectl_get_pods(&cluster)).collect();
    row(
        "kubectl get pods, 1,000 pods (median)",
        millis(median(runs)),
        "< 300 ms",
    );
    let mut runs = Vec::new();
    for _ in 0..RUNS {
        runs.push(watch_list(&cluster).await);
    }
    row(
        "watch-list of 1,000 pods to the bookmark",
        millis(median(runs)),
        "< 200 ms",
    );
    cluster.shutdown().await;
}
