//! Deployments on the embedded node: hashed ReplicaSets, rolling updates, rollback by
//! template, and the conformance figures of a stuck rollout scaled mid-way.

use std::time::Duration;

use serde_json::{Value, json};
use wasmkube::api::kinds::{DEPLOYMENTS, PODS, REPLICA_SETS};
use wasmkube::api::patch::PatchType;
use wasmkube::api::{Api, ListOptions, Part};
use wasmkube::testing::Cluster;

use crate::support::{eventually, exerciser};

const DEPLOYMENTS_PATH: &str = "/apis/apps/v1/namespaces/default/deployments";
/// Pods start in well under a second; this leaves room for a loaded machine.
const CONVERGE: Duration = Duration::from_secs(60);

/// A Deployment of `replicas` exerciser pods running `args`, selected by `app: web`.
fn deployment(replicas: i64, args: &[&str]) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "annotations": {"kubernetes.io/change-cause": "first"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": exerciser(), "args": args}]},
            },
        },
    })
}

fn name(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or_default()
}

fn revision(object: &Value) -> &str {
    object["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
        .as_str()
        .unwrap_or_default()
}

/// The Deployment's ReplicaSets, oldest first.
fn replica_sets(api: &Api, deployment_uid: &Value) -> Vec<Value> {
    let list = api
        .list(&REPLICA_SETS, Some("default"), &ListOptions::default())
        .unwrap();
    let mut owned: Vec<Value> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|rs| rs["metadata"]["ownerReferences"][0]["uid"] == *deployment_uid)
        .cloned()
        .collect();
    owned.sort_by_key(|rs| {
        rs["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    });
    owned
}

fn get_deployment(api: &Api) -> Value {
    api.get(&DEPLOYMENTS, Some("default"), "web").unwrap()
}

fn set_template_args(api: &Api, args: &[&str]) {
    let patch = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": exerciser(), "args": args}]}}}});
    api.patch(
        &DEPLOYMENTS,
        Some("default"),
        "web",
        &patch,
        PatchType::Merge,
        Part::Main,
    )
    .unwrap();
}

/// Waits until the Deployment reports `count` updated, ready and available replicas of its
/// latest generation, and its rollout complete.
pub async fn wait_for_rollout(api: &Api, count: i64) -> Value {
    let what = format!("a complete rollout of {count} replicas");
    eventually(CONVERGE, &what, || async {
        let deployment = get_deployment(api);
        let status = &deployment["status"];
        let progressing = status["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "Progressing")?;
        let done = [
            "replicas",
            "updatedReplicas",
            "readyReplicas",
            "availableReplicas",
        ]
        .iter()
        .all(|field| status[field] == count)
            && status["observedGeneration"] == deployment["metadata"]["generation"]
            && progressing["reason"] == "NewReplicaSetAvailable";
        done.then_some(deployment)
    })
    .await
}

/// Waits until the ReplicaSets (oldest first) have these `spec.replicas`.
async fn wait_for_sizes(api: &Api, uid: &Value, sizes: &[i64]) -> Vec<Value> {
    let what = format!("ReplicaSets of sizes {sizes:?}");
    eventually(CONVERGE, &what, || async {
        let sets = replica_sets(api, uid);
        let actual: Vec<i64> = sets
            .iter()
            .map(|rs| rs["spec"]["replicas"].as_i64().unwrap_or(-1))
            .collect();
        (actual == sizes).then_some(sets)
    })
    .await
}

#[tokio::test]
async fn a_deployment_runs_its_pods_through_a_replica_set_named_by_the_template_hash() {
    let cluster = Cluster::start().await.unwrap();
    let (api, client) = (cluster.api(), cluster.client());
    let created = client
        .create(DEPLOYMENTS_PATH, &deployment(3, &["sleep", "600000"]))
        .await
        .unwrap();
    assert_eq!(
        created["spec"]["strategy"]["rollingUpdate"]["maxSurge"],
        "25%"
    );
    let deployment = wait_for_rollout(api, 3).await;
    assert_eq!(deployment["status"]["unavailableReplicas"], 0);
    assert_eq!(revision(&deployment), "1");
    let available = deployment["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Available")
        .unwrap();
    assert_eq!(
        (&available["status"], &available["reason"]),
        (&json!("True"), &json!("MinimumReplicasAvailable"))
    );

    let sets = replica_sets(api, &created["metadata"]["uid"]);
    assert_eq!(sets.len(), 1);
    let rs = &sets[0];
    let hash = rs["metadata"]["labels"]["pod-template-hash"]
        .as_str()
        .unwrap();
    assert_eq!(name(rs), format!("web-{hash}"));
    assert_eq!(
        rs["spec"]["selector"]["matchLabels"]["pod-template-hash"],
        hash
    );
    assert_eq!(
        rs["spec"]["template"]["metadata"]["labels"]["pod-template-hash"],
        hash
    );
    assert_eq!(rs["status"]["readyReplicas"], 3);
    assert_eq!(revision(rs), "1");
    assert_eq!(
        rs["metadata"]["annotations"]["kubernetes.io/change-cause"],
        "first"
    );
    assert_eq!(rs["metadata"]["ownerReferences"][0]["kind"], "Deployment");

    let scale = client
        .get(&format!("{DEPLOYMENTS_PATH}/web/scale"))
        .await
        .unwrap();
    assert_eq!(scale["spec"]["replicas"], 3);
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_template_change_rolls_out_and_the_old_template_rolls_back_to_its_replica_set() {
    let cluster = Cluster::start().await.unwrap();
    let api = cluster.api();
    let created = api
        .create(
            &DEPLOYMENTS,
            Some("default"),
            deployment(3, &["sleep", "600000"]),
        )
        .unwrap();
    let uid = &created["metadata"]["uid"];
    wait_for_rollout(api, 3).await;
    let first = replica_sets(api, uid).remove(0);
    // Creation timestamps have whole seconds: keep the ReplicaSets' order unambiguous.
    tokio::time::sleep(Duration::from_millis(1100)).await;

    set_template_args(api, &["sleep", "600001"]);
    let deployment = wait_for_rollout(api, 3).await;
    let sets = wait_for_sizes(api, uid, &[0, 3]).await;
    assert_eq!(
        name(&sets[0]),
        name(&first),
        "the first is kept, scaled down"
    );
    assert_ne!(name(&sets[1]), name(&first));
    assert_eq!(revision(&sets[1]), "2");
    assert_eq!(revision(&deployment), "2");
    let second = sets[1].clone();

    set_template_args(api, &["sleep", "600000"]);
    let deployment = wait_for_rollout(api, 3).await;
    let sets = wait_for_sizes(api, uid, &[3, 0]).await;
    assert_eq!(sets.len(), 2, "no third ReplicaSet");
    assert_eq!(name(&sets[0]), name(&first), "the first is back");
    assert_eq!(name(&sets[1]), name(&second));
    assert_eq!(revision(&sets[0]), "3");
    assert_eq!(revision(&deployment), "3");
    cluster.shutdown().await;
}

/// Issue 3's acceptance: 10 replicas, maxSurge 3, maxUnavailable 2, updated to a template
/// whose pods crash-loop and never become ready, hold at 8 old and 5 new; scaled to 30
/// mid-rollout they become 20 and 13.
#[tokio::test]
async fn a_stuck_rollout_holds_eight_and_five_and_scales_proportionally_to_twenty_and_thirteen() {
    let cluster = Cluster::start().await.unwrap();
    let api = cluster.api();
    let mut manifest = deployment(10, &["sleep", "600000"]);
    manifest["spec"]["strategy"] =
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 2}});
    // A crash-looping pod may look ready for an instant; it must stay so to count as available.
    manifest["spec"]["minReadySeconds"] = json!(2);
    let created = api.create(&DEPLOYMENTS, Some("default"), manifest).unwrap();
    let uid = &created["metadata"]["uid"];
    wait_for_rollout(api, 10).await;

    set_template_args(api, &["exit", "1"]);
    wait_for_sizes(api, uid, &[8, 5]).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    wait_for_sizes(api, uid, &[8, 5]).await;
    let status = &get_deployment(api)["status"];
    assert_eq!(status["updatedReplicas"], 5);
    assert_eq!(status["unavailableReplicas"], 5);

    let patch = json!({"spec": {"replicas": 30}});
    api.patch(
        &DEPLOYMENTS,
        Some("default"),
        "web",
        &patch,
        PatchType::Merge,
        Part::Main,
    )
    .unwrap();
    wait_for_sizes(api, uid, &[20, 13]).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    wait_for_sizes(api, uid, &[20, 13]).await;
    cluster.shutdown().await;
}

fn progressing(deployment: &Value) -> Value {
    deployment["status"]["conditions"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["type"] == "Progressing"))
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn a_rollout_that_makes_no_progress_past_its_deadline_is_reported_as_exceeded() {
    let cluster = Cluster::start().await.unwrap();
    let api = cluster.api();
    let mut manifest = deployment(2, &["sleep", "600000"]);
    manifest["spec"]["progressDeadlineSeconds"] = json!(2);
    api.create(&DEPLOYMENTS, Some("default"), manifest).unwrap();
    wait_for_rollout(api, 2).await;

    set_template_args(api, &["exit", "1"]);
    let condition = eventually(CONVERGE, "ProgressDeadlineExceeded", || async {
        let condition = progressing(&get_deployment(api));
        (condition["reason"] == "ProgressDeadlineExceeded").then_some(condition)
    })
    .await;
    assert_eq!(condition["status"], "False");
    cluster.shutdown().await;
}

#[tokio::test]
async fn recreate_stops_every_old_pod_before_starting_new_ones() {
    let cluster = Cluster::start().await.unwrap();
    let api = cluster.api();
    let mut manifest = deployment(2, &["sleep", "600000"]);
    manifest["spec"]["strategy"] = json!({"type": "Recreate"});
    let created = api.create(&DEPLOYMENTS, Some("default"), manifest).unwrap();
    let uid = &created["metadata"]["uid"];
    wait_for_rollout(api, 2).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;

    set_template_args(api, &["sleep", "600001"]);
    eventually(CONVERGE, "the new ReplicaSet running alone", || async {
        let pods = api
            .list(&PODS, Some("default"), &ListOptions::default())
            .unwrap();
        let mut templates: Vec<&str> = pods["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["metadata"]["labels"]["pod-template-hash"].as_str())
            .collect();
        templates.sort();
        templates.dedup();
        assert!(
            templates.len() <= 1,
            "old and new pods at once, terminating ones included: {templates:?}"
        );
        let sets = replica_sets(api, uid);
        let running: Vec<i64> = sets
            .iter()
            .map(|rs| rs["status"]["readyReplicas"].as_i64().unwrap_or(0))
            .collect();
        (running == [0, 2]).then_some(())
    })
    .await;
    wait_for_rollout(api, 2).await;
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_paused_deployment_scales_but_does_not_roll_out_until_resumed() {
    let cluster = Cluster::start().await.unwrap();
    let api = cluster.api();
    let created = api
        .create(
            &DEPLOYMENTS,
            Some("default"),
            deployment(1, &["sleep", "600000"]),
        )
        .unwrap();
    let uid = &created["metadata"]["uid"];
    wait_for_rollout(api, 1).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let pause = json!({"spec": {"paused": true, "replicas": 2}});
    api.patch(
        &DEPLOYMENTS,
        Some("default"),
        "web",
        &pause,
        PatchType::Merge,
        Part::Main,
    )
    .unwrap();
    set_template_args(api, &["sleep", "600001"]);
    wait_for_sizes(api, uid, &[2]).await;
    eventually(CONVERGE, "the pause noted", || async {
        (progressing(&get_deployment(api))["reason"] == "DeploymentPaused").then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(replica_sets(api, uid).len(), 1, "no rollout while paused");

    let resume = json!({"spec": {"paused": false}});
    api.patch(
        &DEPLOYMENTS,
        Some("default"),
        "web",
        &resume,
        PatchType::Merge,
        Part::Main,
    )
    .unwrap();
    wait_for_sizes(api, uid, &[0, 2]).await;
    wait_for_rollout(api, 2).await;
    cluster.shutdown().await;
}

#[tokio::test]
async fn old_replica_sets_beyond_the_revision_history_limit_are_deleted() {
    let cluster = Cluster::start().await.unwrap();
    let api = cluster.api();
    let mut manifest = deployment(1, &["sleep", "600000"]);
    manifest["spec"]["revisionHistoryLimit"] = json!(1);
    let created = api.create(&DEPLOYMENTS, Some("default"), manifest).unwrap();
    let uid = &created["metadata"]["uid"];
    wait_for_rollout(api, 1).await;
    let first = name(&replica_sets(api, uid)[0]).to_string();
    for (i, args) in [["sleep", "600001"], ["sleep", "600002"]]
        .iter()
        .enumerate()
    {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        set_template_args(api, args);
        let deployment = wait_for_rollout(api, 1).await;
        assert_eq!(revision(&deployment), (i + 2).to_string());
    }
    let sets = wait_for_sizes(api, uid, &[0, 1]).await;
    assert!(sets.iter().all(|rs| name(rs) != first), "the oldest went");
    assert_eq!(revision(&sets[0]), "2");
    assert_eq!(revision(&sets[1]), "3");
    cluster.shutdown().await;
}

#[tokio::test]
async fn an_orphan_replica_set_the_selector_matches_is_adopted_and_replaced() {
    let cluster = Cluster::start().await.unwrap();
    let api = cluster.api();
    let orphan = json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "stray", "labels": {"app": "web"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": exerciser(), "args": ["sleep", "600001"]}]},
            },
        },
    });
    api.create(&REPLICA_SETS, Some("default"), orphan).unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let created = api
        .create(
            &DEPLOYMENTS,
            Some("default"),
            deployment(1, &["sleep", "600000"]),
        )
        .unwrap();
    let uid = &created["metadata"]["uid"];
    wait_for_rollout(api, 1).await;
    let sets = wait_for_sizes(api, uid, &[0, 1]).await;
    assert_eq!(
        name(&sets[0]),
        "stray",
        "adopted, then scaled down as an old ReplicaSet"
    );
    assert_eq!(
        sets[0]["metadata"]["ownerReferences"][0]["controller"],
        true
    );
    cluster.shutdown().await;
}
