//! Scale-out: a Deployment scaled 0 → 1,000 replicas of a command component on one node,
//! timed from the scale request until every pod's container is running.
//!
//! `cargo bench --bench scale_out` (release build). Budget (issue #3): < 3 s. Runs three
//! times, each on a fresh cluster in a fresh process, and prints each run and the median; also when the last pod was
//! created and bound and when the first ran, to show where the time goes.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio_util::sync::CancellationToken;
use wasmkube::api::kinds::{DEPLOYMENTS, PODS};
use wasmkube::api::patch::PatchType;
use wasmkube::api::{ListOptions, Part};
use wasmkube::testing::Cluster;

mod support;

const REPLICAS: usize = 1000;
const RUNS: usize = 3;

fn deployment() -> serde_json::Value {
    let image = support::exerciser();
    json!({"metadata": {"name": "wide"}, "spec": {
        "replicas": 0,
        "selector": {"matchLabels": {"app": "wide"}},
        "template": {"metadata": {"labels": {"app": "wide"}},
                     "spec": {"containers": [{"name": "c", "image": image, "args": ["sleep", "600000"]}]}}}})
}

/// When, after the scale request, the last pod was created, the last was bound, the first
/// was running and all were running.
struct Timeline {
    created: Duration,
    bound: Duration,
    first: Duration,
    all: Duration,
}

async fn measure() -> Timeline {
    let cluster = Cluster::start().await.unwrap();
    let api = cluster.api().clone();
    api.create(&DEPLOYMENTS, Some("default"), deployment())
        .unwrap();
    let shutdown = CancellationToken::new();
    let options = ListOptions {
        resource_version: Some(api.current_revision()),
        ..Default::default()
    };
    let mut pods = api
        .watch(&PODS, Some("default"), options, None, shutdown.clone())
        .unwrap();
    let patch = json!({"spec": {"replicas": REPLICAS}});
    let start = Instant::now();
    api.patch(
        &DEPLOYMENTS,
        Some("default"),
        "wide",
        &patch,
        PatchType::Merge,
        Part::Main,
    )
    .unwrap();
    let (mut created, mut bound, mut running) = (HashSet::new(), HashSet::new(), HashSet::new());
    let (mut created_at, mut bound_at, mut first) = (None, None, None);
    while running.len() < REPLICAS {
        let event = tokio::time::timeout(Duration::from_secs(60), pods.recv())
            .await
            .expect("pods running within a minute")
            .expect("the watch stays open");
        let name = event.object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if created.insert(name.clone()) && created.len() == REPLICAS {
            created_at = Some(start.elapsed());
        }
        if event.object["spec"]["nodeName"].is_string()
            && bound.insert(name.clone())
            && bound.len() == REPLICAS
        {
            bound_at = Some(start.elapsed());
        }
        let statuses = &event.object["status"]["containerStatuses"];
        if statuses[0]["state"]["running"].is_object() {
            running.insert(name);
            first.get_or_insert_with(|| start.elapsed());
        }
    }
    let all = start.elapsed();
    shutdown.cancel();
    cluster.shutdown().await;
    Timeline {
        created: created_at.unwrap_or(all),
        bound: bound_at.unwrap_or(all),
        first: first.unwrap_or(all),
        all,
    }
}

/// Set in the child process that measures one run.
const ONE_RUN: &str = "WASMKUBE_SCALE_OUT_ONE_RUN";

/// Each run in a fresh process, as a user's fresh `up` would be: the previous run's thousand
/// pods still being torn down must not weigh on the next.
fn main() {
    if std::env::var_os(ONE_RUN).is_some() {
        let timeline = tokio::runtime::Runtime::new().unwrap().block_on(measure());
        let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1e3);
        println!(
            "all created {}, all bound {}, first Running {}, all Running {}",
            ms(timeline.created),
            ms(timeline.bound),
            ms(timeline.first),
            ms(timeline.all)
        );
        println!("{}", timeline.all.as_millis());
        return;
    }
    let mut totals = Vec::new();
    for run in 1..=RUNS {
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .env(ONE_RUN, "1")
            .output()
            .expect("run the measurement");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        let mut lines = stdout.lines();
        println!("run {run}: {}", lines.next().unwrap_or_default());
        totals.push(
            lines
                .next()
                .and_then(|l| l.parse::<u64>().ok())
                .expect("the total"),
        );
    }
    totals.sort();
    println!(
        "Deployment 0 → {REPLICAS} replicas, all Running: median {} ms (budget < 3000 ms)",
        totals[RUNS / 2]
    );
}
