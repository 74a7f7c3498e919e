//! Volumes on the embedded node: sub paths, size limits, private directories.

use std::os::unix::fs::PermissionsExt;

use serde_json::json;
use wasmkube::api::kinds::PODS;
use wasmkube::testing::Cluster;

use crate::support::{PodBuilder, container_status, pod_logs, wait_for_pod};

#[tokio::test]
async fn sub_paths_mount_directories_inside_a_volume_and_bad_ones_are_refused() {
    let cluster = Cluster::start().await.unwrap();
    let api = cluster.api();
    let pod = PodBuilder::named("subpaths")
        .restart_policy("Never")
        .empty_dir("data")
        .container("writer", &["write", "/out/note", "in-a-sub-path"])
        .with(
            "volumeMounts",
            json!([{"name": "data", "mountPath": "/out", "subPathExpr": "by-pod/$(POD)"}]),
        )
        .with(
            "env",
            json!([{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]),
        )
        .container(
            "reader",
            &["sleep", "500", "read", "/all/by-pod/subpaths/note"],
        )
        .with(
            "volumeMounts",
            json!([{"name": "data", "mountPath": "/all"}]),
        )
        .build();
    api.create(&PODS, Some("default"), pod).unwrap();
    wait_for_pod(api, "default", "subpaths", "the reader to finish", |p| {
        container_status(p, "reader")["state"]["terminated"].is_object()
    })
    .await;
    let read = pod_logs(&cluster, "default", "subpaths", "reader").await;
    assert_eq!(read.trim(), "in-a-sub-path");

    let escaping = PodBuilder::named("escaping")
        .empty_dir("data")
        .container("c", &["print", "x"])
        .with(
            "volumeMounts",
            json!([{"name": "data", "mountPath": "/d", "subPath": "../../etc"}]),
        )
        .build();
    let error = api.create(&PODS, Some("default"), escaping).unwrap_err();
    assert_eq!(error.code(), 422);
    assert!(
        error.to_string().contains("volumeMounts[0].subPath"),
        "{error}"
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn the_data_dir_and_pod_dirs_are_private_and_the_store_is_owner_only() {
    let cluster = Cluster::start().await.unwrap();
    let api = cluster.api();
    let pod = PodBuilder::named("private")
        .empty_dir("data")
        .container("c", &["write", "/d/f", "x", "sleep", "60000"])
        .with("volumeMounts", json!([{"name": "data", "mountPath": "/d"}]))
        .build();
    let created = api.create(&PODS, Some("default"), pod).unwrap();
    wait_for_pod(api, "default", "private", "the container to run", |p| {
        container_status(p, "c")["state"]["running"].is_object()
    })
    .await;
    let uid = created["metadata"]["uid"].as_str().unwrap();
    let mode = |path: &std::path::Path| {
        std::fs::metadata(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .permissions()
            .mode()
            & 0o777
    };
    let data = cluster.data_dir();
    assert_eq!(mode(data), 0o700);
    assert_eq!(mode(&data.join("store.db")), 0o600);
    assert_eq!(mode(&data.join("pods")), 0o700);
    assert_eq!(mode(&data.join("pods").join(uid)), 0o700);
    assert_eq!(
        mode(&data.join("pods").join(uid).join("volumes/data")),
        0o700
    );
    cluster.shutdown().await;
}
