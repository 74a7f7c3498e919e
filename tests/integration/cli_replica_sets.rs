//! The ReplicaSets behind a Deployment from the CLI: describe rs and rollout history
//! --revision, run as the real binary against a real cluster and compared with kubectl.

use wasmkube::testing::Cluster;

use crate::cli::wasmkube;
use crate::cli_workloads::deployment_yaml_with;
use crate::kubectl::kubectl;

/// A Deployment `web` of two exerciser pods running `args` (YAML flow list), its
/// change-cause `cause`.
fn deployment_yaml(args: &str, cause: &str) -> String {
    let annotated =
        format!("  name: web\n  annotations:\n    kubernetes.io/change-cause: {cause}\n");
    deployment_yaml_with(2, args, "").replacen("  name: web\n", &annotated, 1)
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
async fn describe_replica_set_shows_its_owner_replicas_pod_phases_and_template() {
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

/// `text` up to its `Events:` section, whose ages may tick between two runs.
fn before_events(text: &str) -> &str {
    text.split("Events:").next().unwrap_or_default()
}

#[tokio::test]
async fn describe_rs_and_rollout_history_revision_print_what_the_real_kubectl_prints() {
    let cluster = Cluster::start().await.unwrap();
    roll_out(&cluster, &deployment_yaml(r#"[sleep, "600000"]"#, "first")).await;
    roll_out(&cluster, &deployment_yaml(r#"[sleep, "700000"]"#, "second")).await;
    for args in [
        ["rollout", "history", "deployment/web", "--revision=1"],
        ["rollout", "history", "deployment/web", "--revision=2"],
        ["describe", "replicasets", "-l", "app=web"],
    ] {
        let ours = wasmkube(&cluster, &args, None).await;
        let theirs = kubectl(&cluster, &args, None).await;
        assert!(
            ours.success && theirs.success,
            "{}{}",
            ours.stderr,
            theirs.stderr
        );
        assert_eq!(
            before_events(&ours.stdout),
            before_events(&theirs.stdout),
            "{args:?}"
        );
    }
    cluster.shutdown().await;
}
