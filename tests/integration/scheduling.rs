//! The scheduler against a real cluster: node selectors, taints, cordons, resources, max pods
//! and spreading, over Node objects created through the API next to the embedded node.
//!
//! The extra nodes have no agent: pods bound to them never run, binding is what is observed.
//! Each test finishes its checks within a few seconds of creating its nodes, before a node
//! lifecycle controller would find them silent.

use std::time::Duration;

use serde_json::{Value, json};
use wasmkube::api::kinds::{EVENTS, PODS};
use wasmkube::api::{Api, DeleteOptions, ListOptions};
use wasmkube::client::{Client, ClientError};
use wasmkube::testing::Cluster;

use crate::support::{PodBuilder, eventually};

/// Scheduling takes milliseconds; this leaves room for a loaded machine and stays well inside
/// the time a fake node is trusted.
const BIND: Duration = Duration::from_secs(5);

/// A Node object without an agent: created, then given a status (Ready unless `not_ready`).
struct FakeNode {
    node: Value,
    allocatable: Value,
    ready: &'static str,
}

impl FakeNode {
    /// A node offering 4 CPUs, 8Gi and 110 pods, labelled `pool=<pool>`.
    fn named(name: &str, pool: &str) -> Self {
        Self {
            node: json!({"apiVersion": "v1", "kind": "Node",
                         "metadata": {"name": name, "labels": {"pool": pool}}, "spec": {}}),
            allocatable: json!({"cpu": "4", "memory": "8Gi", "pods": "110"}),
            ready: "True",
        }
    }

    fn label(mut self, key: &str, value: &str) -> Self {
        self.node["metadata"]["labels"][key] = json!(value);
        self
    }

    fn taint(mut self, key: &str, value: &str, effect: &str) -> Self {
        self.node["spec"]["taints"] = json!([{"key": key, "value": value, "effect": effect}]);
        self
    }

    fn cordoned(mut self) -> Self {
        self.node["spec"]["unschedulable"] = json!(true);
        self
    }

    fn not_ready(mut self) -> Self {
        self.ready = "False";
        self
    }

    fn allocatable(mut self, resource: &str, quantity: &str) -> Self {
        self.allocatable[resource] = json!(quantity);
        self
    }

    /// Creates the node, then writes its status — again on a conflict, as the node IPAM
    /// controller gives a new node its pod CIDR meanwhile.
    async fn create(self, client: &Client) {
        let node = client.create("/api/v1/nodes", &self.node).await.unwrap();
        let name = node["metadata"]["name"].as_str().unwrap().to_string();
        let path = format!("/api/v1/nodes/{name}");
        for _ in 0..5 {
            let mut node = client.get(&path).await.unwrap();
            node["status"] = json!({
                "capacity": self.allocatable, "allocatable": self.allocatable,
                "conditions": [{"type": "Ready", "status": self.ready}],
            });
            match client.replace(&format!("{path}/status"), &node).await {
                Err(ClientError::Api(status)) if status.code == 409 => continue,
                written => return drop(written.unwrap()),
            }
        }
        panic!("the status of node {name} kept conflicting");
    }
}

/// A pod selecting `pool=<pool>`, so it never lands on the embedded node.
fn pod_in_pool(name: &str, pool: &str) -> Value {
    let mut pod = PodBuilder::named(name)
        .container("c", &["sleep", "600000"])
        .build();
    pod["spec"]["nodeSelector"] = json!({"pool": pool});
    pod
}

fn create_pod(api: &Api, pod: Value) {
    api.create(&PODS, Some("default"), pod).unwrap();
}

async fn bound_node(api: &Api, name: &str) -> String {
    eventually(BIND, &format!("pod {name} to be bound"), || async {
        let pod = api.get(&PODS, Some("default"), name).ok()?;
        pod["spec"]["nodeName"].as_str().map(str::to_string)
    })
    .await
}

/// The events about pod `name` with `reason`.
fn events(api: &Api, name: &str, reason: &str) -> Vec<Value> {
    let events = api
        .list(&EVENTS, Some("default"), &ListOptions::default())
        .unwrap();
    events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["involvedObject"]["name"] == name && e["reason"] == reason)
        .cloned()
        .collect()
}

/// Waits for the `FailedScheduling` event of pod `name`; returns its message.
async fn failed_scheduling(api: &Api, name: &str) -> String {
    eventually(BIND, &format!("FailedScheduling for {name}"), || async {
        let events = events(api, name, "FailedScheduling");
        events.first()?["message"].as_str().map(str::to_string)
    })
    .await
}

fn scheduled_condition(api: &Api, name: &str) -> Value {
    let pod = api.get(&PODS, Some("default"), name).unwrap();
    pod["status"]["conditions"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["type"] == "PodScheduled"))
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn a_pod_lands_on_the_node_its_selector_names_and_says_so() {
    let cluster = Cluster::start().await.unwrap();
    let (api, client) = (cluster.api(), cluster.client());
    FakeNode::named("hdd-1", "sel").create(&client).await;
    FakeNode::named("ssd-1", "sel")
        .label("disk", "ssd")
        .create(&client)
        .await;
    FakeNode::named("hdd-2", "sel").create(&client).await;
    let mut pod = pod_in_pool("p", "sel");
    pod["spec"]["nodeSelector"]["disk"] = json!("ssd");
    create_pod(api, pod);
    assert_eq!(bound_node(api, "p").await, "ssd-1");
    let scheduled = eventually(BIND, "the Scheduled event", || async {
        events(api, "p", "Scheduled").pop()
    })
    .await;
    assert_eq!(
        scheduled["message"],
        "Successfully assigned default/p to ssd-1"
    );
    assert_eq!(scheduled["type"], "Normal");
    assert_eq!(scheduled["source"]["component"], "default-scheduler");
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_taint_keeps_pods_off_unless_they_tolerate_it() {
    let cluster = Cluster::start().await.unwrap();
    let (api, client) = (cluster.api(), cluster.client());
    FakeNode::named("gpu-1", "gpu")
        .taint("dedicated", "gpu", "NoSchedule")
        .create(&client)
        .await;
    create_pod(api, pod_in_pool("intolerant", "gpu"));
    let mut tolerant = pod_in_pool("tolerant", "gpu");
    tolerant["spec"]["tolerations"] =
        json!([{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]);
    create_pod(api, tolerant);

    assert_eq!(bound_node(api, "tolerant").await, "gpu-1");
    assert_eq!(
        failed_scheduling(api, "intolerant").await,
        "0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, \
         1 node(s) had untolerated taint {dedicated: gpu}."
    );
    let pod = api.get(&PODS, Some("default"), "intolerant").unwrap();
    assert!(pod["spec"]["nodeName"].is_null());
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_pod_too_big_for_every_node_waits_with_the_reason_until_a_node_with_room_appears() {
    let cluster = Cluster::start().await.unwrap();
    let (api, client) = (cluster.api(), cluster.client());
    FakeNode::named("small-1", "any").create(&client).await;
    FakeNode::named("small-2", "any").create(&client).await;
    let pod = PodBuilder::named("big")
        .container("c", &["sleep", "600000"])
        .with("resources", json!({"requests": {"memory": "1Pi"}}))
        .build();
    create_pod(api, pod);

    let expected = "0/3 nodes are available: 3 Insufficient memory.";
    assert_eq!(failed_scheduling(api, "big").await, expected);
    let condition = eventually(BIND, "PodScheduled=False", || async {
        Some(scheduled_condition(api, "big")).filter(|c| c["status"] == "False")
    })
    .await;
    assert_eq!(condition["reason"], "Unschedulable");
    assert_eq!(condition["message"], expected);

    // Retries (the fallback after 1 s) neither rewrite the unchanged status nor add events.
    let written =
        api.get(&PODS, Some("default"), "big").unwrap()["metadata"]["resourceVersion"].clone();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let pod = api.get(&PODS, Some("default"), "big").unwrap();
    assert_eq!(pod["metadata"]["resourceVersion"], written);
    assert_eq!(events(api, "big", "FailedScheduling").len(), 1);

    FakeNode::named("huge", "any")
        .allocatable("memory", "2Pi")
        .create(&client)
        .await;
    assert_eq!(bound_node(api, "big").await, "huge");
    let condition = eventually(BIND, "PodScheduled=True", || async {
        Some(scheduled_condition(api, "big")).filter(|c| c["status"] == "True")
    })
    .await;
    assert!(condition["reason"].is_null());
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_cordoned_node_is_skipped() {
    let cluster = Cluster::start().await.unwrap();
    let (api, client) = (cluster.api(), cluster.client());
    FakeNode::named("cordoned", "cordon")
        .cordoned()
        .create(&client)
        .await;
    FakeNode::named("open", "cordon").create(&client).await;
    for name in ["a", "b", "c"] {
        create_pod(api, pod_in_pool(name, "cordon"));
    }
    for name in ["a", "b", "c"] {
        assert_eq!(bound_node(api, name).await, "open");
    }
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_node_that_is_not_ready_counts_as_tainted_not_ready() {
    let cluster = Cluster::start().await.unwrap();
    let (api, client) = (cluster.api(), cluster.client());
    FakeNode::named("sick", "sick")
        .not_ready()
        .create(&client)
        .await;
    create_pod(api, pod_in_pool("p", "sick"));
    assert_eq!(
        failed_scheduling(api, "p").await,
        "0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, \
         1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }."
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_replica_set_of_six_spreads_two_per_node_over_three_equal_nodes() {
    let cluster = Cluster::start().await.unwrap();
    let (api, client) = (cluster.api(), cluster.client());
    let nodes = ["spread-1", "spread-2", "spread-3"];
    for name in nodes {
        FakeNode::named(name, "spread").create(&client).await;
    }
    let template = pod_in_pool("ignored", "spread");
    let replica_set = json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web"},
        "spec": {"replicas": 6, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": template["spec"]}},
    });
    client
        .create("/apis/apps/v1/namespaces/default/replicasets", &replica_set)
        .await
        .unwrap();
    let placed = eventually(BIND, "6 pods of web bound", || async {
        let pods = api
            .list(&PODS, Some("default"), &ListOptions::default())
            .unwrap();
        let nodes: Vec<String> = pods["items"]
            .as_array()?
            .iter()
            .filter_map(|p| p["spec"]["nodeName"].as_str().map(str::to_string))
            .collect();
        (nodes.len() == 6).then_some(nodes)
    })
    .await;
    let per_node: Vec<usize> = nodes
        .iter()
        .map(|n| placed.iter().filter(|p| p == n).count())
        .collect();
    assert_eq!(per_node, [2, 2, 2], "{placed:?}");
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_node_takes_no_more_pods_than_it_allows_until_one_leaves() {
    let cluster = Cluster::start().await.unwrap();
    let (api, client) = (cluster.api(), cluster.client());
    FakeNode::named("tiny", "tiny")
        .allocatable("pods", "2")
        .create(&client)
        .await;
    for name in ["a", "b", "c"] {
        create_pod(api, pod_in_pool(name, "tiny"));
    }
    let waiting = eventually(BIND, "two pods bound, one waiting", || async {
        let mut waiting = Vec::new();
        for name in ["a", "b", "c"] {
            let pod = api.get(&PODS, Some("default"), name).ok()?;
            if pod["spec"]["nodeName"].is_null() {
                waiting.push(name);
            }
        }
        (waiting.len() == 1 && !events(api, waiting[0], "FailedScheduling").is_empty())
            .then(|| waiting[0])
    })
    .await;
    assert_eq!(
        failed_scheduling(api, waiting).await,
        "0/2 nodes are available: 1 Too many pods, \
         1 node(s) didn't match Pod's node affinity/selector."
    );

    let leaving = ["a", "b", "c"].into_iter().find(|n| *n != waiting).unwrap();
    let now = DeleteOptions {
        grace_period_seconds: Some(0),
        ..Default::default()
    };
    api.delete(&PODS, Some("default"), leaving, &now).unwrap();
    assert_eq!(bound_node(api, waiting).await, "tiny");
    cluster.shutdown().await;
}
