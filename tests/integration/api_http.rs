//! The API over HTTP: Kubernetes paths, shapes, status codes and error bodies.

use futures::StreamExt;
use http::Method;
use serde_json::{Value, json};
use wasmkube::client::{ClientError, DeleteParams, ListParams};
use wasmkube::testing::Cluster;

use crate::support::PodBuilder;

const PODS: &str = "/api/v1/namespaces/default/pods";

fn status(error: ClientError) -> wasmkube::client::Status {
    error
        .status()
        .cloned()
        .unwrap_or_else(|| panic!("expected a Status, got {error}"))
}

#[tokio::test]
async fn pods_can_be_created_read_replaced_listed_and_deleted() {
    let cluster = Cluster::start().await.unwrap();
    let client = cluster.client();
    let mut pod = PodBuilder::named("web").container("c", &["spin"]).build();
    pod["spec"]["nodeName"] = json!("parked");
    let created = client.create(PODS, &pod).await.unwrap();
    for server_field in ["uid", "creationTimestamp", "resourceVersion", "namespace"] {
        assert!(
            created["metadata"][server_field].is_string(),
            "{server_field} missing: {created}"
        );
    }
    assert_eq!(created["metadata"]["generation"], 1);
    let fetched = client.get(&format!("{PODS}/web")).await.unwrap();
    assert_eq!(fetched["metadata"]["uid"], created["metadata"]["uid"]);

    let mut labelled = fetched.clone();
    labelled["metadata"]["labels"] = json!({"app": "web"});
    let replaced = client
        .replace(&format!("{PODS}/web"), &labelled)
        .await
        .unwrap();
    let (before, after) = (rv(&fetched), rv(&replaced));
    assert!(
        after > before,
        "resourceVersion increases: {before} -> {after}"
    );

    let all = client
        .list("/api/v1/pods", &ListParams::default())
        .await
        .unwrap();
    assert_eq!(all["kind"], "PodList");
    assert_eq!(all["items"].as_array().unwrap().len(), 1);
    client
        .delete(
            &format!("{PODS}/web"),
            &DeleteParams {
                grace_period_seconds: Some(0),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let gone = status(client.get(&format!("{PODS}/web")).await.unwrap_err());
    assert_eq!((gone.code, gone.reason.as_str()), (404, "NotFound"));
    cluster.shutdown().await;
}

fn rv(object: &Value) -> u64 {
    object["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn generate_name_makes_unique_names() {
    let cluster = Cluster::start().await.unwrap();
    let client = cluster.client();
    let mut pod = PodBuilder::named("").container("c", &["spin"]).build();
    pod["metadata"] = json!({"generateName": "worker-"});
    let a = client.create(PODS, &pod).await.unwrap();
    let b = client.create(PODS, &pod).await.unwrap();
    let (a, b) = (
        a["metadata"]["name"].as_str().unwrap(),
        b["metadata"]["name"].as_str().unwrap(),
    );
    assert!(
        a.starts_with("worker-") && a.len() == "worker-".len() + 5,
        "{a}"
    );
    assert_ne!(a, b);
    cluster.shutdown().await;
}

#[tokio::test]
async fn conflicts_are_409_and_change_nothing() {
    let cluster = Cluster::start().await.unwrap();
    let client = cluster.client();
    // Bound to a node that does not run, so only this test writes to it.
    let mut pod = PodBuilder::named("web").container("c", &["spin"]).build();
    pod["spec"]["nodeName"] = json!("parked");
    let created = client.create(PODS, &pod).await.unwrap();
    let exists = status(client.create(PODS, &pod).await.unwrap_err());
    assert_eq!(
        (exists.code, exists.reason.as_str()),
        (409, "AlreadyExists")
    );

    let mut first = created.clone();
    first["metadata"]["labels"] = json!({"v": "1"});
    client
        .replace(&format!("{PODS}/web"), &first)
        .await
        .unwrap();
    let mut stale = created.clone();
    stale["metadata"]["labels"] = json!({"v": "2"});
    let conflict = status(
        client
            .replace(&format!("{PODS}/web"), &stale)
            .await
            .unwrap_err(),
    );
    assert_eq!((conflict.code, conflict.reason.as_str()), (409, "Conflict"));
    let now = client.get(&format!("{PODS}/web")).await.unwrap();
    assert_eq!(now["metadata"]["labels"]["v"], "1");
    cluster.shutdown().await;
}

#[tokio::test]
async fn invalid_objects_get_422_naming_each_field_and_are_not_stored() {
    let cluster = Cluster::start().await.unwrap();
    let client = cluster.client();
    let long_name = "a".repeat(64);
    let cases = [
        (
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": long_name}, "spec": {"containers": [{"name": "c", "image": "x.wasm"}]}}),
            "metadata.name",
        ),
        (
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "noimage"}, "spec": {"containers": [{"name": "c"}]}}),
            "spec.containers[0].image",
        ),
        (
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "dup"}, "spec": {"containers": [{"name": "c", "image": "x.wasm"}, {"name": "c", "image": "x.wasm"}]}}),
            "spec.containers[1].name",
        ),
        (
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "port"}, "spec": {"containers": [{"name": "c", "image": "x.wasm", "ports": [{"containerPort": 0}]}]}}),
            "spec.containers[0].ports[0].containerPort",
        ),
        (
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "Bad_Label", "labels": {"app": "-x"}}, "spec": {"containers": [{"name": "c", "image": "x.wasm"}]}}),
            "metadata.labels[app]",
        ),
    ];
    for (pod, field) in cases {
        let error = status(client.create(PODS, &pod).await.unwrap_err());
        assert_eq!(
            (error.code, error.reason.as_str()),
            (422, "Invalid"),
            "{field}: {error:?}"
        );
        assert!(
            error.causes.iter().any(|c| c.field == field),
            "{field} not named in {:?}",
            error.causes
        );
    }
    let list = client.list(PODS, &ListParams::default()).await.unwrap();
    assert!(
        list["items"].as_array().unwrap().is_empty(),
        "nothing was stored"
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn malformed_bodies_get_400_and_huge_ones_413() {
    let cluster = Cluster::start().await.unwrap();
    let client = cluster.client();
    let wrong_type = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "x.wasm", "ports": [{"containerPort": "eighty"}]}]}});
    let error = status(client.create(PODS, &wrong_type).await.unwrap_err());
    assert_eq!(error.code, 400);
    assert!(
        error
            .message
            .contains("spec.containers[0].ports[0].containerPort"),
        "{}",
        error.message
    );

    let not_json = client
        .send(Method::POST, PODS, Some("application/json"), "{nope".into())
        .await
        .unwrap_err();
    assert_eq!(status(not_json).code, 400);
    let wrong_kind = json!({"apiVersion": "v1", "kind": "Gadget", "metadata": {"name": "g"}});
    assert_eq!(
        status(client.create(PODS, &wrong_kind).await.unwrap_err()).code,
        400
    );
    let unknown = client
        .get("/api/v1/namespaces/default/gadgets")
        .await
        .unwrap_err();
    assert_eq!(status(unknown).code, 404);

    let mut huge = PodBuilder::named("huge").container("c", &["spin"]).build();
    huge["metadata"]["annotations"] = json!({"blob": "x".repeat(4 << 20)});
    let too_large = status(client.create(PODS, &huge).await.unwrap_err());
    assert_eq!(too_large.code, 413);
    assert!(
        client.list(PODS, &ListParams::default()).await.unwrap()["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn requests_without_the_token_are_unauthorized() {
    let cluster = Cluster::start().await.unwrap();
    let anonymous =
        wasmkube::client::Client::with_ca(&cluster.api_url(), "wrong-token", &cluster.ca_pem())
            .unwrap();
    assert_eq!(status(anonymous.get(PODS).await.unwrap_err()).code, 401);
    cluster.shutdown().await;
}

#[tokio::test]
async fn label_and_field_selectors_filter_lists() {
    let cluster = Cluster::start().await.unwrap();
    let client = cluster.client();
    for (name, app) in [("a", "web"), ("b", "web"), ("c", "db")] {
        let mut pod = PodBuilder::named(name).container("c", &["spin"]).build();
        pod["metadata"]["labels"] = json!({"app": app});
        client.create(PODS, &pod).await.unwrap();
    }
    let names = |list: Value| -> Vec<String> {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        names(
            client
                .list(PODS, &ListParams::labels("app=web"))
                .await
                .unwrap()
        ),
        ["a", "b"]
    );
    assert_eq!(
        names(
            client
                .list(PODS, &ListParams::labels("app notin (web)"))
                .await
                .unwrap()
        ),
        ["c"]
    );
    assert_eq!(
        names(
            client
                .list(PODS, &ListParams::fields("metadata.name=b"))
                .await
                .unwrap()
        ),
        ["b"]
    );
    let bad = client
        .list(PODS, &ListParams::fields("spec.bogus=1"))
        .await
        .unwrap_err();
    assert_eq!(status(bad).code, 400);
    cluster.shutdown().await;
}

#[tokio::test]
async fn watch_from_a_resource_version_streams_later_changes() {
    let cluster = Cluster::start().await.unwrap();
    let client = cluster.client();
    let pod = PodBuilder::named("w")
        .restart_policy("Never")
        .container("c", &["print", "x"])
        .build();
    let before = client.list(PODS, &ListParams::default()).await.unwrap();
    let from = before["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    client.create(PODS, &pod).await.unwrap();
    let mut events = client
        .watch(PODS, &ListParams::default(), Some(&from))
        .await
        .unwrap();
    let first = tokio::time::timeout(std::time::Duration::from_secs(10), events.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.object["metadata"]["name"], "w");
    assert_eq!(format!("{:?}", first.event_type), "Added");
    cluster.shutdown().await;
}

#[tokio::test]
async fn watch_from_a_compacted_version_is_410_gone() {
    let cluster = Cluster::start_with(|config| config.watch_history = 5)
        .await
        .unwrap();
    let client = cluster.client();
    for i in 0..20 {
        let mut pod = PodBuilder::named(&format!("p{i}"))
            .container("c", &["spin"])
            .build();
        pod["spec"]["nodeName"] = json!("elsewhere");
        client.create(PODS, &pod).await.unwrap();
    }
    let gone = match client.watch(PODS, &ListParams::default(), Some("1")).await {
        Err(error) => status(error),
        Ok(_) => panic!("watch from a compacted revision must fail"),
    };
    assert_eq!((gone.code, gone.reason.as_str()), (410, "Expired"));
    cluster.shutdown().await;
}

#[tokio::test]
async fn discovery_documents_describe_the_served_resources() {
    let cluster = Cluster::start().await.unwrap();
    let client = cluster.client();
    assert_eq!(client.get("/api").await.unwrap()["versions"], json!(["v1"]));
    let v1 = client.get("/api/v1").await.unwrap();
    let names: Vec<&str> = v1["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    for name in [
        "pods",
        "pods/log",
        "pods/status",
        "nodes",
        "namespaces",
        "events",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    cluster.shutdown().await;
}

#[tokio::test]
async fn collection_deletes_kubernetes_does_not_serve_are_405_and_delete_nothing() {
    let cluster = Cluster::start().await.unwrap();
    let client = cluster.client();
    let pod = PodBuilder::named("kept").container("c", &["spin"]).build();
    client.create(PODS, &pod).await.unwrap();
    for path in ["/api/v1/pods", "/api/v1/namespaces"] {
        let refused = client
            .send(Method::DELETE, path, None, Default::default())
            .await
            .unwrap_err();
        assert_eq!(status(refused).code, 405, "{path}");
    }
    client.get(&format!("{PODS}/kept")).await.unwrap();
    client.get("/api/v1/namespaces/default").await.unwrap();
    let deleted = client
        .send(Method::DELETE, PODS, None, Default::default())
        .await
        .unwrap();
    let deleted: Value = serde_json::from_slice(&deleted).unwrap();
    assert_eq!(deleted["items"][0]["metadata"]["name"], "kept");
    cluster.shutdown().await;
}
