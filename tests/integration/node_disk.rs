//! The embedded node's disk: emptyDir size limits and ephemeral-storage limits evict, a node
//! low on disk reports DiskPressure and evicts, guest writes stop above the store's reserve,
//! and container logs stay within their rotation.

use std::time::Duration;

use serde_json::{Value, json};
use wasmkube::api::kinds::{NODES, PODS};
use wasmkube::cluster::ClusterConfig;
use wasmkube::node::allocatable::DiskThreshold;
use wasmkube::testing::Cluster;

use crate::support::{PodBuilder, container_status, eventually, phase, wait_for_event};

/// A cluster whose node measures its disk every 200 ms.
async fn cluster_with(adjust: impl FnOnce(&mut ClusterConfig)) -> Cluster {
    Cluster::start_with(|config| {
        config.node_limits.housekeeping_interval = Duration::from_millis(200);
        adjust(config);
    })
    .await
    .unwrap()
}

/// Waits until pod `name` has been evicted; returns it.
async fn evicted(cluster: &Cluster, name: &str) -> Value {
    eventually(Duration::from_secs(30), "the pod to be evicted", || async {
        let pod = cluster.api().get(&PODS, Some("default"), name).ok()?;
        (pod["status"]["reason"] == "Evicted").then_some(pod)
    })
    .await
}

fn writer(name: &str, volume: Value) -> PodBuilder {
    PodBuilder::named(name)
        .container("writer", &["write-file-forever", "/data/f"])
        .with(
            "volumeMounts",
            json!([{"name": "data", "mountPath": "/data"}]),
        )
        .volume(volume)
}

#[tokio::test]
async fn a_pod_writing_past_its_empty_dir_size_limit_is_evicted_and_its_volume_removed() {
    let cluster = cluster_with(|_| {}).await;
    let api = cluster.api();
    let pod = writer(
        "filler",
        json!({"name": "data", "emptyDir": {"sizeLimit": "10Mi"}}),
    )
    .build();
    let created = api.create(&PODS, Some("default"), pod).unwrap();
    let pod = evicted(&cluster, "filler").await;
    assert_eq!(phase(&pod), "Failed");
    assert_eq!(
        pod["status"]["message"],
        "Usage of EmptyDir volume \"data\" exceeds the limit \"10Mi\"."
    );
    let state = &container_status(&pod, "writer")["state"];
    assert!(state["terminated"].is_object(), "{state}");
    let uid = created["metadata"]["uid"].as_str().unwrap();
    let volumes = cluster.data_dir().join("pods").join(uid).join("volumes");
    eventually(
        Duration::from_secs(10),
        "the volume to be removed",
        || async { (!volumes.exists()).then_some(()) },
    )
    .await;
    wait_for_event(api, "default", "filler", "Evicted").await;
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_pod_past_its_containers_ephemeral_storage_limit_is_evicted() {
    let cluster = cluster_with(|_| {}).await;
    let pod = writer("hoarder", json!({"name": "data", "emptyDir": {}}))
        .with("resources", json!({"limits": {"ephemeral-storage": "5Mi"}}))
        .build();
    cluster.api().create(&PODS, Some("default"), pod).unwrap();
    let pod = evicted(&cluster, "hoarder").await;
    assert_eq!(
        pod["status"]["message"],
        "Pod ephemeral local storage usage exceeds the total limit of containers 5Mi."
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_node_below_its_eviction_threshold_reports_disk_pressure_and_evicts() {
    // Free space is always below a threshold larger than any disk.
    let cluster = cluster_with(|config| {
        config.node_limits.eviction_hard = DiskThreshold::Bytes(u64::MAX / 2);
    })
    .await;
    let api = cluster.api();
    eventually(
        Duration::from_secs(20),
        "DiskPressure on the node",
        || async {
            let node = api.get(&NODES, None, "node-1").ok()?;
            let conditions = node["status"]["conditions"].as_array()?.clone();
            conditions
                .iter()
                .any(|c| c["type"] == "DiskPressure" && c["status"] == "True")
                .then_some(())
        },
    )
    .await;
    let pod = PodBuilder::named("bystander")
        .container("c", &["sleep", "600000"])
        .build();
    api.create(&PODS, Some("default"), pod).unwrap();
    let pod = evicted(&cluster, "bystander").await;
    let message = pod["status"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("The node was low on resource: ephemeral-storage."),
        "{message}"
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn guest_writes_stop_above_the_space_kept_for_the_store_which_keeps_committing() {
    // Keep more than the disk has free: the guests have no room at all.
    let cluster = cluster_with(|config| config.node_limits.reserved_storage = u64::MAX / 2).await;
    let api = cluster.api();
    let pod = writer("blocked", json!({"name": "data", "emptyDir": {}}))
        .restart_policy("Never")
        .build();
    api.create(&PODS, Some("default"), pod).unwrap();
    let pod = eventually(Duration::from_secs(20), "the writer to fail", || async {
        let pod = api.get(&PODS, Some("default"), "blocked").ok()?;
        (phase(&pod) == "Failed").then_some(pod)
    })
    .await;
    assert_eq!(
        container_status(&pod, "writer")["state"]["terminated"]["exitCode"],
        1
    );
    let log = crate::support::pod_logs(&cluster, "default", "blocked", "writer").await;
    assert!(
        log.contains("write-file-forever /data/f after 0 KiB"),
        "{log}"
    );
    let after = PodBuilder::named("after")
        .container("c", &["print", "x"])
        .build();
    api.create(&PODS, Some("default"), after)
        .expect("the store still commits");
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_guest_flooding_stdout_leaves_at_most_its_rotation_of_logs() {
    let cluster = cluster_with(|config| {
        config.node_limits.container_log_max_size = 1 << 20;
        config.node_limits.container_log_max_files = 3;
    })
    .await;
    let api = cluster.api();
    let pod = PodBuilder::named("flood")
        .restart_policy("Always")
        .container("c", &["flood-stdout", "1500", "100"])
        .build();
    let created = api.create(&PODS, Some("default"), pod).unwrap();
    eventually(Duration::from_secs(30), "two restarts", || async {
        let pod = api.get(&PODS, Some("default"), "flood").ok()?;
        (container_status(&pod, "c")["restartCount"].as_i64() >= Some(2)).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let uid = created["metadata"]["uid"].as_str().unwrap();
    let dir = cluster.data_dir().join("pods").join(uid).join("logs/c");
    let files: Vec<(String, u64)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .collect();
    assert!(files.len() <= 3, "{files:?}");
    assert!(files.iter().all(|(_, len)| *len <= 1 << 20), "{files:?}");
    cluster.shutdown().await;
}
