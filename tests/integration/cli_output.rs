//! The flags people script `get` and `delete` with: `--no-headers`, custom columns, JSONPath,
//! `--sort-by`, `--cascade`.

use std::time::Duration;

use wasmkube::testing::Cluster;

use crate::cli::wasmkube;
use crate::cli_workloads::deployment_yaml_with;
use crate::support::{PodBuilder, eventually};

#[tokio::test]
async fn get_prints_custom_columns_jsonpath_sorted_and_without_headers() {
    let cluster = Cluster::start().await.unwrap();
    let client = cluster.client();
    for (name, priority) in [("b", "2"), ("a", "10"), ("c", "1")] {
        let mut pod = PodBuilder::named(name)
            .container("c", &["sleep", "600000"])
            .build();
        pod["metadata"]["labels"] = serde_json::json!({"priority": priority});
        client
            .create("/api/v1/namespaces/default/pods", &pod)
            .await
            .unwrap();
    }
    let names = wasmkube(
        &cluster,
        &["get", "pods", "--no-headers", "-o", "name"],
        None,
    )
    .await;
    assert_eq!(names.stdout, "pod/a\npod/b\npod/c\n", "{}", names.stderr);
    let columns = wasmkube(
        &cluster,
        &["get", "pods", "--sort-by", "{.metadata.labels.priority}", "-o",
          "custom-columns=NAME:.metadata.name,PRIORITY:.metadata.labels.priority,NODE:.spec.nodeName"],
        None,
    )
    .await;
    assert!(columns.success, "{}", columns.stderr);
    let lines: Vec<&str> = columns.stdout.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["NAME", "PRIORITY", "NODE"]
    );
    let order: Vec<&str> = lines[1..]
        .iter()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        order,
        ["c", "a", "b"],
        "sorted as text: \"1\" < \"10\" < \"2\""
    );
    let template =
        r#"jsonpath={range .items[*]}{.metadata.name}={.metadata.labels.priority}{"\n"}{end}"#;
    let jsonpath = wasmkube(&cluster, &["get", "pods", "-o", template], None).await;
    assert_eq!(jsonpath.stdout, "a=10\nb=2\nc=1\n", "{}", jsonpath.stderr);
    let table = wasmkube(&cluster, &["get", "pods", "--no-headers"], None).await;
    assert!(
        table.stdout.lines().all(|l| !l.starts_with("NAME")),
        "{}",
        table.stdout
    );
    assert_eq!(table.stdout.lines().count(), 3);
    cluster.shutdown().await;
}

#[tokio::test]
async fn delete_with_cascade_orphan_leaves_the_replica_set() {
    let cluster = Cluster::start().await.unwrap();
    let manifest = deployment_yaml_with(1, r#"[sleep, "600000"]"#, "");
    let applied = wasmkube(&cluster, &["apply", "-f", "-"], Some(&manifest)).await;
    assert!(applied.success, "{}", applied.stderr);
    let client = cluster.client();
    let replica_sets = "/apis/apps/v1/namespaces/default/replicasets";
    eventually(
        Duration::from_secs(20),
        "the Deployment's ReplicaSet",
        || async {
            let list = client.get(replica_sets).await.ok()?;
            (!list["items"].as_array()?.is_empty()).then_some(())
        },
    )
    .await;
    let deleted = wasmkube(
        &cluster,
        &["delete", "deploy", "web", "--cascade=orphan"],
        None,
    )
    .await;
    assert!(deleted.success, "{}", deleted.stderr);
    assert_eq!(
        deleted.stdout.trim(),
        "deployment.apps \"web\" deleted from default namespace"
    );
    let orphan = eventually(
        Duration::from_secs(20),
        "the ReplicaSet orphaned",
        || async {
            let list = client.get(replica_sets).await.ok()?;
            let rs = list["items"][0].clone();
            let owners = rs["metadata"]["ownerReferences"]
                .as_array()
                .map_or(0, Vec::len);
            (owners == 0).then_some(rs)
        },
    )
    .await;
    assert!(
        orphan["metadata"]["deletionTimestamp"].is_null(),
        "{orphan}"
    );
    let deployment = client
        .get("/apis/apps/v1/namespaces/default/deployments/web")
        .await;
    assert_eq!(deployment.unwrap_err().code(), Some(404));
    let refused = wasmkube(
        &cluster,
        &["delete", "rs", "--all", "--cascade=sideways"],
        None,
    )
    .await;
    assert!(!refused.success);
    assert!(
        refused.stderr.contains("invalid cascade value (sideways)"),
        "{}",
        refused.stderr
    );
    cluster.shutdown().await;
}
