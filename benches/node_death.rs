//! Node death: three `wasmkube agent` processes, a Deployment of 6; `kill -9` of one agent,
//! timed until the node is NotReady and until 6 replicas run on the other two.
//!
//! `cargo bench --bench node_death` (release build). Budget (issue #3): replacements Running
//! < 25 s with the default `--node-monitor-grace-period` and `--pod-eviction-timeout` (10 s
//! each). Three runs on fresh clusters; prints each and the medians.

use std::time::{Duration, Instant};

use serde_json::json;
use wasmkube::api::kinds::{DEPLOYMENTS, NODES};
use wasmkube::testing::{Cluster, eventually};

mod support;
use support::census::{is_ready, live_pods};
use support::exerciser;
use support::processes::{Process, start_agent};

const AGENTS: [&str; 3] = ["edge-1", "edge-2", "edge-3"];
const RUNS: usize = 3;

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    eventually(Duration::from_secs(120), what, || {
        std::future::ready(done().then_some(()))
    })
    .await;
}

/// (NotReady after, replacements Running after) the kill.
async fn measure() -> (Duration, Duration) {
    let cluster = Cluster::start_with(|c| c.embedded_node = false)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (server, token) = (cluster.api_url(), cluster.node_token());
    let mut agents: Vec<Process> = AGENTS
        .iter()
        .map(|n| start_agent(&server, &token, n, &dir.path().join(n)))
        .collect();
    let api = cluster.api().clone();
    wait_for("3 Ready nodes", || {
        AGENTS
            .iter()
            .all(|n| api.get(&NODES, None, n).is_ok_and(|node| is_ready(&node)))
    })
    .await;
    let image = exerciser();
    let deployment = json!({"metadata": {"name": "web"}, "spec": {"replicas": 6,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
            {"name": "c", "image": image, "args": ["sleep", "600000"]}]}}}});
    api.create(&DEPLOYMENTS, Some("default"), deployment)
        .unwrap();
    wait_for("6 Running", || {
        live_pods(&api).iter().filter(|(_, r)| *r).count() == 6
    })
    .await;
    agents[2].kill_9();
    let killed = Instant::now();
    wait_for("NotReady", || {
        !is_ready(&api.get(&NODES, None, AGENTS[2]).unwrap())
    })
    .await;
    let not_ready = killed.elapsed();
    wait_for("6 Running elsewhere", || {
        let pods = live_pods(&api);
        pods.len() == 6 && pods.iter().all(|(n, r)| *r && n != AGENTS[2])
    })
    .await;
    let replaced = killed.elapsed();
    drop(agents);
    cluster.shutdown().await;
    (not_ready, replaced)
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (mut not_ready, mut replaced) = (Vec::new(), Vec::new());
    for run in 1..=RUNS {
        let (a, b) = runtime.block_on(measure());
        println!(
            "run {run}: NotReady after {:.1} s, 6/6 Running elsewhere after {:.1} s",
            a.as_secs_f64(),
            b.as_secs_f64()
        );
        not_ready.push(a);
        replaced.push(b);
    }
    not_ready.sort();
    replaced.sort();
    println!(
        "node killed → NotReady: median {:.1} s; → replacements Running: median {:.1} s (budget < 25 s)",
        not_ready[RUNS / 2].as_secs_f64(),
        replaced[RUNS / 2].as_secs_f64()
    );
}
