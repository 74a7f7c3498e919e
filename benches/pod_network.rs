//! The pod network's budgets: an HTTP component served by the node against `wasmtime serve`
//! (wasmtime-cli 48, installed with `cargo install` when missing), pod-to-pod calls across two agents through the tunnel
//! against the same calls within one node, and pod start with networking on.
//!
//! `cargo bench --bench pod_network`

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use support::http_load::{
    against_wasmtime_serve, echo_pod, load, loopback_of, running, sample, wasmtime_serve_load,
};
use support::processes::{free_port, start_agent, start_control_plane};
use support::{exerciser, millis, percentile, row};
use wasmkube::api::kinds::PODS;
use wasmkube::client::Client;
use wasmkube::testing::{Cluster, eventually};

/// The node serving http-echo: requests/s and p50 latency; then pod create → Running times.
async fn measure_node(cluster: &Cluster) -> ((f64, Duration), Vec<Duration>) {
    let api = cluster.api();
    api.create(&PODS, Some("default"), echo_pod("echo"))
        .unwrap();
    let pod = running(api, "echo").await;
    let served = load(SocketAddr::from((loopback_of(&pod), 8080))).await;
    let mut starts = Vec::new();
    for i in 0..100 {
        let name = format!("start-{i}");
        let pod = json!({"metadata": {"name": name}, "spec": {
            "containers": [{"name": "c", "image": exerciser(), "args": ["sleep", "600000"]}]}});
        let start = Instant::now();
        api.create(&PODS, Some("default"), pod).unwrap();
        running(api, &name).await;
        starts.push(start.elapsed());
    }
    starts.sort();
    (served, starts)
}

/// Calls/s of a client pod on `node` getting 64 KiB bodies from the echo pod at `ip`.
async fn calls_per_second(client: &Client, name: &str, node: &str, ip: &str) -> f64 {
    let target = format!("http://{ip}:8080/bytes/65536");
    let pod = json!({"metadata": {"name": name}, "spec": {"nodeName": node, "restartPolicy": "Never",
        "containers": [{"name": "c", "image": sample("client.wasm"),
                        "args": ["--quiet", "--count", "300", target]}]}});
    let pods = "/api/v1/namespaces/default/pods";
    client.create(pods, &pod).await.unwrap();
    let log = format!("{pods}/{name}/log");
    let summary = eventually(Duration::from_secs(120), "the client's summary", || async {
        let text = client.get_text(&log).await.ok()?;
        text.lines()
            .find(|l| l.contains("calls/s"))
            .map(str::to_string)
    })
    .await;
    assert!(summary.contains(", 0 failed"), "{summary}");
    let rate = summary.split(": ").nth(1).and_then(|r| r.split(' ').next());
    rate.and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("no rate in {summary:?}"))
}

/// Pod-to-pod calls within edge-1 and from edge-2 to edge-1 (through the tunnel).
async fn measure_across_nodes(root: &Path) -> (f64, f64) {
    let port = free_port();
    let url = format!("https://127.0.0.1:{port}");
    let (_server, client) = start_control_plane("server", &root.join("s"), port).await;
    let token = std::fs::read_to_string(root.join("s/node-token")).unwrap();
    let _agents: Vec<_> = ["edge-1", "edge-2"]
        .iter()
        .map(|n| start_agent(&url, &token, n, &root.join(n)))
        .collect();
    let mut echo = echo_pod("echo");
    echo["spec"]["nodeName"] = json!("edge-1");
    let pods = "/api/v1/namespaces/default/pods";
    let echo = eventually(
        Duration::from_secs(60),
        "echo Running on edge-1",
        || async {
            if client.get(&format!("{pods}/echo")).await.is_err() {
                client.create(pods, &echo).await.ok()?;
            }
            let pod = client.get(&format!("{pods}/echo")).await.ok()?;
            (pod["status"]["phase"] == "Running").then_some(pod)
        },
    )
    .await;
    let ip = echo["status"]["podIP"].as_str().unwrap().to_string();
    let local = calls_per_second(&client, "local", "edge-1", &ip).await;
    let remote = calls_per_second(&client, "remote", "edge-2", &ip).await;
    (local, remote)
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let ((node_rate, node_p50), starts) = runtime.block_on(async {
        let cluster = Cluster::start().await.unwrap();
        let measured = measure_node(&cluster).await;
        cluster.shutdown().await;
        measured
    });
    let serve = runtime.block_on(wasmtime_serve_load("http-echo.wasm"));
    let root = tempfile::tempdir().unwrap();
    let (local, remote) = runtime.block_on(measure_across_nodes(root.path()));
    println!(
        "| {:<44} | {:>14} | {:<10} |",
        "measure", "median/value", "budget"
    );
    println!("|{:-<46}|{:-<16}|{:-<12}|", "", "", "");
    let rate = |r: f64| format!("{r:.0} req/s");
    row("http-echo served by the node", rate(node_rate), "reported");
    row(
        "  p50 latency, one connection",
        millis(node_p50),
        "reported",
    );
    against_wasmtime_serve("node", (node_rate, node_p50), serve);
    row(
        "pod → pod on one node (64 KiB GETs)",
        format!("{local:.0} calls/s"),
        "reference",
    );
    row(
        "pod → pod across nodes, tunnel",
        format!("{remote:.0} calls/s"),
        "reported",
    );
    row(
        "across / within one node",
        format!("{:.0}%", 100.0 * remote / local),
        ">= 50%",
    );
    row(
        "pod create → Running p50 (100 pods)",
        millis(percentile(&starts, 0.5)),
        "< 20 ms",
    );
}
