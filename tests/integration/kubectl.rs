//! The real `kubectl` against a real cluster: TLS with the generated CA, bearer token,
//! OpenAPI v3 discovery for `apply`, server-side Tables for `get`, eviction for `drain`.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;
use wasmkube::client::{Client, PODS};
use wasmkube::testing::Cluster;

use crate::cli_nodes::{NODE, node_status, pod_exists, running_pod, unschedulable};
use crate::support::{Output, eventually, run_command};

/// `kubectl` from `PATH`. Missing is a failure, not a skip: CI installs it.
fn kubectl_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("kubectl"))
        .find(|candidate| candidate.is_file())
        .expect("kubectl is not on PATH: install it (.ci/run does) to run these tests")
}

/// Runs `kubectl ARGS` against the cluster's kubeconfig, with a private discovery cache.
pub async fn kubectl(cluster: &Cluster, args: &[&str], stdin: Option<&str>) -> Output {
    let mut command = tokio::process::Command::new(kubectl_binary());
    command
        .arg("--kubeconfig")
        .arg(cluster.kubeconfig())
        .arg("--cache-dir")
        .arg(cluster.data_dir().join("kubectl-cache"));
    run_command(command, args, stdin).await
}

fn pod_manifest(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  containers:\n  - name: main\n    image: {}\n    args: [print, hello-kubectl, sleep, \"600000\"]\n",
        crate::support::exerciser()
    )
}

/// The columns of the row of `name` in a `kubectl get` table.
pub fn row(table: &str, name: &str) -> Option<Vec<String>> {
    let line = table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))?;
    Some(line.split_whitespace().map(str::to_string).collect())
}

#[tokio::test]
async fn kubectl_get_nodes_shows_the_node_ready() {
    let cluster = Cluster::start().await.unwrap();
    let nodes = eventually(Duration::from_secs(20), "node-1 Ready", || async {
        let output = kubectl(&cluster, &["get", "nodes"], None).await;
        assert!(output.success, "{}", output.stderr);
        (row(&output.stdout, "node-1")?.get(1)? == "Ready").then_some(output.stdout)
    })
    .await;
    let header: Vec<&str> = nodes.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]);
    cluster.shutdown().await;
}

#[tokio::test]
async fn kubectl_applies_a_pod_that_runs_logs_reapplies_unchanged_and_deletes() {
    let cluster = Cluster::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("pod.yaml");
    std::fs::write(&manifest, pod_manifest("greeter")).unwrap();
    let manifest = manifest.to_str().unwrap();

    let applied = kubectl(&cluster, &["apply", "-f", manifest], None).await;
    assert!(applied.success, "{}", applied.stderr);
    assert_eq!(applied.stdout.trim(), "pod/greeter created");
    eventually(Duration::from_secs(20), "greeter 1/1 Running", || async {
        let table = kubectl(&cluster, &["get", "pods"], None).await.stdout;
        let columns = row(&table, "greeter")?;
        (columns[1] == "1/1" && columns[2] == "Running").then_some(())
    })
    .await;
    eventually(
        Duration::from_secs(20),
        "kubectl logs shows the greeting",
        || async {
            let logs = kubectl(&cluster, &["logs", "greeter"], None).await;
            logs.stdout.contains("hello-kubectl").then_some(())
        },
    )
    .await;

    let again = kubectl(&cluster, &["apply", "-f", manifest], None).await;
    assert!(again.success, "{}", again.stderr);
    assert_eq!(again.stdout.trim(), "pod/greeter unchanged");

    let json = kubectl(&cluster, &["get", "pods", "-o", "json"], None).await;
    assert!(json.success, "{}", json.stderr);
    let list: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(list["items"][0]["metadata"]["name"], "greeter");
    let applied_config = &list["items"][0]["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"];
    assert!(
        applied_config.is_string(),
        "apply records what it applied: {list}"
    );

    let deleted = kubectl(&cluster, &["delete", "pod", "greeter"], None).await;
    assert!(deleted.success, "{}", deleted.stderr);
    assert_eq!(
        deleted.stdout.trim(),
        "pod \"greeter\" deleted from default namespace"
    );
    eventually(Duration::from_secs(20), "greeter gone", || async {
        let output = kubectl(&cluster, &["get", "pods"], None).await;
        row(&output.stdout, "greeter").is_none().then_some(())
    })
    .await;
    let gone = kubectl(&cluster, &["get", "pod", "greeter"], None).await;
    assert!(!gone.success);
    assert!(gone.stderr.contains("NotFound"), "{}", gone.stderr);
    cluster.shutdown().await;
}

#[tokio::test]
async fn kubectl_apply_of_a_pod_without_an_image_fails_naming_the_field() {
    let cluster = Cluster::start().await.unwrap();
    let manifest =
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: bad\nspec:\n  containers:\n  - name: c\n";
    let output = kubectl(&cluster, &["apply", "-f", "-"], Some(manifest)).await;
    assert!(!output.success, "{}", output.stdout);
    assert!(
        output.stderr.contains("spec.containers[0].image"),
        "{}",
        output.stderr
    );
    let pods = kubectl(&cluster, &["get", "pods", "-o", "name"], None).await;
    assert_eq!(pods.stdout.trim(), "", "nothing was created");
    cluster.shutdown().await;
}

#[tokio::test]
async fn the_api_refuses_plain_http_and_wrong_tokens() {
    let cluster = Cluster::start().await.unwrap();
    let https = cluster.api_url();
    assert!(https.starts_with("https://127.0.0.1:"), "{https}");

    let plain = Client::new(&https.replacen("https://", "http://", 1), "");
    let refused = plain
        .get(&PODS.path(Some("default"), None))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some(400), "{refused}");

    let untrusting = Client::new(&https, "");
    let unverified = untrusting.get("/readyz").await.unwrap_err();
    assert!(
        format!("{unverified:?}").contains("UnknownIssuer"),
        "{unverified:?}"
    );

    let mut garbage = tokio::net::TcpStream::connect(https.trim_start_matches("https://"))
        .await
        .unwrap();
    tokio::io::AsyncWriteExt::write_all(
        &mut garbage,
        &[0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5],
    )
    .await
    .unwrap();
    drop(garbage);

    // The accept loop outlived the failed handshakes above.
    let wrong = Client::with_ca(&https, "wrong-token", &cluster.ca_pem()).unwrap();
    let unauthorized = wrong
        .get(&PODS.path(Some("default"), None))
        .await
        .unwrap_err();
    assert_eq!(unauthorized.code(), Some(401));
    assert_eq!(
        wrong.get_text("/readyz").await.unwrap(),
        "ok",
        "health needs no token"
    );

    let kubectl_wrong = kubectl(&cluster, &["--token", "wrong-token", "get", "pods"], None).await;
    assert!(!kubectl_wrong.success);
    assert!(
        kubectl_wrong.stderr.contains("provide credentials"),
        "{}",
        kubectl_wrong.stderr
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

#[tokio::test]
async fn kubectl_explain_shows_a_kinds_fields_from_the_openapi_schemas() {
    let cluster = Cluster::start().await.unwrap();
    let explained = kubectl(&cluster, &["explain", "pod.spec.containers"], None).await;
    assert!(explained.success, "{}", explained.stderr);
    assert!(
        explained.stdout.contains("FIELD: containers <[]Container>"),
        "{}",
        explained.stdout
    );
    assert!(
        explained.stdout.contains("livenessProbe\t<Probe>"),
        "{}",
        explained.stdout
    );
    let recursive = kubectl(
        &cluster,
        &["explain", "deployment.spec", "--recursive"],
        None,
    )
    .await;
    assert!(recursive.success, "{}", recursive.stderr);
    assert!(
        recursive.stdout.contains("maxSurge"),
        "{}",
        recursive.stdout
    );
    cluster.shutdown().await;
}
