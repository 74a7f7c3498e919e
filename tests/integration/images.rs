//! The image store: `wasmkube images import|ls|rm`, pods naming an imported component
//! (`kubectl run --image=hello:v1`, which refuses file paths), a clear pull error for a name
//! imported nowhere, and a joined node fetching an image from the control plane.

use std::time::Duration;

use wasmkube::api::kinds::PODS;
use wasmkube::testing::Cluster;

use crate::cli::wasmkube;
use crate::kubectl::kubectl;
use crate::processes::start_agent;
use crate::support::{PodBuilder, container_status, eventually, exerciser, pod_logs, wait_for_pod};

fn ok(output: &crate::support::Output) -> &str {
    assert!(output.success, "{}{}", output.stdout, output.stderr);
    output.stdout.trim()
}

#[tokio::test]
async fn an_imported_component_runs_under_its_name_from_kubectl_run_until_removed() {
    let cluster = Cluster::start().await.unwrap();
    let imported = wasmkube(
        &cluster,
        &["images", "import", &exerciser(), "hello:v1"],
        None,
    )
    .await;
    let said = ok(&imported);
    assert!(
        said.starts_with("image hello:v1 imported (sha256:"),
        "{said}"
    );
    let listed = wasmkube(&cluster, &["images", "ls"], None).await;
    let rows: Vec<Vec<&str>> = ok(&listed)
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["IMAGE", "DIGEST", "SIZE", "AGE"]);
    assert_eq!(rows[1][0], "hello:v1");

    let args = [
        "run",
        "hello",
        "--image=localhost/hello:v1",
        "--restart=Never",
        "--",
        "print",
        "hi-from-an-image",
    ];
    assert_eq!(
        ok(&kubectl(&cluster, &args, None).await),
        "pod/hello created"
    );
    let succeeded = |pod: &serde_json::Value| pod["status"]["phase"] == "Succeeded";
    wait_for_pod(
        cluster.api(),
        "default",
        "hello",
        "hello Succeeded",
        succeeded,
    )
    .await;
    let logs = pod_logs(&cluster, "default", "hello", "hello").await;
    assert_eq!(logs.trim(), "hi-from-an-image");

    let removed = wasmkube(&cluster, &["images", "rm", "hello:v1"], None).await;
    assert_eq!(ok(&removed), "image hello:v1 removed");
    let again = wasmkube(&cluster, &["images", "rm", "hello:v1"], None).await;
    assert!(!again.success);
    assert!(
        again.stderr.contains("images \"hello:v1\" not found"),
        "{}",
        again.stderr
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_pod_naming_an_image_imported_nowhere_waits_in_err_image_pull_saying_how_to_import_it() {
    let cluster = Cluster::start().await.unwrap();
    let pod = PodBuilder::named("lost")
        .container("c", &["print", "x"])
        .build();
    let mut pod = pod;
    pod["spec"]["containers"][0]["image"] = "missing:v9".into();
    cluster.api().create(&PODS, Some("default"), pod).unwrap();
    let pod = wait_for_pod(cluster.api(), "default", "lost", "ErrImagePull", |pod| {
        container_status(pod, "c")["state"]["waiting"]["reason"]
            .as_str()
            .is_some_and(|r| r == "ErrImagePull" || r == "ImagePullBackOff")
    })
    .await;
    let message = container_status(&pod, "c")["state"]["waiting"]["message"].to_string();
    let hint = "import it with `wasmkube images import FILE missing:v9`";
    assert!(message.contains(hint), "{message}");

    let refused = wasmkube(
        &cluster,
        &["images", "import", "/etc/hostname", "bad:v1"],
        None,
    )
    .await;
    assert!(!refused.success);
    assert!(
        refused.stderr.contains("is not a WebAssembly component"),
        "{}",
        refused.stderr
    );
    let invalid = wasmkube(
        &cluster,
        &["images", "import", &exerciser(), "Bad Name"],
        None,
    )
    .await;
    assert!(
        invalid.stderr.contains("invalid image name"),
        "{}",
        invalid.stderr
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_joined_node_fetches_an_image_it_lacks_from_the_control_plane() {
    let cluster = Cluster::start_with(|c| c.embedded_node = false)
        .await
        .unwrap();
    let imported = wasmkube(
        &cluster,
        &["images", "import", &exerciser(), "team/app:1"],
        None,
    )
    .await;
    ok(&imported);
    let root = tempfile::tempdir().unwrap();
    let data_dir = root.path().join("edge-1");
    let _agent = start_agent(
        &cluster.api_url(),
        &cluster.node_token(),
        "edge-1",
        &data_dir,
    );
    let mut pod = PodBuilder::named("fetched")
        .container("c", &["print", "fetched-it"])
        .restart_policy("Never")
        .build();
    pod["spec"]["containers"][0]["image"] = "team/app:1".into();
    let api = cluster.api();
    eventually(Duration::from_secs(30), "the pod created", || async {
        api.create(&PODS, Some("default"), pod.clone()).ok()
    })
    .await;
    let succeeded = |pod: &serde_json::Value| pod["status"]["phase"] == "Succeeded";
    wait_for_pod(api, "default", "fetched", "fetched Succeeded", succeeded).await;
    let index = std::fs::read_to_string(data_dir.join("images").join("index.json")).unwrap();
    assert!(
        index.contains("\"team/app:1\""),
        "the agent keeps what it fetched: {index}"
    );
    cluster.shutdown().await;
}
