//! The store's waits (syncs to disk, history reads) stall nobody else: not the other tasks of
//! the async runtime, not writers during a watch that replays a long history.

use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use wasmkube::api::kinds::LEASES;
use wasmkube::api::{Api, ListOptions};
use wasmkube::client::{ListParams, WatchEvent, WatchStream};
use wasmkube::testing::Cluster;

use crate::power_loss::Disk;
use crate::support::{api_on, lease, resource_version};

const LEASES_PATH: &str = "/apis/coordination.k8s.io/v1/namespaces/default/leases";
const LIMIT: Duration = Duration::from_secs(20);

#[test]
fn a_read_answers_while_a_write_on_the_only_worker_waits_for_its_sync() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let disk = Disk::new(dir.path());
    let api = api_on(&disk);
    api.create(&LEASES, Some("default"), lease("kept")).unwrap();

    let held = disk.hold_syncs();
    let writer = {
        let api = api.clone();
        runtime.spawn(async move { api.create(&LEASES, Some("default"), lease("held")) })
    };
    assert!(disk.wait_for_held_sync(LIMIT), "the write syncs");
    let (answer, answered) = std::sync::mpsc::channel();
    runtime.spawn({
        let api = api.clone();
        async move { answer.send(api.get(&LEASES, Some("default"), "kept")) }
    });
    let read = answered.recv_timeout(LIMIT);
    drop(held);
    assert!(
        matches!(read, Ok(Ok(_))),
        "a read waited for another request's sync to disk"
    );
    runtime.block_on(writer).unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_during_a_watch_of_20000_events_of_history_answers_before_the_backlog_is_sent() {
    let cluster = Cluster::start_with(|config| config.embedded_node = false)
        .await
        .unwrap();
    let api = cluster.api().clone();
    // Bodies of 1 KiB: 20 MB of history, more than the connection can buffer unread.
    let padding = "x".repeat(1024);
    for batch in 0..40 {
        let leases = (0..500)
            .map(|i| {
                let mut lease = lease(&format!("h{batch}-{i}"));
                lease["metadata"]["annotations"] = json!({"padding": padding});
                lease
            })
            .collect();
        api.create_many(&LEASES, Some("default"), leases).unwrap();
    }
    let oldest = api.current_revision() - 20_000;
    let history = history_after(&api, oldest);
    let client = cluster.client();
    let mut events = client
        .watch(
            LEASES_PATH,
            &ListParams::default(),
            Some(&oldest.to_string()),
        )
        .await
        .unwrap();
    let first = next(&mut events).await;

    // Only one event of the backlog has been read; the write must not wait for the rest.
    let written = tokio::time::timeout(LIMIT, client.create(LEASES_PATH, &lease("during")))
        .await
        .expect("a write during the watch answers")
        .unwrap();

    let mut revisions = vec![resource_version(&first.object)];
    loop {
        let event = next(&mut events).await;
        revisions.push(resource_version(&event.object));
        if event.object["metadata"]["name"] == "during" {
            break;
        }
    }
    let expected: Vec<u64> = history
        .into_iter()
        .chain([resource_version(&written)])
        .collect();
    assert!(
        revisions == expected,
        "history then the write, each once, in order: {} events for {}",
        revisions.len(),
        expected.len()
    );
    drop(events);
    cluster.shutdown().await;
}

/// The revisions of the leases written after `revision`, in order.
fn history_after(api: &Api, revision: u64) -> Vec<u64> {
    let list = api
        .list(&LEASES, Some("default"), &ListOptions::default())
        .unwrap();
    let mut revisions: Vec<u64> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(resource_version)
        .filter(|rv| *rv > revision)
        .collect();
    revisions.sort();
    revisions
}

async fn next(events: &mut WatchStream) -> WatchEvent {
    let event = tokio::time::timeout(LIMIT, events.next()).await;
    event.expect("the next watch event").unwrap().unwrap()
}
