//! Crash safety: a killed `wasmkube up` loses nothing acknowledged and its pods come back; a
//! power loss loses no revision a client saw.
//!
//! `kill -9` proves the process may die at any point (SQLite's commits are atomic), not that
//! writes are synced: the kernel's page cache survives a killed process. The power-loss test
//! runs the store on a disk that keeps only what was synced.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;
use wasmkube::api::kinds::LEASES;
use wasmkube::api::{Api, ListOptions};
use wasmkube::client::{Client, ListParams};
use wasmkube::store::SqliteStore;

use crate::power_loss::Disk;
use crate::processes::{Process, free_port, start_control_plane};
use crate::support::{PodBuilder, api_on, eventually, lease, resource_version};

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
                Ok(created) => acknowledged.push((format!("w{i}"), resource_version(&created))),
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
    let after_rv = resource_version(&after);
    assert!(
        after_rv > last_acknowledged,
        "resourceVersion {after_rv} must exceed {last_acknowledged}"
    );
    started_and_restarts(&server.client, 1).await;
    server.process.kill_9();
}

/// What clients saw before the power went off: resourceVersion → lease name.
type Seen = Arc<Mutex<HashMap<u64, String>>>;

/// Creates leases until the store refuses or the power is off; records each answered before.
async fn create_until_refused(api: Arc<Api>, disk: Arc<Disk>, seen: Seen, writer: usize) {
    for n in 0.. {
        let name = format!("w{writer}-{n}");
        // Stops at the power-off even when writes keep being answered (a store that never syncs).
        if disk.is_off() {
            return;
        }
        let Ok(created) = api.create(&LEASES, Some("default"), lease(&name)) else {
            return;
        };
        // Checked after the answer: if the power is still on now, it was on when answered.
        if !disk.is_off() {
            seen.lock()
                .unwrap()
                .insert(resource_version(&created), name);
        }
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_power_loss_during_writes_keeps_every_resource_version_a_client_saw() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Arc::new(Disk::new(dir.path()));
    let api = api_on(&disk);
    let seen: Seen = Arc::default();
    let from_now = ListOptions {
        resource_version: Some(api.current_revision()),
        ..ListOptions::default()
    };
    let stop_watching = CancellationToken::new();
    let mut events = api
        .watch(
            &LEASES,
            Some("default"),
            from_now,
            None,
            stop_watching.clone(),
        )
        .unwrap();
    let watcher = {
        let (disk, seen) = (disk.clone(), seen.clone());
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                assert_ne!(event.kind, "ERROR", "{}", event.object);
                if !disk.is_off() {
                    let name = event.object["metadata"]["name"].as_str().unwrap();
                    let revision = resource_version(&event.object);
                    seen.lock().unwrap().insert(revision, name.to_string());
                }
            }
        })
    };
    let writers: Vec<_> = (0..8)
        .map(|writer| {
            let (api, disk, seen) = (api.clone(), disk.clone(), seen.clone());
            tokio::spawn(create_until_refused(api, disk, seen, writer))
        })
        .collect();
    eventually(Duration::from_secs(20), "200 writes answered", || async {
        (seen.lock().unwrap().len() > 200).then_some(())
    })
    .await;

    // While the power fails, syncs hang; whatever clients see meanwhile must survive.
    disk.cut_power();
    tokio::time::sleep(Duration::from_millis(100)).await;
    disk.power_off();
    for writer in writers {
        tokio::time::timeout(Duration::from_secs(20), writer)
            .await
            .expect("writers stop once the power is off")
            .unwrap();
    }
    stop_watching.cancel();
    watcher.await.unwrap();
    drop(api);

    let store = SqliteStore::open(&disk.image("store.db")).unwrap();
    let recovered = Api::new(Arc::new(store));
    let seen = seen.lock().unwrap().clone();
    for (revision, name) in &seen {
        let kept = recovered.get(&LEASES, Some("default"), name);
        let kept = kept.unwrap_or_else(|e| panic!("lease {name} (revision {revision}) lost: {e}"));
        assert_eq!(
            resource_version(&kept),
            *revision,
            "revision {revision} reused"
        );
    }
    let newest_seen = *seen.keys().max().unwrap();
    assert!(recovered.current_revision() >= newest_seen);
    let next = recovered
        .create(&LEASES, Some("default"), lease("after-power-loss"))
        .unwrap();
    assert!(resource_version(&next) > newest_seen);
}
