//! Load at a fixed rate: writers on a schedule whose latency counts from the scheduled time (a
//! write queued behind a slow one is charged for the wait), and the clients that send it.

use std::future::Future;
use std::time::Duration;

use serde_json::{Value, json};
use wasmkube::client::Client;
use wasmkube::testing::Cluster;

pub const LEASES_PATH: &str = "/apis/coordination.k8s.io/v1/namespaces/default/leases";

/// A fixed rate of calls from several clients for some seconds.
#[derive(Clone, Copy)]
pub struct Pace {
    pub clients: u32,
    pub per_second: u32,
    pub seconds: u32,
}

/// A Lease; `padding` bytes of annotation give history events a body of realistic size.
pub fn lease(name: &str, padding: usize) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": name, "annotations": {"padding": "x".repeat(padding)}},
        "spec": {"holderIdentity": "bench", "leaseDurationSeconds": 10},
    })
}

/// Runs `call(client, n)` from `pace.clients` tasks, together `pace.per_second` for
/// `pace.seconds`, each call at its scheduled time. Returns the latencies, sorted.
pub async fn paced<W, F>(pace: Pace, call: W) -> Vec<Duration>
where
    W: Fn(u32, u32) -> F + Clone + Send + 'static,
    F: Future<Output = ()> + Send,
{
    let interval = Duration::from_secs(1) * pace.clients / pace.per_second;
    let start = tokio::time::Instant::now() + Duration::from_millis(100);
    let tasks: Vec<_> = (0..pace.clients)
        .map(|client| {
            let call = call.clone();
            tokio::spawn(async move {
                let offset = interval * client / pace.clients;
                let mut latencies = Vec::new();
                for n in 0..pace.per_second * pace.seconds / pace.clients {
                    let due = start + offset + interval * n;
                    tokio::time::sleep_until(due).await;
                    call(client, n).await;
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

/// Paced creates of Leases, one writer per client; their latencies, sorted.
pub async fn paced_lease_creates(pace: Pace, clients: Vec<Client>) -> Vec<Duration> {
    let clients = std::sync::Arc::new(clients);
    paced(pace, move |client, n| {
        let clients = clients.clone();
        async move {
            let lease = lease(&format!("c{client}-{n}"), 0);
            let writer = &clients[client as usize];
            writer.create(LEASES_PATH, &lease).await.unwrap();
        }
    })
    .await
}

/// A cluster without a node, and one warmed-up client (TLS connection made) per caller.
pub async fn cluster_and_clients(count: u32) -> (Cluster, Vec<Client>) {
    let cluster = Cluster::start_with(|config| config.embedded_node = false)
        .await
        .unwrap();
    let clients = warm_clients(&cluster, count).await;
    (cluster, clients)
}

/// `count` clients of `cluster`, each with its TLS connection made by a first write.
pub async fn warm_clients(cluster: &Cluster, count: u32) -> Vec<Client> {
    let mut clients = Vec::new();
    for i in 0..count {
        let client = cluster.client();
        client
            .create(LEASES_PATH, &lease(&format!("warm-{i}"), 0))
            .await
            .unwrap();
        clients.push(client);
    }
    clients
}
