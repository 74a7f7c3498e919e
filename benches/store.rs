//! Store budgets of issue #8: write latency at 500 writes/s from 8 clients, in process and over
//! HTTPS, and writes while a watch replays 20,000 events of history. Prints a table.
//!
//! `cargo bench --bench store` (release build). Budgets: write p99 < 20 ms at 500 writes/s from
//! 8 clients; a write during a watch from the oldest of 20,000 events of history < 50 ms.
//! Writes are scheduled at a fixed rate and a write's latency counts from its scheduled time,
//! so a write queued behind a slow one is charged for the wait. Beside each write row is the
//! disk's own `fdatasync` latency, measured at the same time: every write waits for one, so on
//! a busy machine read the write rows against it.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};
use wasmkube::api::Api;
use wasmkube::api::kinds::LEASES;
use wasmkube::client::{Client, ListParams};
use wasmkube::store::SqliteStore;
use wasmkube::testing::Cluster;

mod support;
use support::{millis, percentile, row};

const CLIENTS: u32 = 8;
const WRITES_PER_SECOND: u32 = 500;
const SECONDS: u32 = 10;
/// Events in the history a watch replays (the store keeps 20,000 revisions by default).
const HISTORY: u64 = 20_000;
const LEASES_PATH: &str = "/apis/coordination.k8s.io/v1/namespaces/default/leases";

/// A Lease; `padding` bytes of annotation give history events a body of realistic size.
fn lease(name: &str, padding: usize) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": name, "annotations": {"padding": "x".repeat(padding)}},
        "spec": {"holderIdentity": "bench", "leaseDurationSeconds": 10},
    })
}

/// Runs `write(client, n)` from `CLIENTS` tasks, together `WRITES_PER_SECOND` for `SECONDS`,
/// each write at its scheduled time. Returns the latencies, sorted.
async fn paced<W, F>(write: W) -> Vec<Duration>
where
    W: Fn(u32, u32) -> F + Clone + Send + 'static,
    F: Future<Output = ()> + Send,
{
    let interval = Duration::from_secs(1) * CLIENTS / WRITES_PER_SECOND;
    let start = tokio::time::Instant::now() + Duration::from_millis(100);
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let write = write.clone();
            tokio::spawn(async move {
                let offset = interval * client / CLIENTS;
                let mut latencies = Vec::new();
                for n in 0..WRITES_PER_SECOND * SECONDS / CLIENTS {
                    let due = start + offset + interval * n;
                    tokio::time::sleep_until(due).await;
                    write(client, n).await;
                    latencies.push(due.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    latencies.sort();
    latencies
}

/// Paced creates through the in-process `Api` over a bare store.
async fn in_process_writes() -> Vec<Duration> {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("store.db")).unwrap();
    let api = Api::new(Arc::new(store));
    api.bootstrap().unwrap();
    paced(move |client, n| {
        let api = api.clone();
        async move {
            let lease = lease(&format!("c{client}-{n}"), 0);
            api.create(&LEASES, Some("default"), lease).unwrap();
        }
    })
    .await
}

/// A cluster without a node, and one warmed-up client (TLS connection made) per writer.
async fn cluster_and_clients(count: u32) -> (Cluster, Vec<Client>) {
    let cluster = Cluster::start_with(|config| config.embedded_node = false)
        .await
        .unwrap();
    let mut clients = Vec::new();
    for i in 0..count {
        let client = cluster.client();
        client
            .create(LEASES_PATH, &lease(&format!("warm-{i}"), 0))
            .await
            .unwrap();
        clients.push(client);
    }
    (cluster, clients)
}

/// Paced creates over HTTPS against a whole control plane.
async fn http_writes() -> Vec<Duration> {
    let (cluster, clients) = cluster_and_clients(CLIENTS).await;
    let clients = Arc::new(clients);
    let latencies = paced(move |client, n| {
        let clients = clients.clone();
        async move {
            let lease = lease(&format!("c{client}-{n}"), 0);
            clients[client as usize]
                .create(LEASES_PATH, &lease)
                .await
                .unwrap();
        }
    })
    .await;
    cluster.shutdown().await;
    latencies
}

/// Runs `measure` while a probe times the disk's own floor beside it: a 4 KiB write and
/// `fdatasync` every 10 ms, as a commit does. A write cannot be faster than one of these, and
/// on a machine where other builds write gigabytes its tail is the disk's. Returns the probe's
/// latencies, sorted.
fn with_disk_probe<T>(measure: impl FnOnce() -> T) -> (T, Vec<Duration>) {
    use std::os::unix::fs::FileExt;
    let dir = tempfile::tempdir().unwrap();
    let file = std::fs::File::create(dir.path().join("probe")).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let probe = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut latencies = Vec::new();
            for n in 0u64.. {
                if done.load(Ordering::SeqCst) {
                    break;
                }
                file.write_all_at(&[7; 4096], n % 64 * 4096).unwrap();
                let start = Instant::now();
                file.sync_data().unwrap();
                latencies.push(start.elapsed());
                std::thread::sleep(Duration::from_millis(10));
            }
            latencies
        })
    };
    let measured = measure();
    done.store(true, Ordering::SeqCst);
    let mut latencies = probe.join().unwrap();
    latencies.sort();
    (measured, latencies)
}

/// Writes during a watch from the oldest of `HISTORY` events (1 KiB bodies), over HTTPS.
struct DuringBacklog {
    writes: Vec<Duration>,
    delivered_in: Duration,
}

async fn writes_during_a_watch_of_the_whole_history() -> DuringBacklog {
    let (cluster, mut clients) = cluster_and_clients(2).await;
    let api = cluster.api().clone();
    for batch in 0..HISTORY / 500 {
        let leases = (0..500)
            .map(|i| lease(&format!("h{batch}-{i}"), 1024))
            .collect();
        api.create_many(&LEASES, Some("default"), leases).unwrap();
    }
    let oldest = (api.current_revision() - HISTORY).to_string();
    let (watcher, writer) = (clients.pop().unwrap(), clients.pop().unwrap());
    let delivered = Arc::new(AtomicBool::new(false));
    let writing = {
        let delivered = delivered.clone();
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            // The write in flight when the backlog is through still counts.
            while !delivered.load(Ordering::SeqCst) {
                let start = Instant::now();
                let lease = lease(&format!("during-{}", latencies.len()), 0);
                writer.create(LEASES_PATH, &lease).await.unwrap();
                latencies.push(start.elapsed());
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            latencies
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let start = Instant::now();
    let mut events = watcher
        .watch(LEASES_PATH, &ListParams::default(), Some(&oldest))
        .await
        .unwrap();
    for _ in 0..HISTORY {
        events.next().await.unwrap().unwrap();
    }
    let delivered_in = start.elapsed();
    delivered.store(true, Ordering::SeqCst);
    let writes = writing.await.unwrap();
    cluster.shutdown().await;
    DuringBacklog {
        writes,
        delivered_in,
    }
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let in_process = with_disk_probe(|| runtime.block_on(in_process_writes()));
    let http = with_disk_probe(|| runtime.block_on(http_writes()));
    let (during, during_syncs) =
        with_disk_probe(|| runtime.block_on(writes_during_a_watch_of_the_whole_history()));
    println!("| {:<44} | {:>14} | {:<10} |", "measure", "value", "budget");
    println!("|{:-<46}|{:-<16}|{:-<12}|", "", "", "");
    for (path, (latencies, syncs)) in [("in process", &in_process), ("HTTPS", &http)] {
        row(
            &format!("write p50, {path}, 8 clients at 500/s"),
            millis(percentile(latencies, 0.5)),
            "reported",
        );
        row(
            &format!("write p99, {path}, 8 clients at 500/s"),
            millis(percentile(latencies, 0.99)),
            "< 20 ms",
        );
        row(
            "  beside it: the disk's fdatasync p50",
            millis(percentile(syncs, 0.5)),
            "reported",
        );
        row(
            "  beside it: the disk's fdatasync p99 / max",
            format!(
                "{:.0} / {:.0} ms",
                percentile(syncs, 0.99).as_secs_f64() * 1e3,
                syncs.last().unwrap().as_secs_f64() * 1e3
            ),
            "reported",
        );
    }
    let mut writes = during.writes;
    writes.sort();
    row(
        &format!("writes during a 20k-event watch ({})", writes.len()),
        "p50 / max".into(),
        "",
    );
    if writes.is_empty() {
        row(
            "  (none finished during the backlog)",
            "—".into(),
            "< 50 ms",
        );
    } else {
        row("  p50", millis(percentile(&writes, 0.5)), "reported");
        row("  max", millis(*writes.last().unwrap()), "< 50 ms");
    }
    row(
        "  beside it: the disk's fdatasync max",
        millis(*during_syncs.last().unwrap()),
        "reported",
    );
    row(
        "20k-event backlog delivered over HTTPS",
        millis(during.delivered_in),
        "reported",
    );
}
