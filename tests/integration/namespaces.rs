//! Namespaces: the system ones exist, deleting one deletes its contents, and a missing or
//! terminating namespace takes no new objects.

use std::time::Duration;

use serde_json::json;
use wasmkube::api::kinds::{NAMESPACES, PODS};
use wasmkube::api::{ApiError, DeleteOptions};
use wasmkube::testing::Cluster;

use crate::support::{PodBuilder, eventually, phase, wait_for_pod};

#[tokio::test]
async fn default_and_kube_system_exist_from_the_start_and_cannot_be_deleted() {
    let cluster = Cluster::start().await.unwrap();
    let api = cluster.api();
    for name in ["default", "kube-system"] {
        let ns = api.get(&NAMESPACES, None, name).unwrap();
        assert_eq!(ns["status"]["phase"], "Active");
        let refused = api
            .delete(&NAMESPACES, None, name, &DeleteOptions::default())
            .unwrap_err();
        assert_eq!(refused.code(), 403);
    }
    cluster.shutdown().await;
}

#[tokio::test]
async fn objects_cannot_be_created_in_a_missing_namespace() {
    let cluster = Cluster::start().await.unwrap();
    let pod = PodBuilder::named("lost")
        .container("c", &["print", "x"])
        .build();
    let error = cluster
        .api()
        .create(&PODS, Some("nowhere"), pod)
        .unwrap_err();
    assert!(
        matches!(error, ApiError::NotFound { ref resource, .. } if resource == "namespaces"),
        "{error}"
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn deleting_a_namespace_deletes_its_pods_then_the_namespace() {
    let cluster = Cluster::start().await.unwrap();
    let api = cluster.api();
    api.create(&NAMESPACES, None, json!({"metadata": {"name": "team"}}))
        .unwrap();
    for name in ["a", "b"] {
        let pod = PodBuilder::named(name)
            .container("c", &["spin"])
            .with("resources", json!({"limits": {"cpu": "50m"}}))
            .build();
        api.create(&PODS, Some("team"), pod).unwrap();
        wait_for_pod(api, "team", name, "Running", |p| phase(p) == "Running").await;
    }
    let marked = api
        .delete(&NAMESPACES, None, "team", &DeleteOptions::default())
        .unwrap();
    assert_eq!(marked["status"]["phase"], "Terminating");
    let late = PodBuilder::named("late")
        .container("c", &["print", "x"])
        .build();
    let refused = api.create(&PODS, Some("team"), late).unwrap_err();
    assert_eq!(refused.code(), 403, "{refused}");
    eventually(Duration::from_secs(20), "namespace gone", || async {
        api.get(&NAMESPACES, None, "team").is_err().then_some(())
    })
    .await;
    let left = api.list(&PODS, Some("team"), &Default::default()).unwrap();
    assert_eq!(left["items"].as_array().unwrap().len(), 0);
    cluster.shutdown().await;
}
