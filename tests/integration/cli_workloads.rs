//! The CLI on workloads: `get` tables for ReplicaSets and Deployments, and `apply` of
//! `apps/v1` manifests, run as the real binary against a real cluster.

use std::time::Duration;

use wasmkube::testing::Cluster;

use crate::cli::wasmkube;
use crate::support::{eventually, exerciser};

/// Pods start in well under a second; this leaves room for a loaded machine.
const CONVERGE: Duration = Duration::from_secs(60);

/// A Deployment manifest (YAML) of `replicas` exerciser pods that sleep, selected by
/// `app: web`.
fn deployment_yaml(replicas: u32) -> String {
    deployment_yaml_with(replicas, r#"[sleep, "600000"]"#, "")
}

/// A Deployment manifest whose container runs `args` (YAML flow list), with `extra_spec`
/// lines (indented two spaces) added to its spec.
pub fn deployment_yaml_with(replicas: u32, args: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n{extra_spec}  replicas: {replicas}\n  selector:\n    matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    spec:\n      containers:\n      - name: c\n        image: {}\n        args: {args}\n",
        exerciser()
    )
}

/// The whitespace-separated cells of the row of `name` in `table`.
fn row(table: &str, name: &str) -> Option<Vec<String>> {
    table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .map(|l| l.split_whitespace().map(str::to_string).collect())
}

#[tokio::test]
async fn applied_deployment_shows_in_get_deploy_and_its_replica_set_in_get_rs() {
    let cluster = Cluster::start().await.unwrap();
    let applied = wasmkube(&cluster, &["apply", "-f", "-"], Some(&deployment_yaml(2))).await;
    assert!(applied.success, "{}", applied.stderr);
    assert_eq!(applied.stdout.trim(), "deployment.apps/web created");

    eventually(CONVERGE, "deployment web 2/2 up to date", || async {
        let table = wasmkube(&cluster, &["get", "deploy"], None).await.stdout;
        assert!(table.starts_with("NAME"), "{table}");
        let header: Vec<&str> = table.lines().next()?.split_whitespace().collect();
        assert_eq!(header, ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]);
        let cells = row(&table, "web")?;
        (cells[1..4] == ["2/2", "2", "2"]).then_some(())
    })
    .await;

    let table = wasmkube(&cluster, &["get", "replicasets"], None)
        .await
        .stdout;
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]);
    let rs = table
        .lines()
        .find(|l| l.starts_with("web-"))
        .unwrap_or_else(|| panic!("no ReplicaSet of web in\n{table}"));
    assert_eq!(
        rs.split_whitespace().collect::<Vec<_>>()[1..4],
        ["2", "2", "2"]
    );

    let wide = wasmkube(&cluster, &["get", "deployment/web", "-o", "wide"], None).await;
    assert!(wide.success, "{}", wide.stderr);
    let cells = row(&wide.stdout, "web").unwrap();
    assert_eq!(cells[5..], ["c".to_string(), exerciser(), "app=web".into()]);

    let again = wasmkube(&cluster, &["apply", "-f", "-"], Some(&deployment_yaml(2))).await;
    assert_eq!(again.stdout.trim(), "deployment.apps/web unchanged");
    cluster.shutdown().await;
}

#[tokio::test]
async fn scale_deployment_through_the_scale_subresource_changes_its_replicas() {
    let cluster = Cluster::start().await.unwrap();
    let applied = wasmkube(&cluster, &["apply", "-f", "-"], Some(&deployment_yaml(1))).await;
    assert!(applied.success, "{}", applied.stderr);
    let scaled = wasmkube(
        &cluster,
        &["scale", "deployment/web", "--replicas", "3"],
        None,
    )
    .await;
    assert!(scaled.success, "{}", scaled.stderr);
    assert_eq!(scaled.stdout.trim(), "deployment.apps/web scaled");
    eventually(CONVERGE, "deployment web 3/3", || async {
        let table = wasmkube(&cluster, &["get", "deploy", "web"], None)
            .await
            .stdout;
        (row(&table, "web")?[1] == "3/3").then_some(())
    })
    .await;
    let scaled = wasmkube(&cluster, &["scale", "deploy", "web", "--replicas=1"], None).await;
    assert!(scaled.success, "{}", scaled.stderr);
    eventually(CONVERGE, "deployment web 1/1", || async {
        let table = wasmkube(&cluster, &["get", "deploy", "web"], None)
            .await
            .stdout;
        (row(&table, "web")?[1] == "1/1").then_some(())
    })
    .await;
    let wrong = wasmkube(&cluster, &["scale", "pod/web", "--replicas=1"], None).await;
    assert!(!wrong.success);
    cluster.shutdown().await;
}

/// The REVISION cells of `rollout history`.
async fn history(cluster: &Cluster) -> Vec<String> {
    let out = wasmkube(cluster, &["rollout", "history", "deployment/web"], None).await;
    assert!(out.success, "{}", out.stderr);
    assert!(
        out.stdout.starts_with("deployment.apps/web\n"),
        "{}",
        out.stdout
    );
    out.stdout
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn rollout_status_waits_history_lists_revisions_and_undo_reuses_the_old_replica_set() {
    let cluster = Cluster::start().await.unwrap();
    let applied = wasmkube(&cluster, &["apply", "-f", "-"], Some(&deployment_yaml(2))).await;
    assert!(applied.success, "{}", applied.stderr);
    let status = wasmkube(
        &cluster,
        &["rollout", "status", "deployment/web", "--timeout", "50s"],
        None,
    )
    .await;
    assert!(status.success, "{}{}", status.stdout, status.stderr);
    assert_eq!(
        status.stdout.lines().last(),
        Some("deployment \"web\" successfully rolled out")
    );

    let changed = deployment_yaml_with(2, r#"[sleep, "700000"]"#, "");
    let applied = wasmkube(&cluster, &["apply", "-f", "-"], Some(&changed)).await;
    assert_eq!(applied.stdout.trim(), "deployment.apps/web configured");
    let status = wasmkube(
        &cluster,
        &["rollout", "status", "deployment", "web", "--timeout=50s"],
        None,
    )
    .await;
    assert!(status.success, "{}{}", status.stdout, status.stderr);
    assert_eq!(history(&cluster).await, ["1", "2"]);

    let undone = wasmkube(&cluster, &["rollout", "undo", "deployment/web"], None).await;
    assert!(undone.success, "{}", undone.stderr);
    assert_eq!(undone.stdout.trim(), "deployment.apps/web rolled back");
    eventually(CONVERGE, "revision 1 reused as 3", || async {
        (history(&cluster).await == ["2", "3"]).then_some(())
    })
    .await;
    let status = wasmkube(
        &cluster,
        &["rollout", "status", "deployment/web", "--timeout=50s"],
        None,
    )
    .await;
    assert!(status.success, "{}{}", status.stdout, status.stderr);
    let rs = wasmkube(&cluster, &["get", "rs"], None).await.stdout;
    assert_eq!(
        rs.lines().filter(|l| l.starts_with("web-")).count(),
        2,
        "{rs}"
    );
    let deploy = wasmkube(&cluster, &["get", "deploy", "web", "-o", "json"], None)
        .await
        .stdout;
    assert!(
        deploy.contains("600000") && !deploy.contains("pod-template-hash"),
        "{deploy}"
    );

    let undone = wasmkube(
        &cluster,
        &["rollout", "undo", "deployment/web", "--to-revision=3"],
        None,
    )
    .await;
    assert!(
        undone.stdout.contains("skipped rollback"),
        "{}",
        undone.stdout
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn rollout_pause_resume_and_restart_edit_the_deployment() {
    let cluster = Cluster::start().await.unwrap();
    let applied = wasmkube(&cluster, &["apply", "-f", "-"], Some(&deployment_yaml(1))).await;
    assert!(applied.success, "{}", applied.stderr);
    let paused = wasmkube(&cluster, &["rollout", "pause", "deployment/web"], None).await;
    assert_eq!(
        paused.stdout.trim(),
        "deployment.apps/web paused",
        "{}",
        paused.stderr
    );
    let again = wasmkube(&cluster, &["rollout", "pause", "deployment/web"], None).await;
    assert!(!again.success);
    let resumed = wasmkube(&cluster, &["rollout", "resume", "deploy/web"], None).await;
    assert_eq!(
        resumed.stdout.trim(),
        "deployment.apps/web resumed",
        "{}",
        resumed.stderr
    );
    let restarted = wasmkube(&cluster, &["rollout", "restart", "deployment/web"], None).await;
    assert_eq!(
        restarted.stdout.trim(),
        "deployment.apps/web restarted",
        "{}",
        restarted.stderr
    );
    let deploy = wasmkube(&cluster, &["get", "deploy", "web", "-o", "json"], None)
        .await
        .stdout;
    assert!(
        deploy.contains("kubectl.kubernetes.io/restartedAt"),
        "{deploy}"
    );
    eventually(CONVERGE, "restart rolls out revision 2", || async {
        (history(&cluster).await == ["1", "2"]).then_some(())
    })
    .await;
    cluster.shutdown().await;
}

#[tokio::test]
async fn rollout_status_fails_when_the_progress_deadline_is_exceeded() {
    let cluster = Cluster::start().await.unwrap();
    let stuck = deployment_yaml_with(1, "[exit, \"1\"]", "  progressDeadlineSeconds: 5\n");
    let applied = wasmkube(&cluster, &["apply", "-f", "-"], Some(&stuck)).await;
    assert!(applied.success, "{}", applied.stderr);
    let status = wasmkube(
        &cluster,
        &["rollout", "status", "deployment/web", "--timeout=50s"],
        None,
    )
    .await;
    assert!(!status.success, "{}", status.stdout);
    assert!(
        status
            .stdout
            .contains("Waiting for deployment \"web\" rollout to finish"),
        "{}",
        status.stdout
    );
    assert_eq!(
        status.stderr.trim(),
        "error: deployment \"web\" exceeded its progress deadline"
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn set_image_and_set_env_edit_the_template_and_start_a_rollout() {
    let cluster = Cluster::start().await.unwrap();
    let applied = wasmkube(&cluster, &["apply", "-f", "-"], Some(&deployment_yaml(1))).await;
    assert!(applied.success, "{}", applied.stderr);
    let set = wasmkube(
        &cluster,
        &["set", "env", "deployment/web", "GREETING=hi"],
        None,
    )
    .await;
    assert_eq!(
        set.stdout.trim(),
        "deployment.apps/web env updated",
        "{}",
        set.stderr
    );
    let image = exerciser();
    let pair = format!("c={image}");
    let set = wasmkube(
        &cluster,
        &["set", "image", "deployment", "web", &pair],
        None,
    )
    .await;
    assert_eq!(
        set.stdout.trim(),
        "deployment.apps/web image updated",
        "{}",
        set.stderr
    );
    let missing = wasmkube(
        &cluster,
        &["set", "image", "deployment/web", "nope=x"],
        None,
    )
    .await;
    assert!(!missing.success);
    let deploy = wasmkube(&cluster, &["get", "deploy", "web", "-o", "json"], None)
        .await
        .stdout;
    assert!(deploy.contains("GREETING"), "{deploy}");
    let status = wasmkube(
        &cluster,
        &["rollout", "status", "deployment/web", "--timeout=50s"],
        None,
    )
    .await;
    assert!(status.success, "{}{}", status.stdout, status.stderr);
    assert_eq!(history(&cluster).await, ["1", "2"]);
    cluster.shutdown().await;
}

#[tokio::test]
async fn describe_deployment_names_its_new_and_old_replica_sets() {
    let cluster = Cluster::start().await.unwrap();
    let applied = wasmkube(&cluster, &["apply", "-f", "-"], Some(&deployment_yaml(2))).await;
    assert!(applied.success, "{}", applied.stderr);
    let status = wasmkube(
        &cluster,
        &["rollout", "status", "deployment/web", "--timeout=50s"],
        None,
    )
    .await;
    assert!(status.success, "{}{}", status.stdout, status.stderr);
    let described = wasmkube(&cluster, &["describe", "deployment", "web"], None).await;
    assert!(described.success, "{}", described.stderr);
    let text = described.stdout;
    assert!(
        text.contains("2 desired | 2 updated | 2 total | 2 available | 0 unavailable"),
        "{text}"
    );
    let new_line = text
        .lines()
        .find(|l| l.starts_with("NewReplicaSet:"))
        .unwrap_or_default();
    assert!(
        new_line.contains("web-") && new_line.contains("(2/2 replicas created)"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("OldReplicaSets:") && l.ends_with("<none>")),
        "{text}"
    );
    assert!(text.contains("Events:"), "{text}");
    cluster.shutdown().await;
}
