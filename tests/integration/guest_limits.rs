//! Guests that cannot hurt the control plane: a BestEffort pod allocating without end, or
//! opening files without end, ends with a clear reason while the API keeps serving and the
//! node's other pods keep running; LimitRange defaults reach new pods.

use std::time::Duration;

use serde_json::{Value, json};
use wasmkube::api::kinds::{LIMIT_RANGES, PODS};
use wasmkube::testing::Cluster;

use crate::support::{PodBuilder, container_status, eventually, phase};

/// A pod that prints a line every 100 ms for ten minutes: it must keep running meanwhile.
fn steady() -> Value {
    PodBuilder::named("steady")
        .empty_dir("data")
        .container("c", &["append-every", "100", "/data/ticks", "tick"])
        .with(
            "volumeMounts",
            json!([{"name": "data", "mountPath": "/data"}]),
        )
        .build()
}

/// Waits for container `c` of pod `name` to end; returns its `terminated` state.
async fn terminated(cluster: &Cluster, name: &str) -> Value {
    eventually(Duration::from_secs(60), "the container to end", || async {
        let pod = cluster.api().get(&PODS, Some("default"), name).ok()?;
        let state = container_status(&pod, "c")["state"]["terminated"].clone();
        state.is_object().then_some(state)
    })
    .await
}

/// The API answers over HTTPS, and `steady` is running, never restarted.
async fn cluster_is_unharmed(cluster: &Cluster) {
    let pods = cluster
        .client()
        .get("/api/v1/namespaces/default/pods")
        .await
        .expect("the API server still serves");
    assert!(
        pods["items"]
            .as_array()
            .is_some_and(|items| items.len() >= 2)
    );
    let steady = cluster.api().get(&PODS, Some("default"), "steady").unwrap();
    assert_eq!(phase(&steady), "Running");
    let status = container_status(&steady, "c");
    assert!(status["state"]["running"].is_object(), "{status}");
    assert_eq!(status["restartCount"], 0);
}

async fn start_steady(cluster: &Cluster) {
    cluster
        .api()
        .create(&PODS, Some("default"), steady())
        .unwrap();
    eventually(Duration::from_secs(30), "steady to run", || async {
        let pod = cluster.api().get(&PODS, Some("default"), "steady").ok()?;
        container_status(&pod, "c")["state"]["running"]
            .is_object()
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_best_effort_pod_allocating_without_end_is_oom_killed_and_harms_nothing_else() {
    let cluster = Cluster::start_with(|config| {
        config.node_limits.default_container_memory = Some(64 << 20);
    })
    .await
    .unwrap();
    start_steady(&cluster).await;
    let hog = PodBuilder::named("hog")
        .restart_policy("Never")
        .container("c", &["allocate-forever"])
        .build();
    let created = cluster.api().create(&PODS, Some("default"), hog).unwrap();
    assert_eq!(created["status"]["qosClass"], "BestEffort");
    let end = terminated(&cluster, "hog").await;
    assert_eq!(end["reason"], "OOMKilled", "{end}");
    assert_eq!(end["exitCode"], 137);
    let message = end["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("the container's memory limit of 67108864 bytes"),
        "{message}"
    );
    cluster_is_unharmed(&cluster).await;
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_pod_opening_files_without_end_ends_at_its_limit_and_harms_nothing_else() {
    let cluster = Cluster::start_with(|config| config.node_limits.pod_max_open_files = 64)
        .await
        .unwrap();
    start_steady(&cluster).await;
    let opener = PodBuilder::named("opener")
        .restart_policy("Never")
        .empty_dir("data")
        .container("c", &["open-files-forever", "/data/f"])
        .with(
            "volumeMounts",
            json!([{"name": "data", "mountPath": "/data"}]),
        )
        .build();
    cluster
        .api()
        .create(&PODS, Some("default"), opener)
        .unwrap();
    let end = terminated(&cluster, "opener").await;
    assert_eq!(end["reason"], "Error", "{end}");
    let message = end["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("too many open files: the pod's limit of 64 open files was reached"),
        "{message}"
    );
    cluster_is_unharmed(&cluster).await;
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_namespaces_limit_range_defaults_reach_new_pods_and_bound_their_memory() {
    let cluster = Cluster::start().await.unwrap();
    let api = cluster.api();
    let range = json!({"metadata": {"name": "defaults"}, "spec": {"limits": [{"type": "Container",
        "default": {"memory": "32Mi"}, "defaultRequest": {"memory": "16Mi"}}]}});
    api.create(&LIMIT_RANGES, Some("default"), range).unwrap();
    let hog = PodBuilder::named("hog")
        .restart_policy("Never")
        .container("c", &["allocate-forever"])
        .build();
    let created = api.create(&PODS, Some("default"), hog).unwrap();
    let resources = &created["spec"]["containers"][0]["resources"];
    assert_eq!(resources["limits"]["memory"], "32Mi");
    assert_eq!(resources["requests"]["memory"], "16Mi");
    assert_eq!(created["status"]["qosClass"], "Burstable");
    assert_eq!(
        created["metadata"]["annotations"]["kubernetes.io/limit-ranger"],
        "LimitRanger plugin set: memory request for container c; memory limit for container c"
    );
    let end = terminated(&cluster, "hog").await;
    assert_eq!(end["reason"], "OOMKilled", "{end}");
    assert!(
        end["message"]
            .as_str()
            .unwrap_or_default()
            .contains("limit of 33554432 bytes"),
        "{end}"
    );
    cluster.shutdown().await;
}
