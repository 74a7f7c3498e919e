//! Scenarios as a kubectl 1.37 user runs them, start to end against one cluster: apply and
//! re-apply, the watch-list waits (`rollout status`, `wait`, `delete`), rollouts, scale,
//! labels, logs, every output format, discovery and its errors, in kubectl's own words.

use serde_json::Value;
use wasmkube::api::kinds::DEPLOYMENTS;
use wasmkube::testing::Cluster;

use crate::kubectl::kubectl;
use crate::support::{Output, exerciser};

fn ok(output: &Output) -> &str {
    assert!(output.success, "{}{}", output.stdout, output.stderr);
    output.stdout.trim()
}

/// A Deployment of two replicas; `extra` adds the `FOO` env var and the `tier` label.
fn web(extra: bool) -> String {
    let (label, env) = match extra {
        true => (
            "\n    tier: front",
            "\n        env:\n        - name: FOO\n          value: bar",
        ),
        false => ("", ""),
    };
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels:\n    app: web{label}\n\
         spec:\n  replicas: 2\n  selector:\n    matchLabels:\n      app: web\n  template:\n    \
         metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n      - name: main\n        \
         image: {}\n        args: [print, hello-web, sleep, \"600000\"]{env}\n",
        exerciser()
    )
}

async fn run(cluster: &Cluster, args: &[&str]) -> String {
    ok(&kubectl(cluster, args, None).await).to_string()
}

fn stored_web(cluster: &Cluster) -> Value {
    let api = cluster.api();
    api.get(&DEPLOYMENTS, Some("default"), "web").unwrap()
}

#[tokio::test]
async fn a_deployment_applied_rolled_out_waited_for_scaled_rolled_back_and_deleted() {
    let cluster = Cluster::start().await.unwrap();
    let applied = kubectl(&cluster, &["apply", "-f", "-"], Some(&web(true))).await;
    assert_eq!(ok(&applied), "deployment.apps/web created");
    let status = run(
        &cluster,
        &["rollout", "status", "deployment/web", "--timeout=60s"],
    )
    .await;
    assert!(
        status.ends_with("deployment \"web\" successfully rolled out"),
        "{status}"
    );
    let args = [
        "wait",
        "--for=condition=Available",
        "deployment/web",
        "--timeout=60s",
    ];
    assert_eq!(
        run(&cluster, &args).await,
        "deployment.apps/web condition met"
    );

    let reapplied = kubectl(&cluster, &["apply", "-f", "-"], Some(&web(false))).await;
    assert_eq!(ok(&reapplied), "deployment.apps/web configured");
    let stored = stored_web(&cluster);
    assert!(
        stored["metadata"]["labels"].get("tier").is_none(),
        "{stored}"
    );
    let container = &stored["spec"]["template"]["spec"]["containers"][0];
    assert!(container.get("env").is_none(), "{container}");
    run(
        &cluster,
        &["rollout", "status", "deployment/web", "--timeout=60s"],
    )
    .await;

    let image = format!("main=file://{}", exerciser());
    let set = run(&cluster, &["set", "image", "deployment/web", &image]).await;
    assert_eq!(set, "deployment.apps/web image updated");
    run(
        &cluster,
        &["rollout", "status", "deployment/web", "--timeout=60s"],
    )
    .await;
    let history = run(&cluster, &["rollout", "history", "deployment/web"]).await;
    let revisions: Vec<&str> = history
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(revisions, ["1", "2", "3"], "{history}");
    let undone = run(&cluster, &["rollout", "undo", "deployment/web"]).await;
    assert_eq!(undone, "deployment.apps/web rolled back");
    run(
        &cluster,
        &["rollout", "status", "deployment/web", "--timeout=60s"],
    )
    .await;
    let image = &stored_web(&cluster)["spec"]["template"]["spec"]["containers"][0]["image"];
    assert_eq!(image, &Value::String(exerciser()));

    let paused = run(&cluster, &["rollout", "pause", "deployment/web"]).await;
    assert_eq!(paused, "deployment.apps/web paused");
    let resumed = run(&cluster, &["rollout", "resume", "deployment/web"]).await;
    assert_eq!(resumed, "deployment.apps/web resumed");
    let restarted = run(&cluster, &["rollout", "restart", "deployment/web"]).await;
    assert_eq!(restarted, "deployment.apps/web restarted");
    run(
        &cluster,
        &["rollout", "status", "deployment/web", "--timeout=60s"],
    )
    .await;

    let scaled = run(&cluster, &["scale", "deployment/web", "--replicas=3"]).await;
    assert_eq!(scaled, "deployment.apps/web scaled");
    let ready = "--for=jsonpath={.status.readyReplicas}=3";
    let waited = run(
        &cluster,
        &["wait", ready, "deployment/web", "--timeout=60s"],
    )
    .await;
    assert_eq!(waited, "deployment.apps/web condition met");
    let logs = run(&cluster, &["logs", "deploy/web"]).await;
    assert_eq!(logs, "hello-web");

    let deleted = run(&cluster, &["delete", "deployment", "web"]).await;
    assert_eq!(
        deleted,
        "deployment.apps \"web\" deleted from default namespace"
    );
    let missing = kubectl(&cluster, &["get", "deployment", "web"], None).await;
    assert!(!missing.success);
    let error = missing.stderr.trim();
    let expected = "Error from server (NotFound): deployments.apps \"web\" not found";
    assert_eq!(error, expected);
    cluster.shutdown().await;
}

#[tokio::test]
async fn labels_annotations_logs_and_every_output_format_as_kubectl_prints_them() {
    let cluster = Cluster::start().await.unwrap();
    let pod = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: once\n  labels:\n    app: once\nspec:\n  \
         restartPolicy: Never\n  containers:\n  - name: main\n    image: {}\n    args: [print, line-one, print, line-two]\n",
        exerciser()
    );
    let created = kubectl(&cluster, &["apply", "-f", "-"], Some(&pod)).await;
    assert_eq!(ok(&created), "pod/once created");
    let args = [
        "wait",
        "--for=jsonpath={.status.phase}=Succeeded",
        "pod/once",
        "--timeout=60s",
    ];
    assert_eq!(run(&cluster, &args).await, "pod/once condition met");
    let followed = run(&cluster, &["logs", "-f", "once"]).await;
    assert_eq!(followed, "line-one\nline-two");

    let labeled = run(&cluster, &["label", "pod", "once", "tier=back"]).await;
    assert_eq!(labeled, "pod/once labeled");
    let relabeled = kubectl(&cluster, &["label", "pod", "once", "tier=front"], None).await;
    assert!(
        !relabeled.success,
        "a label is only changed with --overwrite"
    );
    let args = ["label", "pod", "once", "tier=front", "--overwrite"];
    assert_eq!(run(&cluster, &args).await, "pod/once labeled");
    let annotated = run(&cluster, &["annotate", "pod", "once", "note=hi"]).await;
    assert_eq!(annotated, "pod/once annotated");

    assert_eq!(
        run(&cluster, &["get", "pod", "once", "-o", "name"]).await,
        "pod/once"
    );
    let path = "-o=jsonpath={.metadata.labels.tier} {.metadata.annotations.note}";
    assert_eq!(
        run(&cluster, &["get", "pod", "once", path]).await,
        "front hi"
    );
    let template = "-o=go-template={{.metadata.name}}:{{.status.phase}}";
    assert_eq!(
        run(&cluster, &["get", "pod", "once", template]).await,
        "once:Succeeded"
    );
    let columns = "-o=custom-columns=NAME:.metadata.name,TIER:.metadata.labels.tier";
    let table = run(&cluster, &["get", "pod", "once", columns]).await;
    assert_eq!(
        table.split_whitespace().collect::<Vec<_>>(),
        ["NAME", "TIER", "once", "front"]
    );
    let labels = run(&cluster, &["get", "pod", "once", "--show-labels"]).await;
    assert!(
        labels.lines().next().unwrap().ends_with("LABELS"),
        "{labels}"
    );
    assert!(labels.contains("app=once,tier=front"), "{labels}");
    let wide = run(&cluster, &["get", "pod", "once", "-o", "wide"]).await;
    let header: Vec<&str> = wide.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(&header[..3], ["NAME", "READY", "STATUS"]);
    assert!(header.contains(&"NODE"), "{wide}");
    for format in ["json", "yaml"] {
        let text = run(&cluster, &["get", "pod", "once", "-o", format]).await;
        let parsed: Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(parsed["metadata"]["name"], "once", "{format}");
    }
    let described = run(&cluster, &["describe", "pod", "once"]).await;
    assert!(described.starts_with("Name:"), "{described}");
    assert!(described.contains("Events:"), "{described}");

    let resources = run(&cluster, &["api-resources"]).await;
    let deployments = resources
        .lines()
        .find(|l| l.starts_with("deployments"))
        .unwrap();
    let columns: Vec<&str> = deployments.split_whitespace().collect();
    assert_eq!(
        columns,
        ["deployments", "deploy", "apps/v1", "true", "Deployment"]
    );
    let versions = run(&cluster, &["api-versions"]).await;
    assert!(versions.lines().any(|l| l == "apps/v1"), "{versions}");
    let explained = run(&cluster, &["explain", "deployment.spec.replicas"]).await;
    assert!(
        explained.contains("FIELD: replicas <integer>"),
        "{explained}"
    );

    let namespace = run(&cluster, &["create", "namespace", "scratch"]).await;
    assert_eq!(namespace, "namespace/scratch created");
    let deleted = run(&cluster, &["delete", "namespace", "scratch"]).await;
    assert_eq!(deleted, "namespace \"scratch\" deleted");
    let deleted = run(&cluster, &["delete", "pod", "once"]).await;
    assert_eq!(deleted, "pod \"once\" deleted from default namespace");
    cluster.shutdown().await;
}
