//! Node death: three `wasmkube agent` processes, a Deployment of 6; `kill -9` of one agent,
//! timed until the node is NotReady and until 6 replicas run on the other two.
//!
//! `cargo bench --bench node_death` (release build). Budget (issue #3): replacements Running
//! < 25 s with the default `--node-monitor-grace-period` and `--pod-eviction-timeout` (10 s
//! each). Three runs on fresh clusters; prints each and the medians.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use wasmkube::api::resources::{DEPLOYMENTS, NODES};
use wasmkube::testing::Cluster;

#[path = "../tests/integration/census.rs"]
mod census;
use census::{is_ready, live_pods};

const AGENTS: [&str; 3] = ["edge-1", "edge-2", "edge-3"];
const RUNS: usize = 3;

fn agent(cluster: &Cluster, name: &str, dir: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_wasmkube"))
        .args(["agent", "--data-dir", dir.join(name).to_str().unwrap()])
        .args([
            "--server",
            &cluster.api_url(),
            "--token",
            &cluster.node_token(),
            "--name",
            name,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start an agent")
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// (NotReady after, replacements Running after) the kill.
async fn measure() -> (Duration, Duration) {
    let cluster = Cluster::start_with(|c| c.embedded_node = false)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut agents: Vec<Child> = AGENTS
        .iter()
        .map(|n| agent(&cluster, n, dir.path()))
        .collect();
    let api = cluster.api().clone();
    wait_for("3 Ready nodes", || {
        AGENTS
            .iter()
            .all(|n| api.get(&NODES, None, n).is_ok_and(|node| is_ready(&node)))
    })
    .await;
    let image = format!("{}/exerciser.wasm", env!("WASMKUBE_SAMPLES_DIR"));
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
    agents[2].kill().unwrap();
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
    for mut agent in agents {
        let _ = agent.kill();
        let _ = agent.wait();
    }
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
