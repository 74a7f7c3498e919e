//! Nodes and their pods from the CLI: cordon, uncordon, drain through the Eviction
//! subresource (ours and the real kubectl's), describe rs and rollout history --revision.

use std::time::Duration;

use serde_json::{Value, json};
use wasmkube::api::resources::{NODES, PODS};
use wasmkube::testing::Cluster;

use crate::cli::wasmkube;
use crate::kubectl::kubectl;
use crate::support::{PodBuilder, eventually, phase, wait_for_pod};

/// The embedded node of a test cluster.
const NODE: &str = "node-1";
/// Pods start in well under a second; this leaves room for a loaded machine.
const CONVERGE: Duration = Duration::from_secs(60);

/// Starts pod `name` (sleeping; `empty_dir` adds a scratch volume) and waits until it runs.
async fn running_pod(cluster: &Cluster, name: &str, empty_dir: bool) -> Value {
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
async fn node_status(cluster: &Cluster) -> String {
    eventually(CONVERGE, "node-1 in get nodes", || async {
        let table = wasmkube(cluster, &["get", "nodes"], None).await.stdout;
        let line = table.lines().find(|l| l.starts_with(NODE))?;
        let status = line.split_whitespace().nth(1)?.to_string();
        status.starts_with("Ready").then_some(status)
    })
    .await
}

fn unschedulable(cluster: &Cluster) -> Value {
    let node = cluster.api().get(&NODES, None, NODE).unwrap();
    node["spec"]["unschedulable"].clone()
}

fn pod_exists(cluster: &Cluster, name: &str) -> bool {
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
        let pods = cluster
            .api()
            .list(&PODS, Some("default"), &Default::default())
            .ok()?;
        pods["items"]
            .as_array()?
            .iter()
            .find(|p| {
                let name = p["metadata"]["name"].as_str().unwrap_or_default();
                name.starts_with("web-")
                    && phase(p) == "Running"
                    && p["metadata"]["deletionTimestamp"].is_null()
            })
            .cloned()
    })
    .await
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
    // The evicted pod is gone; its ReplicaSet has made a replacement (which a scheduler that
    // honours the cordon leaves Pending while this is the only node).
    assert!(!pod_exists(&cluster, name));
    cluster.shutdown().await;
}

#[tokio::test]
async fn drain_gives_up_at_the_timeout_in_kubectls_words() {
    let cluster = Cluster::start().await.unwrap();
    let mut pod = PodBuilder::named("slow")
        .container("c", &["sleep", "600000"])
        .build();
    // Parked on a node that does not exist, nothing ever finishes its graceful deletion.
    pod["spec"]["nodeName"] = json!("elsewhere");
    pod["spec"]["terminationGracePeriodSeconds"] = json!(600);
    cluster.api().create(&PODS, Some("default"), pod).unwrap();
    let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "elsewhere"}});
    cluster.api().create(&NODES, None, node).unwrap();

    let args = ["drain", "elsewhere", "--force", "--timeout", "1s"];
    let out = wasmkube(&cluster, &args, None).await;
    assert!(!out.success);
    assert!(
        out.stdout.contains("evicting pod default/slow"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains(
            "error: unable to drain node \"elsewhere\" due to error: drain did not complete within 1s"
        ),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .ends_with("error: drain did not complete within 1s\n"),
        "{}",
        out.stderr
    );
    cluster.shutdown().await;
}

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
    assert!(pod_exists(&cluster, "target"));

    let status = client
        .create(&path("target"), &eviction("target"))
        .await
        .unwrap();
    assert_eq!(
        (status["kind"].clone(), status["code"].clone()),
        (json!("Status"), json!(201))
    );
    assert_eq!(status["status"], "Success");
    assert!(!pod_exists(&cluster, "target"), "grace 0 deletes at once");

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

#[tokio::test]
async fn kubectl_cordons_drains_with_force_and_uncordons() {
    let cluster = Cluster::start().await.unwrap();
    node_status(&cluster).await;
    running_pod(&cluster, "lonely", false).await;
    let cordoned = kubectl(&cluster, &["cordon", NODE], None).await;
    assert!(cordoned.success, "{}", cordoned.stderr);
    assert_eq!(cordoned.stdout.trim(), "node/node-1 cordoned");
    assert_eq!(unschedulable(&cluster), json!(true));
    let nodes = kubectl(&cluster, &["get", "nodes"], None).await.stdout;
    let status = nodes
        .lines()
        .find(|l| l.starts_with(NODE))
        .unwrap_or_default();
    assert_eq!(
        status.split_whitespace().nth(1),
        Some("Ready,SchedulingDisabled"),
        "{nodes}"
    );

    let args = [
        "drain",
        NODE,
        "--force",
        "--ignore-daemonsets",
        "--timeout=50s",
    ];
    let drained = kubectl(&cluster, &args, None).await;
    assert!(drained.success, "{}{}", drained.stdout, drained.stderr);
    assert!(
        drained.stdout.contains("evicting pod default/lonely"),
        "kubectl evicts rather than deletes: {}",
        drained.stdout
    );
    assert!(
        drained.stdout.contains("node/node-1 drained"),
        "{}",
        drained.stdout
    );
    assert!(!pod_exists(&cluster, "lonely"));

    let uncordoned = kubectl(&cluster, &["uncordon", NODE], None).await;
    assert!(uncordoned.success, "{}", uncordoned.stderr);
    assert_eq!(uncordoned.stdout.trim(), "node/node-1 uncordoned");
    assert_ne!(unschedulable(&cluster), json!(true));
    cluster.shutdown().await;
}

/// A Deployment `web` of two exerciser pods running `args`, its change-cause `cause`.
fn deployment_yaml(args: &str, cause: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  annotations:\n    kubernetes.io/change-cause: {cause}\nspec:\n  replicas: 2\n  selector:\n    matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    spec:\n      containers:\n      - name: c\n        image: {}\n        args: {args}\n",
        crate::support::exerciser()
    )
}

/// Applies `manifest` and waits until the rollout is done.
async fn roll_out(cluster: &Cluster, manifest: &str) {
    let applied = wasmkube(cluster, &["apply", "-f", "-"], Some(manifest)).await;
    assert!(applied.success, "{}", applied.stderr);
    let args = ["rollout", "status", "deployment/web", "--timeout=50s"];
    let status = wasmkube(cluster, &args, None).await;
    assert!(status.success, "{}{}", status.stdout, status.stderr);
}

#[tokio::test]
async fn describe_replica_set_and_node_show_replicas_pods_and_requests() {
    let cluster = Cluster::start().await.unwrap();
    roll_out(&cluster, &deployment_yaml(r#"[sleep, "600000"]"#, "first")).await;
    let table = wasmkube(&cluster, &["get", "rs"], None).await.stdout;
    let rs = table
        .lines()
        .find_map(|l| {
            l.split_whitespace()
                .next()
                .filter(|n| n.starts_with("web-"))
        })
        .unwrap_or_else(|| panic!("no ReplicaSet of web in\n{table}"))
        .to_string();
    let rs_path = format!("rs/{rs}");
    for args in [
        vec!["describe", "rs", &rs],
        vec!["describe", "replicasets", &rs],
        vec!["describe", &rs_path],
    ] {
        let out = wasmkube(&cluster, &args, None).await;
        assert!(out.success, "{}", out.stderr);
        let text = out.stdout;
        for line in [
            format!("Name:           {rs}"),
            format!("Selector:       app=web,pod-template-hash={}", &rs[4..]),
            "Controlled By:  Deployment/web".into(),
            "Replicas:       2 current / 2 desired".into(),
            "Pods Status:    2 Running / 0 Waiting / 0 Succeeded / 0 Failed".into(),
            "Pod Template:".into(),
            "   c:".into(),
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing from\n{text}"
            );
        }
        assert!(text.contains("kubernetes.io/change-cause: first"), "{text}");
        assert!(text.contains("Events:"), "{text}");
    }

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
    let pods = text
        .lines()
        .find(|l| l.starts_with("Non-terminated Pods:"))
        .unwrap_or_else(|| panic!("no pods section in\n{text}"));
    assert!(pods.ends_with("(2 in total)"), "{text}");
    let rows = text
        .lines()
        .filter(|l| l.trim_start().starts_with("default "))
        .count();
    assert_eq!(rows, 2, "{text}");
    cluster.shutdown().await;
}

#[tokio::test]
async fn rollout_history_revision_shows_that_revisions_template_and_change_cause() {
    let cluster = Cluster::start().await.unwrap();
    roll_out(&cluster, &deployment_yaml(r#"[sleep, "600000"]"#, "first")).await;
    roll_out(&cluster, &deployment_yaml(r#"[sleep, "700000"]"#, "second")).await;
    for (revision, cause, arg, other) in [
        ("1", "first", "600000", "700000"),
        ("2", "second", "700000", "600000"),
    ] {
        let flag = format!("--revision={revision}");
        let out = wasmkube(
            &cluster,
            &["rollout", "history", "deployment/web", &flag],
            None,
        )
        .await;
        assert!(out.success, "{}", out.stderr);
        let text = out.stdout;
        assert!(
            text.starts_with(&format!(
                "deployment.apps/web with revision #{revision}\nPod Template:\n"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!("kubernetes.io/change-cause: {cause}")),
            "{text}"
        );
        assert!(text.contains(arg) && !text.contains(other), "{text}");
        assert!(text.contains("pod-template-hash="), "{text}");
    }
    let args = ["rollout", "history", "deployment/web", "--revision", "9"];
    let missing = wasmkube(&cluster, &args, None).await;
    assert!(!missing.success);
    assert_eq!(
        missing.stderr.trim(),
        "error: unable to find the specified revision"
    );
    cluster.shutdown().await;
}
