//! Nodes and their pods from the CLI: cordon, uncordon, drain through the Eviction
//! subresource, and describe node.

use std::time::Duration;

use serde_json::{Value, json};
use wasmkube::api::kinds::{NODES, PODS};
use wasmkube::testing::Cluster;

use crate::cli::wasmkube;
use crate::support::{PodBuilder, eventually, phase, wait_for_pod};

/// The embedded node of a test cluster.
pub const NODE: &str = "node-1";
/// Pods start in well under a second; this leaves room for a loaded machine.
const CONVERGE: Duration = Duration::from_secs(60);

/// Starts pod `name` (sleeping; `empty_dir` adds a scratch volume) and waits until it runs.
pub async fn running_pod(cluster: &Cluster, name: &str, empty_dir: bool) -> Value {
    let mut pod = PodBuilder::named(name).container("c", &["sleep", "600000"]);
    if empty_dir {
        pod = pod.empty_dir("scratch");
    }
    cluster
        .api()
        .create(&PODS, Some("default"), pod.build())
        .unwrap();
    let what = format!("{name} Running");
    wait_for_pod(cluster.api(), "default", name, &what, |p| {
        phase(p) == "Running"
    })
    .await
}

/// The STATUS cell of the node in `get nodes`, once the node reports Ready.
pub async fn node_status(cluster: &Cluster) -> String {
    eventually(CONVERGE, "node-1 in get nodes", || async {
        let table = wasmkube(cluster, &["get", "nodes"], None).await.stdout;
        let line = table.lines().find(|l| l.starts_with(NODE))?;
        let status = line.split_whitespace().nth(1)?.to_string();
        status.starts_with("Ready").then_some(status)
    })
    .await
}

pub fn unschedulable(cluster: &Cluster) -> Value {
    let node = cluster.api().get(&NODES, None, NODE).unwrap();
    node["spec"]["unschedulable"].clone()
}

pub fn pod_exists(cluster: &Cluster, name: &str) -> bool {
    cluster.api().get(&PODS, Some("default"), name).is_ok()
}

#[tokio::test]
async fn cordon_and_uncordon_say_what_changed_and_get_nodes_shows_scheduling_disabled() {
    let cluster = Cluster::start().await.unwrap();
    assert_eq!(node_status(&cluster).await, "Ready");
    for (args, line) in [
        (["cordon", NODE], "node/node-1 cordoned"),
        (["cordon", NODE], "node/node-1 already cordoned"),
    ] {
        let out = wasmkube(&cluster, &args, None).await;
        assert!(out.success, "{}", out.stderr);
        assert_eq!(out.stdout.trim(), line);
    }
    assert_eq!(unschedulable(&cluster), json!(true));
    assert_eq!(node_status(&cluster).await, "Ready,SchedulingDisabled");
    for (args, line) in [
        (["uncordon", NODE], "node/node-1 uncordoned"),
        (["uncordon", NODE], "node/node-1 already uncordoned"),
    ] {
        let out = wasmkube(&cluster, &args, None).await;
        assert!(out.success, "{}", out.stderr);
        assert_eq!(out.stdout.trim(), line);
    }
    assert_eq!(unschedulable(&cluster), Value::Null);
    assert_eq!(node_status(&cluster).await, "Ready");
    let missing = wasmkube(&cluster, &["cordon", "x"], None).await;
    assert!(!missing.success);
    assert_eq!(
        missing.stderr.trim(),
        "Error from server (NotFound): nodes \"x\" not found"
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn drain_refuses_unmanaged_and_local_storage_pods_until_told_and_then_evicts_them() {
    let cluster = Cluster::start().await.unwrap();
    running_pod(&cluster, "lonely", false).await;
    running_pod(&cluster, "scratchy", true).await;

    let refused = wasmkube(&cluster, &["drain", NODE], None).await;
    assert!(!refused.success);
    assert!(
        refused.stderr.contains(
            "cannot delete Pods that declare no controller (use --force to override): default/lonely"
        ),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains(
            "cannot delete Pods with local storage (use --delete-emptydir-data to override): default/scratchy"
        ),
        "{}",
        refused.stderr
    );
    let args = ["drain", NODE, "--pod-selector", "app=other"];
    let selected = wasmkube(&cluster, &args, None).await;
    assert!(selected.success, "{}", selected.stderr);
    assert_eq!(
        selected.stdout,
        "node/node-1 already cordoned\nnode/node-1 drained\n"
    );
    let forced = wasmkube(&cluster, &["drain", NODE, "--force"], None).await;
    assert!(!forced.success);
    assert!(
        !forced.stderr.contains("declare no controller (use --force"),
        "{}",
        forced.stderr
    );
    assert!(forced.stderr.contains("local storage"), "{}", forced.stderr);
    for name in ["lonely", "scratchy"] {
        let pod = cluster.api().get(&PODS, Some("default"), name).unwrap();
        assert!(pod["metadata"]["deletionTimestamp"].is_null(), "{pod}");
    }
    assert_eq!(node_status(&cluster).await, "Ready,SchedulingDisabled");

    let args = ["drain", NODE, "--force", "--delete-emptydir-data"];
    let drained = wasmkube(&cluster, &args, None).await;
    assert!(drained.success, "{}{}", drained.stdout, drained.stderr);
    let out = &drained.stdout;
    assert!(out.starts_with("node/node-1 already cordoned\n"), "{out}");
    for line in [
        "evicting pod default/lonely",
        "evicting pod default/scratchy",
        "pod/lonely evicted",
        "pod/scratchy evicted",
    ] {
        assert!(out.lines().any(|l| l == line), "{line} missing from\n{out}");
    }
    assert!(out.ends_with("node/node-1 drained\n"), "{out}");
    assert!(
        drained
            .stderr
            .contains("Warning: deleting Pods that declare no controller: default/lonely"),
        "{}",
        drained.stderr
    );
    assert!(!pod_exists(&cluster, "lonely") && !pod_exists(&cluster, "scratchy"));
    assert_eq!(node_status(&cluster).await, "Ready,SchedulingDisabled");
    cluster.shutdown().await;
}

#[tokio::test]
async fn drain_evicts_a_finished_pod_without_force_as_kubectl_does() {
    let cluster = Cluster::start().await.unwrap();
    let pod = PodBuilder::named("done")
        .restart_policy("Never")
        .container("c", &["print", "finished"])
        .empty_dir("scratch")
        .build();
    cluster.api().create(&PODS, Some("default"), pod).unwrap();
    wait_for_pod(cluster.api(), "default", "done", "done Succeeded", |p| {
        phase(p) == "Succeeded"
    })
    .await;
    let drained = wasmkube(&cluster, &["drain", NODE, "--timeout=50s"], None).await;
    assert!(drained.success, "{}{}", drained.stdout, drained.stderr);
    assert!(
        drained.stdout.contains("pod/done evicted\n"),
        "{}",
        drained.stdout
    );
    assert!(
        drained.stderr.is_empty(),
        "no refusal, no warning: {}",
        drained.stderr
    );
    assert!(!pod_exists(&cluster, "done"));
    cluster.shutdown().await;
}

/// A ReplicaSet manifest of one sleeping exerciser pod.
fn replica_set_yaml() -> String {
    format!(
        "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    spec:\n      containers:\n      - name: c\n        image: {}\n        args: [sleep, \"600000\"]\n",
        crate::support::exerciser()
    )
}

/// The running pod of ReplicaSet `web`.
async fn replica_set_pod(cluster: &Cluster) -> Value {
    eventually(CONVERGE, "a running pod of web", || async {
        live_replica_set_pods(cluster)
            .into_iter()
            .find(|p| phase(p) == "Running")
    })
    .await
}

/// A pod of ReplicaSet `web`, in any phase, not named `name`.
async fn replica_set_pod_other_than(cluster: &Cluster, name: &str) -> Value {
    eventually(CONVERGE, "a replacement pod of web", || async {
        live_replica_set_pods(cluster)
            .into_iter()
            .find(|p| p["metadata"]["name"] != name)
    })
    .await
}

/// The pods of ReplicaSet `web` that are not being deleted.
fn live_replica_set_pods(cluster: &Cluster) -> Vec<Value> {
    let pods = cluster
        .api()
        .list(&PODS, Some("default"), &Default::default())
        .unwrap();
    pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| {
            let name = p["metadata"]["name"].as_str().unwrap_or_default();
            name.starts_with("web-") && p["metadata"]["deletionTimestamp"].is_null()
        })
        .cloned()
        .collect()
}

#[tokio::test]
async fn drain_evicts_a_replica_set_pod_without_force() {
    let cluster = Cluster::start().await.unwrap();
    let applied = wasmkube(&cluster, &["apply", "-f", "-"], Some(&replica_set_yaml())).await;
    assert!(applied.success, "{}", applied.stderr);
    let pod = replica_set_pod(&cluster).await;
    let name = pod["metadata"]["name"].as_str().unwrap();

    let drained = wasmkube(&cluster, &["drain", NODE, "--timeout", "50s"], None).await;
    assert!(drained.success, "{}{}", drained.stdout, drained.stderr);
    assert_eq!(
        drained.stdout,
        format!(
            "node/node-1 cordoned\nevicting pod default/{name}\npod/{name} evicted\nnode/node-1 drained\n"
        )
    );
    // The evicted pod is gone and its ReplicaSet has made a replacement, which a scheduler
    // that honours the cordon leaves Pending while this is the only node.
    assert!(!pod_exists(&cluster, name));
    let replacement = replica_set_pod_other_than(&cluster, name).await;
    assert_eq!(replacement["metadata"]["ownerReferences"][0]["name"], "web");
    cluster.shutdown().await;
}

#[tokio::test]
async fn drain_gives_up_at_the_timeout_in_kubectls_words() {
    let cluster = Cluster::start().await.unwrap();
    let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "elsewhere"}});
    cluster.api().create(&NODES, None, node).unwrap();
    for name in ["slow", "slower"] {
        let mut pod = PodBuilder::named(name)
            .container("c", &["sleep", "600000"])
            .build();
        // On a node without an agent, nothing ever finishes the graceful deletion.
        pod["spec"]["nodeName"] = json!("elsewhere");
        pod["spec"]["terminationGracePeriodSeconds"] = json!(600);
        cluster.api().create(&PODS, Some("default"), pod).unwrap();
    }

    let args = ["drain", "elsewhere", "--force", "--timeout", "1s"];
    let out = wasmkube(&cluster, &args, None).await;
    assert!(!out.success);
    assert_eq!(
        out.stdout,
        "node/elsewhere cordoned\nevicting pod default/slow\nevicting pod default/slower\n"
    );
    let waiting = |name: &str| {
        format!(
            "error when waiting for pod \"{name}\" in namespace \"default\" to terminate: context deadline exceeded"
        )
    };
    let errors = format!("[{}, {}]", waiting("slow"), waiting("slower"));
    let expected = [
        "Warning: deleting Pods that declare no controller: default/slow, default/slower"
            .to_string(),
        format!("There are pending pods in node \"elsewhere\" when an error occurred: {errors}"),
        "pod/slow".into(),
        "pod/slower".into(),
        format!(
            "error: unable to drain node \"elsewhere\" due to error: {errors}, continuing command..."
        ),
        "There are pending nodes to be drained:".into(),
        " elsewhere".into(),
        waiting("slow"),
        waiting("slower"),
    ];
    assert_eq!(out.stderr.lines().collect::<Vec<_>>(), expected);

    // With --grace-period=0 the evictions delete at once, agent or not.
    let args = ["drain", "elsewhere", "--force", "--grace-period=0"];
    let out = wasmkube(&cluster, &args, None).await;
    assert!(out.success, "{}", out.stderr);
    assert!(
        out.stdout
            .ends_with("pod/slow evicted\npod/slower evicted\nnode/elsewhere drained\n"),
        "{}",
        out.stdout
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn describe_node_lists_its_pods_with_their_requests_and_the_totals() {
    let cluster = Cluster::start().await.unwrap();
    let resources =
        json!({"requests": {"cpu": "250m", "memory": "64Mi"}, "limits": {"memory": "64Mi"}});
    let pod = PodBuilder::named("sized")
        .container("c", &["sleep", "600000"])
        .with("resources", resources)
        .build();
    cluster.api().create(&PODS, Some("default"), pod).unwrap();
    wait_for_pod(cluster.api(), "default", "sized", "sized Running", |p| {
        phase(p) == "Running"
    })
    .await;
    let out = wasmkube(&cluster, &["describe", "node", NODE], None).await;
    assert!(out.success, "{}", out.stderr);
    let text = out.stdout;
    for prefix in [
        "Name:",
        "Roles:",
        "Taints:",
        "Unschedulable:",
        "Conditions:",
        "Capacity:",
        "Allocatable:",
        "System Info:",
        "Allocated resources:",
        "Events:",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(prefix)),
            "{prefix} missing from\n{text}"
        );
    }
    let value = |prefix: &str| {
        let line = text.lines().find(|l| l.trim_start().starts_with(prefix));
        let line = line.unwrap_or_else(|| panic!("{prefix} missing from\n{text}"));
        line.split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(value("InternalIP:"), "127.0.0.1", "{text}");
    let port: u16 = value("KubeletPort:").parse().unwrap();
    assert_ne!(port, 0, "the node's endpoint listens: {text}");
    let node = cluster.api().get(&NODES, None, NODE).unwrap();
    assert_eq!(value("PodCIDR:"), node["spec"]["podCIDR"], "{text}");
    let pods = text
        .lines()
        .find(|l| l.starts_with("Non-terminated Pods:"))
        .unwrap_or_else(|| panic!("no pods section in\n{text}"));
    assert!(pods.ends_with("(1 in total)"), "{text}");
    let row: Vec<&str> = text
        .lines()
        .find(|l| l.trim_start().starts_with("default "))
        .unwrap_or_else(|| panic!("no row of sized in\n{text}"))
        .split_whitespace()
        .collect();
    // Namespace, Name, then value and percentage for each of the four amounts, then Age.
    assert_eq!(
        (row[1], row[2], row[4], row[6], row[8]),
        ("sized", "250m", "0", "64Mi", "64Mi"),
        "{text}"
    );
    let cpu = text
        .lines()
        .find(|l| l.trim_start().starts_with("cpu "))
        .unwrap_or_default();
    assert!(cpu.contains("250m ("), "{text}");
    cluster.shutdown().await;
}
