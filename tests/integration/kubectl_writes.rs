//! kubectl's write formats against a real cluster: the protobuf bodies of its typed commands
//! (`create namespace`, `create deployment`, `run`), JSON/merge/strategic patches, server-side
//! apply with its conflicts, server-side dry run (`diff`, `--dry-run=server`) and field
//! validation. Written for kubectl 1.37 (CI installs it), whose typed clients send protobuf.

use serde_json::Value;
use wasmkube::api::kinds::{DEPLOYMENTS, NAMESPACES, PODS};
use wasmkube::testing::Cluster;

use crate::kubectl::kubectl;
use crate::support::Output;

/// An image kubectl accepts (it refuses file paths); the pod never starts, which is fine here.
const IMAGE: &str = "registry.example/web:1";

fn ok(output: &Output) -> &str {
    assert!(output.success, "{}{}", output.stdout, output.stderr);
    output.stdout.trim()
}

fn deployment(cluster: &Cluster, name: &str) -> Value {
    cluster
        .api()
        .get(&DEPLOYMENTS, Some("default"), name)
        .unwrap()
}

#[tokio::test]
async fn kubectl_create_namespace_sends_protobuf_that_is_stored() {
    let cluster = Cluster::start().await.unwrap();
    let created = kubectl(&cluster, &["create", "namespace", "team-a"], None).await;
    assert_eq!(ok(&created), "namespace/team-a created");
    let namespace = cluster.api().get(&NAMESPACES, None, "team-a").unwrap();
    assert_eq!(namespace["status"]["phase"], "Active");
    cluster.shutdown().await;
}

#[tokio::test]
async fn kubectl_create_deployment_and_run_create_what_they_describe() {
    let cluster = Cluster::start().await.unwrap();
    let args = [
        "create",
        "deployment",
        "web",
        "--image",
        IMAGE,
        "--replicas=2",
    ];
    let created = kubectl(&cluster, &args, None).await;
    assert_eq!(ok(&created), "deployment.apps/web created");
    let web = deployment(&cluster, "web");
    assert_eq!(web["spec"]["replicas"], 2);
    assert_eq!(web["spec"]["selector"]["matchLabels"]["app"], "web");
    let container = &web["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], IMAGE);
    assert_eq!(container["name"], "web");

    let run = [
        "run",
        "solo",
        "--image",
        IMAGE,
        "--labels=tier=one",
        "--port=8080",
    ];
    let ran = kubectl(&cluster, &run, None).await;
    assert_eq!(ok(&ran), "pod/solo created");
    let pod = cluster.api().get(&PODS, Some("default"), "solo").unwrap();
    assert_eq!(pod["metadata"]["labels"]["tier"], "one");
    assert_eq!(
        pod["spec"]["containers"][0]["ports"][0]["containerPort"],
        8080
    );
    cluster.shutdown().await;
}
