//! The kubectl-style CLI, run as the real binary against a real cluster.

use std::time::Duration;

use wasmkube::testing::Cluster;

use crate::support::{Output, eventually, run_command};

/// Runs `wasmkube ARGS` against the cluster (optionally feeding `stdin`).
pub async fn wasmkube(cluster: &Cluster, args: &[&str], stdin: Option<&str>) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_wasmkube"));
    command.arg("--kubeconfig").arg(cluster.kubeconfig());
    run_command(command, args, stdin).await
}

fn demo_manifest() -> String {
    format!("{}/demo.toml", env!("WASMKUBE_SAMPLES_DIR"))
}

#[tokio::test]
async fn the_demo_applied_from_toml_runs_2_of_2_and_the_reader_shows_what_the_writer_wrote() {
    let cluster = Cluster::start().await.unwrap();
    let applied = wasmkube(&cluster, &["apply", "-f", &demo_manifest()], None).await;
    assert!(applied.success, "{}", applied.stderr);
    assert_eq!(applied.stdout.trim(), "pod/demo created");
    eventually(Duration::from_secs(20), "demo 2/2 Running", || async {
        let table = wasmkube(&cluster, &["get", "pods"], None).await.stdout;
        let row = table.lines().find(|l| l.starts_with("demo "))?.to_string();
        let columns: Vec<&str> = row.split_whitespace().collect();
        (columns.get(1) == Some(&"2/2") && columns.get(2) == Some(&"Running")).then_some(())
    })
    .await;
    eventually(
        Duration::from_secs(20),
        "reader prints the writer's lines",
        || async {
            let logs = wasmkube(&cluster, &["logs", "demo", "-c", "reader"], None)
                .await
                .stdout;
            logs.contains("hello-from-writer 2").then_some(())
        },
    )
    .await;
    let again = wasmkube(&cluster, &["apply", "-f", &demo_manifest()], None).await;
    assert_eq!(again.stdout.trim(), "pod/demo unchanged");
    let deleted = wasmkube(&cluster, &["delete", "pod", "demo"], None).await;
    assert!(deleted.success, "{}", deleted.stderr);
    assert_eq!(
        deleted.stdout.trim(),
        "pod \"demo\" deleted from default namespace"
    );
    let gone = wasmkube(&cluster, &["get", "pod", "demo"], None).await;
    assert!(!gone.success);
    assert!(gone.stderr.contains("NotFound"), "{}", gone.stderr);
    cluster.shutdown().await;
}

/// Each malformed manifest exits non-zero, names the field and leaves the cluster unchanged.
#[tokio::test]
async fn malformed_manifests_are_refused_with_the_field_named_and_change_nothing() {
    let cluster = Cluster::start().await.unwrap();
    let long_name = "a".repeat(64);
    let cases = [
        (
            "apiVersion: v1\nkind: Gadget\nmetadata:\n  name: g\n",
            "Gadget",
        ),
        (
            &*format!(
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {long_name}\nspec:\n  containers:\n  - name: c\n    image: x.wasm\n"
            ),
            "metadata.name",
        ),
        (
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n",
            "spec.containers[0].image",
        ),
        (
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n    image: x.wasm\n  - name: c\n    image: x.wasm\n",
            "spec.containers[1].name",
        ),
        (
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n    image: x.wasm\n    ports:\n    - containerPort: eighty\n",
            "spec.containers[0].ports[0].containerPort",
        ),
    ];
    for (manifest, field) in cases {
        let output = wasmkube(&cluster, &["apply", "-f", "-"], Some(manifest)).await;
        assert!(!output.success, "{field}: should fail");
        assert!(
            output.stderr.contains(field),
            "{field} not named in: {}",
            output.stderr
        );
    }
    let huge = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: huge\n  annotations:\n    blob: {}\nspec:\n  containers:\n  - name: c\n    image: x.wasm\n",
        "x".repeat(4 << 20)
    );
    let output = wasmkube(&cluster, &["apply", "-f", "-"], Some(&huge)).await;
    assert!(!output.success);
    assert!(
        output.stderr.to_lowercase().contains("too large"),
        "{}",
        output.stderr
    );
    let pods = wasmkube(&cluster, &["get", "pods", "-o", "name"], None).await;
    assert_eq!(pods.stdout.trim(), "", "nothing was created");
    cluster.shutdown().await;
}

#[tokio::test]
async fn yaml_json_and_toml_manifests_apply_alike_and_relative_images_resolve() {
    let cluster = Cluster::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        format!("{}/exerciser.wasm", env!("WASMKUBE_SAMPLES_DIR")),
        dir.path().join("ex.wasm"),
    )
    .unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write(
        "a.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: from-yaml\nspec:\n  restartPolicy: Never\n  containers:\n  - name: c\n    image: ex.wasm\n    args: [print, yaml]\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: extra\n",
    );
    write(
        "b.json",
        r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "from-json"}, "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "ex.wasm", "args": ["print", "json"]}]}}"#,
    );
    write(
        "c.toml",
        "apiVersion = \"v1\"\nkind = \"Pod\"\n[metadata]\nname = \"from-toml\"\n[spec]\nrestartPolicy = \"Never\"\n[[spec.containers]]\nname = \"c\"\nimage = \"ex.wasm\"\nargs = [\"print\", \"toml\"]\n",
    );
    let applied = wasmkube(
        &cluster,
        &["apply", "-f", dir.path().to_str().unwrap()],
        None,
    )
    .await;
    assert!(applied.success, "{}", applied.stderr);
    for (pod, text) in [
        ("from-yaml", "yaml"),
        ("from-json", "json"),
        ("from-toml", "toml"),
    ] {
        eventually(Duration::from_secs(20), pod, || async {
            let logs = wasmkube(&cluster, &["logs", pod], None).await.stdout;
            (logs.trim() == text).then_some(())
        })
        .await;
    }
    let namespaces = wasmkube(&cluster, &["get", "ns"], None).await.stdout;
    assert!(
        namespaces.lines().any(|l| l.starts_with("extra ")),
        "{namespaces}"
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn get_prints_kubectl_tables_and_structured_output() {
    let cluster = Cluster::start().await.unwrap();
    let created = wasmkube(&cluster, &["create", "namespace", "team"], None).await;
    assert!(created.success, "{}", created.stderr);
    let pod = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: crash\n  namespace: team\nspec:\n  containers:\n  - name: c\n    image: {}\n    args: [exit, \"1\"]\n",
        crate::support::exerciser()
    );
    assert!(
        wasmkube(&cluster, &["apply", "-f", "-"], Some(&pod))
            .await
            .success
    );
    eventually(
        Duration::from_secs(20),
        "CrashLoopBackOff in the table",
        || async {
            let table = wasmkube(&cluster, &["get", "pods", "-n", "team"], None)
                .await
                .stdout;
            let header: Vec<&str> = table.lines().next()?.split_whitespace().collect();
            assert_eq!(header, ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
            table
                .lines()
                .any(|l| l.contains("0/1") && l.contains("CrashLoopBackOff"))
                .then_some(())
        },
    )
    .await;
    let all = wasmkube(&cluster, &["get", "pods", "-A"], None)
        .await
        .stdout;
    assert!(all.starts_with("NAMESPACE"), "{all}");
    let json_out = wasmkube(
        &cluster,
        &["get", "pod", "crash", "-n", "team", "-o", "json"],
        None,
    )
    .await
    .stdout;
    let parsed: serde_json::Value = serde_json::from_str(&json_out).unwrap();
    assert_eq!(parsed["metadata"]["name"], "crash");
    let nodes = wasmkube(&cluster, &["get", "nodes"], None).await.stdout;
    assert!(
        nodes
            .lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("node-1") && l.contains("Ready")),
        "{nodes}"
    );
    let described = wasmkube(&cluster, &["describe", "pod", "crash", "-n", "team"], None)
        .await
        .stdout;
    assert!(
        described.contains("Events:") && described.contains("BackOff"),
        "{described}"
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn logs_support_tail_previous_and_timestamps() {
    let cluster = Cluster::start().await.unwrap();
    let pod = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: chatty\nspec:\n  containers:\n  - name: c\n    image: {}\n    args: [print, one, print, two, print, three, exit, \"1\"]\n",
        crate::support::exerciser()
    );
    assert!(
        wasmkube(&cluster, &["apply", "-f", "-"], Some(&pod))
            .await
            .success
    );
    eventually(Duration::from_secs(20), "a restart", || async {
        let previous = wasmkube(&cluster, &["logs", "chatty", "--previous"], None).await;
        (previous.success && previous.stdout == "one\ntwo\nthree\n").then_some(())
    })
    .await;
    let tail = wasmkube(
        &cluster,
        &["logs", "chatty", "--previous", "--tail", "1"],
        None,
    )
    .await
    .stdout;
    assert_eq!(tail, "three\n");
    let stamped = wasmkube(
        &cluster,
        &["logs", "chatty", "--previous", "--timestamps"],
        None,
    )
    .await
    .stdout;
    let first = stamped.lines().next().unwrap();
    let (stamp, text) = first.split_once(' ').unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(stamp).is_ok(),
        "{first}"
    );
    assert_eq!(text, "one");
    cluster.shutdown().await;
}
