//! Reconcile latency of the ReplicaSet controller; prints a table to compare run to run.
//!
//! `cargo bench --bench controllers` (release build). Budget (issue #3): ReplicaSet change →
//! its pods created, p99 < 50 ms at 100 ReplicaSets. Measured on a whole in-process cluster
//! (the node runs every pod), from the API call that changes the ReplicaSet to the pod's
//! creation event on a watch:
//! - create: 100 ReplicaSets of one replica, created one after the other;
//! - scale: each of those 100 scaled 1 → 2, one after the other;
//! - burst: all 100 scaled 2 → 3 back to back, each measured from its own change.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use wasmkube::api::kinds::{PODS, REPLICA_SETS};
use wasmkube::api::patch::PatchType;
use wasmkube::api::{Api, ListOptions, Part};
use wasmkube::testing::Cluster;

mod support;
use support::{exerciser, millis, percentile, row};

const REPLICA_SET_COUNT: usize = 100;

fn replica_set(name: &str) -> Value {
    json!({"metadata": {"name": name}, "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"rs": name}},
        "template": {"metadata": {"labels": {"rs": name}},
                     "spec": {"containers": [{"name": "c", "image": exerciser(), "args": ["sleep", "600000"]}]}}}})
}

/// When each ReplicaSet's pods were created, as a watch on pods reports it.
struct PodCreations {
    events: mpsc::UnboundedReceiver<(String, Instant)>,
    seen: HashMap<String, Vec<Instant>>,
}

impl PodCreations {
    fn watch(api: &Api, shutdown: CancellationToken) -> Self {
        let options = ListOptions {
            resource_version: Some(api.current_revision()),
            ..Default::default()
        };
        let mut watch = api
            .watch(&PODS, Some("default"), options, None, shutdown)
            .unwrap();
        let (tx, events) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(event) = watch.recv().await {
                let owner = event.object["metadata"]["ownerReferences"][0]["name"]
                    .as_str()
                    .map(str::to_string);
                if let (Some(owner), "ADDED") = (owner, event.kind) {
                    let _ = tx.send((owner, Instant::now()));
                }
            }
        });
        Self {
            events,
            seen: HashMap::new(),
        }
    }

    /// When `replica_set`'s pod number `count` was created.
    async fn wait(&mut self, replica_set: &str, count: usize) -> Instant {
        loop {
            if let Some(at) = self
                .seen
                .get(replica_set)
                .and_then(|times| times.get(count - 1))
            {
                return *at;
            }
            let next = tokio::time::timeout(Duration::from_secs(30), self.events.recv());
            let Ok(Some((owner, at))) = next.await else {
                panic!("pod {count} of {replica_set} was not created within 30 s");
            };
            self.seen.entry(owner).or_default().push(at);
        }
    }
}

fn scale(api: &Api, name: &str, replicas: i64) {
    let patch = json!({"spec": {"replicas": replicas}});
    api.patch(
        &REPLICA_SETS,
        Some("default"),
        name,
        &patch,
        PatchType::Merge,
        Part::Main,
    )
    .unwrap();
}

struct Figures {
    create: Vec<Duration>,
    scale: Vec<Duration>,
    burst: Vec<Duration>,
    burst_total: Duration,
}

async fn measure() -> Figures {
    let cluster = Cluster::start().await.unwrap();
    let api = cluster.api().clone();
    let shutdown = CancellationToken::new();
    let mut pods = PodCreations::watch(&api, shutdown.clone());
    let names: Vec<String> = (0..REPLICA_SET_COUNT).map(|i| format!("rs-{i}")).collect();

    let mut create = Vec::new();
    for name in &names {
        let start = Instant::now();
        api.create(&REPLICA_SETS, Some("default"), replica_set(name))
            .unwrap();
        create.push(pods.wait(name, 1).await - start);
    }
    let mut scaled = Vec::new();
    for name in &names {
        let start = Instant::now();
        scale(&api, name, 2);
        scaled.push(pods.wait(name, 2).await - start);
    }
    let mut started = Vec::new();
    for name in &names {
        started.push(Instant::now());
        scale(&api, name, 3);
    }
    let mut burst = Vec::new();
    let mut last = started[0];
    for (name, start) in names.iter().zip(&started) {
        let at = pods.wait(name, 3).await;
        last = last.max(at);
        burst.push(at - *start);
    }
    shutdown.cancel();
    cluster.shutdown().await;
    for latencies in [&mut create, &mut scaled, &mut burst] {
        latencies.sort();
    }
    Figures {
        create,
        scale: scaled,
        burst,
        burst_total: last - started[0],
    }
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let figures = runtime.block_on(measure());
    println!("| {:<44} | {:>14} | {:<10} |", "measure", "value", "budget");
    println!("|{:-<46}|{:-<16}|{:-<12}|", "", "", "");
    let n = REPLICA_SET_COUNT;
    for (what, latencies) in [
        ("RS create", &figures.create),
        ("RS scale 1→2", &figures.scale),
        ("burst scale 2→3", &figures.burst),
    ] {
        row(
            &format!("{what} → pod created p50 ({n} RS)"),
            millis(percentile(latencies, 0.5)),
            "reported",
        );
        let budget = if what.starts_with("burst") {
            "reported"
        } else {
            "< 50 ms"
        };
        row(
            &format!("{what} → pod created p99 ({n} RS)"),
            millis(percentile(latencies, 0.99)),
            budget,
        );
    }
    row(
        &format!("burst: {n} RS scaled → all pods created"),
        millis(figures.burst_total),
        "reported",
    );
}
