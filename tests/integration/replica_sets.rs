//! ReplicaSets on the embedded node: replicas kept running, scaling, adoption and release.

use std::time::Duration;

use serde_json::{Value, json};
use wasmkube::api::kinds::{PODS, REPLICA_SETS};
use wasmkube::api::{Api, DeleteOptions, ListOptions};
use wasmkube::testing::Cluster;

use crate::support::{PodBuilder, eventually, exerciser, phase};

const REPLICA_SETS_PATH: &str = "/apis/apps/v1/namespaces/default/replicasets";
/// Pods start in well under a second; this leaves room for a loaded machine.
const CONVERGE: Duration = Duration::from_secs(30);

/// A ReplicaSet of `replicas` exerciser pods that sleep, labelled and selected by `app`.
fn replica_set(name: &str, app: &str, replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": app}},
            "template": {
                "metadata": {"labels": {"app": app}},
                "spec": {"containers": [{"name": "c", "image": exerciser(), "args": ["sleep", "600000"]}]},
            },
        },
    })
}

fn uid(object: &Value) -> &str {
    object["metadata"]["uid"].as_str().unwrap_or_default()
}

fn name(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or_default()
}

fn controller_uid(pod: &Value) -> Option<&str> {
    pod["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"] == true)?["uid"]
        .as_str()
}

/// The pods the ReplicaSet controls that are not being deleted.
fn owned_pods(api: &Api, owner_uid: &str) -> Vec<Value> {
    let pods = api
        .list(&PODS, Some("default"), &ListOptions::default())
        .unwrap();
    pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| {
            controller_uid(p) == Some(owner_uid) && p["metadata"]["deletionTimestamp"].is_null()
        })
        .cloned()
        .collect()
}

/// Waits until the ReplicaSet has exactly `count` live pods, all Running, and reports them ready.
async fn wait_for_ready(api: &Api, rs_name: &str, count: usize) -> Vec<Value> {
    let what = format!("{count} ready pods of {rs_name}");
    eventually(CONVERGE, &what, || async {
        let rs = api.get(&REPLICA_SETS, Some("default"), rs_name).ok()?;
        let pods = owned_pods(api, uid(&rs));
        let running = pods.len() == count && pods.iter().all(|p| phase(p) == "Running");
        let status = &rs["status"];
        let reported = status["readyReplicas"] == count
            && status["replicas"] == count
            && status["availableReplicas"] == count;
        (running && reported && status["observedGeneration"] == rs["metadata"]["generation"])
            .then_some(pods)
    })
    .await
}

#[tokio::test]
async fn a_replica_set_keeps_three_pods_running_and_replaces_a_deleted_one() {
    let cluster = Cluster::start().await.unwrap();
    let (api, client) = (cluster.api(), cluster.client());
    let created = client
        .create(REPLICA_SETS_PATH, &replica_set("web", "web", 3))
        .await
        .unwrap();
    assert_eq!(created["status"]["replicas"], 0);
    let pods = wait_for_ready(api, "web", 3).await;
    for pod in &pods {
        let owner = &pod["metadata"]["ownerReferences"][0];
        assert_eq!(owner["kind"], "ReplicaSet");
        assert_eq!(owner["blockOwnerDeletion"], true);
        assert!(
            name(pod).starts_with("web-") && name(pod).len() == "web-".len() + 5,
            "{}",
            name(pod)
        );
    }

    let doomed = name(&pods[0]).to_string();
    api.delete(&PODS, Some("default"), &doomed, &DeleteOptions::default())
        .unwrap();
    let replaced = wait_for_ready(api, "web", 3).await;
    assert!(
        replaced.iter().all(|p| name(p) != doomed),
        "{doomed} was replaced"
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn scaling_through_the_scale_subresource_converges_up_and_down() {
    let cluster = Cluster::start().await.unwrap();
    let (api, client) = (cluster.api(), cluster.client());
    client
        .create(REPLICA_SETS_PATH, &replica_set("web", "web", 2))
        .await
        .unwrap();
    wait_for_ready(api, "web", 2).await;
    let scale_path = format!("{REPLICA_SETS_PATH}/web/scale");
    let scale = client.get(&scale_path).await.unwrap();
    assert_eq!(
        (scale["kind"].as_str(), scale["apiVersion"].as_str()),
        (Some("Scale"), Some("autoscaling/v1"))
    );
    assert_eq!(scale["spec"]["replicas"], 2);
    assert_eq!(scale["status"]["selector"], "app=web");

    client
        .patch(&scale_path, &json!({"spec": {"replicas": 5}}))
        .await
        .unwrap();
    wait_for_ready(api, "web", 5).await;

    let mut scale = client.get(&scale_path).await.unwrap();
    scale["spec"]["replicas"] = json!(1);
    client.replace(&scale_path, &scale).await.unwrap();
    let survivors = wait_for_ready(api, "web", 1).await;
    let rs = api.get(&REPLICA_SETS, Some("default"), "web").unwrap();
    eventually(CONVERGE, "the surplus pods to be gone", || async {
        let pods = api
            .list(&PODS, Some("default"), &ListOptions::default())
            .unwrap();
        let left: Vec<_> = pods["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| controller_uid(p) == Some(uid(&rs)))
            .cloned()
            .collect();
        (left.len() == 1 && name(&left[0]) == name(&survivors[0])).then_some(())
    })
    .await;
    assert_eq!(
        rs["metadata"]["generation"], 3,
        "each scale is a spec change"
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn an_orphan_pod_with_matching_labels_is_adopted() {
    let cluster = Cluster::start().await.unwrap();
    let api = cluster.api();
    let mut orphan = PodBuilder::named("stray")
        .container("c", &["sleep", "600000"])
        .build();
    orphan["metadata"]["labels"] = json!({"app": "web"});
    api.create(&PODS, Some("default"), orphan).unwrap();
    crate::support::wait_for_pod(api, "default", "stray", "the orphan to run", |p| {
        phase(p) == "Running"
    })
    .await;
    api.create(&REPLICA_SETS, Some("default"), replica_set("web", "web", 2))
        .unwrap();
    let pods = wait_for_ready(api, "web", 2).await;
    assert!(
        pods.iter().any(|p| name(p) == "stray"),
        "the orphan counts as one of the two"
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn relabelling_an_owned_pod_releases_it_and_a_replacement_is_created() {
    let cluster = Cluster::start().await.unwrap();
    let (api, client) = (cluster.api(), cluster.client());
    client
        .create(REPLICA_SETS_PATH, &replica_set("web", "web", 2))
        .await
        .unwrap();
    let pods = wait_for_ready(api, "web", 2).await;
    let relabelled = name(&pods[0]).to_string();
    let pod_path = format!("/api/v1/namespaces/default/pods/{relabelled}");
    client
        .patch(
            &pod_path,
            &json!({"metadata": {"labels": {"app": "debug"}}}),
        )
        .await
        .unwrap();

    let released = eventually(CONVERGE, "the relabelled pod to be released", || async {
        let pod = api.get(&PODS, Some("default"), &relabelled).ok()?;
        controller_uid(&pod).is_none().then_some(pod)
    })
    .await;
    assert!(
        released["metadata"]["deletionTimestamp"].is_null(),
        "released, not deleted"
    );
    let now = wait_for_ready(api, "web", 2).await;
    assert!(now.iter().all(|p| name(p) != relabelled));
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_selector_that_does_not_match_the_template_is_refused_naming_the_field() {
    let cluster = Cluster::start().await.unwrap();
    let client = cluster.client();
    let mut bad = replica_set("web", "web", 1);
    bad["spec"]["template"]["metadata"]["labels"] = json!({"app": "other"});
    let error = client.create(REPLICA_SETS_PATH, &bad).await.unwrap_err();
    let status = error
        .status()
        .cloned()
        .unwrap_or_else(|| panic!("expected a Status, got {error}"));
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert_eq!(status.causes[0].field, "spec.template.metadata.labels");
    assert!(
        status
            .message
            .contains("`selector` does not match template `labels`"),
        "{}",
        status.message
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn discovery_lists_replica_sets_with_their_status_and_scale() {
    let cluster = Cluster::start().await.unwrap();
    let client = cluster.client();
    let groups = client.get("/apis").await.unwrap();
    let apps = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "apps")
        .expect("apps group");
    assert_eq!(apps["preferredVersion"]["groupVersion"], "apps/v1");
    let resources = client.get("/apis/apps/v1").await.unwrap();
    let names: Vec<&str> = resources["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "replicasets",
            "replicasets/status",
            "replicasets/scale",
            "deployments",
            "deployments/status",
            "deployments/scale"
        ]
    );
    let rs = resources["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "replicasets")
        .unwrap();
    assert_eq!(rs["shortNames"], json!(["rs"]));
    cluster.shutdown().await;
}
