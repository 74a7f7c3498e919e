//! The Python `kubernetes` client (from PyPI, as `.ci/run` installs it) drives a real cluster:
//! `create_namespaced_deployment`, `watch.Watch().stream`, `list_namespaced_pod`,
//! `read_namespaced_pod_log`, `patch_namespaced_deployment`, and a 404 as an `ApiException`.

use wasmkube::testing::Cluster;

use crate::support::{exerciser, run_command};

/// The script, beside the Rust tests.
const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/clients/python_client.py"
);

#[tokio::test]
async fn the_python_client_creates_watches_lists_reads_logs_and_patches() {
    let cluster = Cluster::start().await.unwrap();
    let kubeconfig = cluster.kubeconfig().display().to_string();
    // `python3` from PATH: .ci/run puts its venv, which has the `kubernetes` package, first.
    let command = tokio::process::Command::new("python3");
    let image = exerciser();
    let output = run_command(command, &[SCRIPT, &kubeconfig, &image], None).await;
    assert!(
        output.success,
        "stdout:\n{}\nstderr:\n{}",
        output.stdout, output.stderr
    );
    for call in [
        "create_namespaced_deployment",
        "watch.stream",
        "list_namespaced_pod",
        "read_namespaced_pod_log hello-python",
        "patch_namespaced_deployment 2",
        "not_found 404",
    ] {
        assert!(
            output.stdout.contains(&format!("ok {call}")),
            "{call} missing from:\n{}",
            output.stdout
        );
    }
    cluster.shutdown().await;
}
