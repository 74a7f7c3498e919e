//! The garbage collector: Background, Foreground and Orphan deletion, shared owners and cycles.

use std::time::Duration;

use serde_json::{Value, json};
use wasmkube::api::kinds::{PODS, REPLICA_SETS};
use wasmkube::api::objects::PropagationPolicy;
use wasmkube::api::{Api, ApiError, DeleteOptions, ListOptions};
use wasmkube::client::{ClientError, DeleteParams};
use wasmkube::testing::Cluster;

use crate::support::{PodBuilder, eventually, exerciser, phase};

const REPLICA_SETS_PATH: &str = "/apis/apps/v1/namespaces/default/replicasets";
/// Pods start and stop in well under a second; this leaves room for a loaded machine.
const CONVERGE: Duration = Duration::from_secs(30);

/// A ReplicaSet of `replicas` exerciser pods that sleep, labelled and selected by `app`.
fn replica_set(name: &str, replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": exerciser(), "args": ["sleep", "600000"]}]},
            },
        },
    })
}

fn uid(object: &Value) -> String {
    object["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .into()
}

fn owner_reference(owner: &Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
        "blockOwnerDeletion": true,
    })
}

fn with_policy(policy: PropagationPolicy) -> DeleteOptions {
    DeleteOptions {
        propagation_policy: policy,
        ..Default::default()
    }
}

/// Every pod labelled `app`, including those being deleted.
fn pods_of(api: &Api, app: &str) -> Vec<Value> {
    let pods = api
        .list(&PODS, Some("default"), &ListOptions::default())
        .unwrap();
    pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["metadata"]["labels"]["app"] == app)
        .cloned()
        .collect()
}

/// Creates the ReplicaSet and waits for `replicas` running pods; returns it as stored.
async fn running_replica_set(api: &Api, name: &str, replicas: usize) -> Value {
    api.create(
        &REPLICA_SETS,
        Some("default"),
        replica_set(name, replicas as i64),
    )
    .unwrap();
    eventually(
        CONVERGE,
        &format!("{replicas} running pods of {name}"),
        || async {
            let pods = pods_of(api, name);
            (pods.len() == replicas && pods.iter().all(|p| phase(p) == "Running")).then_some(())
        },
    )
    .await;
    api.get(&REPLICA_SETS, Some("default"), name).unwrap()
}

fn gone(api: &Api, name: &str) -> bool {
    matches!(
        api.get(&REPLICA_SETS, Some("default"), name),
        Err(ApiError::NotFound { .. })
    )
}

#[tokio::test]
async fn deleting_a_replica_set_in_the_background_deletes_its_pods() {
    let cluster = Cluster::start().await.unwrap();
    let api = cluster.api();
    running_replica_set(api, "gc-bg", 2).await;

    api.delete(
        &REPLICA_SETS,
        Some("default"),
        "gc-bg",
        &DeleteOptions::default(),
    )
    .unwrap();
    assert!(gone(api, "gc-bg"), "the owner goes at once");
    eventually(CONVERGE, "the pods of gc-bg to be gone", || async {
        pods_of(api, "gc-bg").is_empty().then_some(())
    })
    .await;
    cluster.shutdown().await;
}

#[tokio::test]
async fn orphan_deletion_leaves_the_pods_without_owner_references() {
    let cluster = Cluster::start().await.unwrap();
    let (api, client) = (cluster.api(), cluster.client());
    let owner = running_replica_set(api, "gc-orphan", 2).await;
    let before: Vec<Value> = pods_of(api, "gc-orphan");

    let params = DeleteParams {
        propagation_policy: Some("Orphan".into()),
        ..Default::default()
    };
    client
        .delete(&format!("{REPLICA_SETS_PATH}/gc-orphan"), &params)
        .await
        .unwrap();
    eventually(CONVERGE, "the orphaned ReplicaSet to be gone", || async {
        gone(api, "gc-orphan").then_some(())
    })
    .await;
    // Give a wrongful cascade time to show.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = pods_of(api, "gc-orphan");
    assert_eq!(after.len(), before.len(), "{after:#?}");
    for pod in &after {
        assert!(pod["metadata"]["deletionTimestamp"].is_null(), "{pod:#}");
        let owners = pod["metadata"]["ownerReferences"].as_array();
        assert!(
            owners.is_none_or(|o| o.iter().all(|r| r["uid"] != uid(&owner).as_str())),
            "{pod:#}"
        );
    }
    cluster.shutdown().await;
}

#[tokio::test]
async fn foreground_deletion_keeps_the_replica_set_until_its_pods_are_gone() {
    let cluster = Cluster::start().await.unwrap();
    let api = cluster.api();
    running_replica_set(api, "gc-fg", 2).await;

    let marked = api
        .delete(
            &REPLICA_SETS,
            Some("default"),
            "gc-fg",
            &with_policy(PropagationPolicy::Foreground),
        )
        .unwrap();
    assert!(
        marked["metadata"]["deletionTimestamp"].is_string(),
        "{marked:#}"
    );
    assert_eq!(
        marked["metadata"]["finalizers"],
        json!(["foregroundDeletion"])
    );
    eventually(CONVERGE, "gc-fg to be gone after its pods", || async {
        if !gone(api, "gc-fg") {
            return None;
        }
        let left = pods_of(api, "gc-fg");
        assert!(left.is_empty(), "the owner went before {left:#?}");
        Some(())
    })
    .await;
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_pod_with_two_owners_survives_the_deletion_of_one() {
    let cluster = Cluster::start().await.unwrap();
    let api = cluster.api();
    let first = api
        .create(&REPLICA_SETS, Some("default"), replica_set("gc-first", 0))
        .unwrap();
    let second = api
        .create(&REPLICA_SETS, Some("default"), replica_set("gc-second", 0))
        .unwrap();
    let mut pod = PodBuilder::named("shared")
        .container("c", &["sleep", "600000"])
        .build();
    pod["metadata"]["ownerReferences"] = json!([owner_reference(&first), owner_reference(&second)]);
    api.create(&PODS, Some("default"), pod).unwrap();

    api.delete(
        &REPLICA_SETS,
        Some("default"),
        "gc-first",
        &DeleteOptions::default(),
    )
    .unwrap();
    let pod = eventually(CONVERGE, "the reference to gc-first to go", || async {
        let pod = api.get(&PODS, Some("default"), "shared").ok()?;
        (pod["metadata"]["ownerReferences"].as_array()?.len() == 1).then_some(pod)
    })
    .await;
    assert!(pod["metadata"]["deletionTimestamp"].is_null(), "{pod:#}");
    assert_eq!(pod["metadata"]["ownerReferences"][0]["uid"], uid(&second));

    api.delete(
        &REPLICA_SETS,
        Some("default"),
        "gc-second",
        &DeleteOptions::default(),
    )
    .unwrap();
    eventually(CONVERGE, "the pod to go with its last owner", || async {
        match api.get(&PODS, Some("default"), "shared") {
            Err(ApiError::NotFound { .. }) => Some(()),
            Ok(pod) => pod["metadata"]["deletionTimestamp"]
                .is_string()
                .then_some(()),
            Err(_) => None,
        }
    })
    .await;
    cluster.shutdown().await;
}

#[tokio::test]
async fn an_ownership_cycle_does_not_block_foreground_deletion() {
    let cluster = Cluster::start().await.unwrap();
    let api = cluster.api();
    let a = api
        .create(&REPLICA_SETS, Some("default"), replica_set("gc-a", 0))
        .unwrap();
    let mut b = replica_set("gc-b", 0);
    b["metadata"]["ownerReferences"] = json!([owner_reference(&a)]);
    let b = api.create(&REPLICA_SETS, Some("default"), b).unwrap();
    let mut a = api.get(&REPLICA_SETS, Some("default"), "gc-a").unwrap();
    a["metadata"]["ownerReferences"] = json!([owner_reference(&b)]);
    api.update(
        &REPLICA_SETS,
        Some("default"),
        "gc-a",
        a,
        wasmkube::api::Part::Main,
    )
    .unwrap();

    api.delete(
        &REPLICA_SETS,
        Some("default"),
        "gc-a",
        &with_policy(PropagationPolicy::Foreground),
    )
    .unwrap();
    eventually(
        CONVERGE,
        "both ReplicaSets of the cycle to be gone",
        || async { (gone(api, "gc-a") && gone(api, "gc-b")).then_some(()) },
    )
    .await;
    cluster.shutdown().await;
}

#[tokio::test]
async fn an_unknown_propagation_policy_is_refused_naming_the_field() {
    let cluster = Cluster::start().await.unwrap();
    let client = cluster.client();
    client
        .create(REPLICA_SETS_PATH, &replica_set("gc-bad", 0))
        .await
        .unwrap();
    let path = format!("{REPLICA_SETS_PATH}/gc-bad?propagationPolicy=Sideways");
    let error = client.delete(&path, &DeleteParams::default()).await;
    let Err(ClientError::Api(status)) = error else {
        panic!("expected a refusal, got {error:?}");
    };
    assert!(matches!(status.code, 400 | 422), "{status:?}");
    assert!(status.message.contains("propagationPolicy"), "{status:?}");
    assert!(
        !gone(cluster.api(), "gc-bad"),
        "a refused delete deletes nothing"
    );
    cluster.shutdown().await;
}
