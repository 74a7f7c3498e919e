//! Scheduler throughput: bindings per second; prints a table to compare run to run.
//!
//! `cargo bench --bench scheduler` (release build). Budget: at least 500 bindings/s. Each run
//! starts a fresh in-process cluster, adds 3 Ready nodes with room for everything, creates
//! 1000 pods without requests (selecting those nodes, so the embedded node runs none) one
//! after the other, and measures from the first create until a watch has seen every pod
//! bound. Creates, bindings and the scheduler's events all share the store, whose every write
//! is a synchronous SQLite commit: a pod costs three (its create, its binding and its
//! `Scheduled` event, which is queued and written behind the bindings). The table also shows
//! the create rate during the run (bindings cannot outrun it: the lag row says how far behind
//! they finish), how many events were written once the queue drained, and the store's write
//! rate with nothing else running (1000 pod creates on a bare `Api`), a third of which bounds
//! sustained bindings/s.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use wasmkube::api::kinds::{EVENTS, NAMESPACES, NODES, PODS};
use wasmkube::api::{Api, ListOptions, Part, WriteOptions};
use wasmkube::store::SqliteStore;
use wasmkube::testing::Cluster;

mod support;
use support::row;

const PODS_PER_RUN: usize = 1000;
const RUNS: usize = 3;
const NAMESPACE: &str = "bench";

fn create_node(api: &Api, name: &str) {
    let node = json!({"metadata": {"name": name, "labels": {"pool": "bench"}}, "spec": {}});
    api.create(&NODES, None, node).unwrap();
    let room = json!({"cpu": "1000", "memory": "4Ti", "pods": "10000"});
    // The node IPAM controller may write the new node first (its pod CIDR).
    let target = (&NODES, None, name, Part::Status);
    api.update_retrying(target, false, &WriteOptions::default(), |node| {
        node["status"] = json!({"capacity": room, "allocatable": room,
                                "conditions": [{"type": "Ready", "status": "True"}]});
        Ok(())
    })
    .unwrap();
}

fn pod(index: usize) -> Value {
    json!({"metadata": {"name": format!("p-{index}")},
           "spec": {"nodeSelector": {"pool": "bench"},
                    "containers": [{"name": "c", "image": "bench.wasm"}]}})
}

/// What one run measured.
struct Run {
    all_bound: Duration,
    all_created: Duration,
    /// `Scheduled` events written once the queue drained (the scheduler drops what overflows it).
    scheduled_events: usize,
}

/// Waits until the count of `Scheduled` events stops growing; returns it.
async fn scheduled_events(api: &Api) -> usize {
    let count = || {
        let events = api
            .list(&EVENTS, Some(NAMESPACE), &ListOptions::default())
            .unwrap();
        let items = events["items"].as_array().unwrap();
        items.iter().filter(|e| e["reason"] == "Scheduled").count()
    };
    let mut last = count();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = count();
        if now == last {
            return now;
        }
        last = now;
    }
}

async fn measure() -> Run {
    let cluster = Cluster::start().await.unwrap();
    let api = cluster.api().clone();
    for name in ["bench-1", "bench-2", "bench-3"] {
        create_node(&api, name);
    }
    let namespace = json!({"metadata": {"name": NAMESPACE}});
    api.create(&NAMESPACES, None, namespace).unwrap();
    let stop = CancellationToken::new();
    let options = ListOptions {
        resource_version: Some(api.current_revision()),
        ..Default::default()
    };
    let mut events = api
        .watch(&PODS, Some(NAMESPACE), options, None, stop.clone())
        .unwrap();

    let start = Instant::now();
    let creator = tokio::task::spawn_blocking({
        let api = api.clone();
        move || {
            for index in 0..PODS_PER_RUN {
                api.create(&PODS, Some(NAMESPACE), pod(index)).unwrap();
            }
            start.elapsed()
        }
    });
    let mut bound = HashSet::new();
    while bound.len() < PODS_PER_RUN {
        let event = tokio::time::timeout(Duration::from_secs(60), events.recv()).await;
        let Ok(Some(event)) = event else {
            panic!("only {} of {PODS_PER_RUN} pods bound", bound.len());
        };
        let pod = &event.object;
        if pod["spec"]["nodeName"].is_string() {
            bound.insert(
                pod["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
        }
    }
    let all_bound = start.elapsed();
    let all_created = creator.await.unwrap();
    stop.cancel();
    let scheduled_events = scheduled_events(&api).await;
    cluster.shutdown().await;
    Run {
        all_bound,
        all_created,
        scheduled_events,
    }
}

/// How long the store alone takes for `PODS_PER_RUN` pod creates.
fn bare_store_creates() -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("store.db")).unwrap();
    let api = Api::new(std::sync::Arc::new(store));
    api.bootstrap().unwrap();
    let start = Instant::now();
    for index in 0..PODS_PER_RUN {
        api.create(&PODS, Some("default"), pod(index)).unwrap();
    }
    start.elapsed()
}

fn per_second(count: usize, duration: Duration) -> f64 {
    count as f64 / duration.as_secs_f64()
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut runs: Vec<Run> = (0..RUNS).map(|_| runtime.block_on(measure())).collect();
    let bare = bare_store_creates();
    runs.sort_by_key(|run| run.all_bound);
    println!("| {:<44} | {:>14} | {:<10} |", "measure", "value", "budget");
    println!("|{:-<46}|{:-<16}|{:-<12}|", "", "", "");
    let n = PODS_PER_RUN;
    for (i, run) in runs.iter().enumerate() {
        row(
            &format!("run {}: {n} pods created → all bound", i + 1),
            format!("{:.0} ms", run.all_bound.as_secs_f64() * 1e3),
            "reported",
        );
    }
    let median = &runs[RUNS / 2];
    row(
        &format!("bindings/s, median of {RUNS} runs"),
        format!("{:.0}/s", per_second(n, median.all_bound)),
        "≥ 500/s",
    );
    row(
        "pod creates/s meanwhile (same run)",
        format!("{:.0}/s", per_second(n, median.all_created)),
        "reported",
    );
    row(
        "last create → all bound (binding lag)",
        format!(
            "{:.0} ms",
            (median.all_bound.saturating_sub(median.all_created)).as_secs_f64() * 1e3
        ),
        "reported",
    );
    row(
        "Scheduled events written (queue drained)",
        format!("{}/{n}", median.scheduled_events),
        "reported",
    );
    row(
        "store writes/s alone (pod creates, bare Api)",
        format!("{:.0}/s", per_second(n, bare)),
        "reported",
    );
}
