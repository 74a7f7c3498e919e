//! The `pods/{name}/eviction` subresource over HTTP: its status codes, and discovery
//! advertising it as kubectl drain expects.

use serde_json::json;
use wasmkube::api::kinds::PODS;
use wasmkube::testing::Cluster;

use crate::support::PodBuilder;

#[tokio::test]
async fn eviction_subresource_answers_201_404_and_400() {
    let cluster = Cluster::start().await.unwrap();
    let client = cluster.client();
    let mut pod = PodBuilder::named("target")
        .container("c", &["sleep", "600000"])
        .build();
    pod["spec"]["nodeName"] = json!("parked");
    cluster.api().create(&PODS, Some("default"), pod).unwrap();
    let eviction = |name: &str| {
        json!({"apiVersion": "policy/v1", "kind": "Eviction",
               "metadata": {"name": name, "namespace": "default"},
               "deleteOptions": {"gracePeriodSeconds": 0}})
    };
    let path = |name: &str| format!("/api/v1/namespaces/default/pods/{name}/eviction");

    let mismatched = client
        .create(&path("target"), &eviction("other"))
        .await
        .unwrap_err();
    assert_eq!(mismatched.code(), Some(400));
    assert!(
        mismatched.to_string().contains("metadata.name"),
        "{mismatched}"
    );
    let missing = client
        .create(&path("nobody"), &eviction("nobody"))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Some(404));
    assert!(cluster.api().get(&PODS, Some("default"), "target").is_ok());

    let status = client
        .create(&path("target"), &eviction("target"))
        .await
        .unwrap();
    assert_eq!(
        (status["kind"].clone(), status["code"].clone()),
        (json!("Status"), json!(201))
    );
    assert_eq!(status["status"], "Success");
    assert!(
        cluster.api().get(&PODS, Some("default"), "target").is_err(),
        "grace 0 deletes at once"
    );

    let discovery = client.get("/api/v1").await.unwrap();
    let entry = discovery["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "pods/eviction")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (
            entry["group"].clone(),
            entry["version"].clone(),
            entry["kind"].clone()
        ),
        (json!("policy"), json!("v1"), json!("Eviction"))
    );
    cluster.shutdown().await;
}
