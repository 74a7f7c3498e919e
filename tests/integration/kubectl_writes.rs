//! kubectl's write formats against a real cluster: the protobuf bodies of its typed commands
//! (`create namespace`, `create deployment`, `run`), JSON/merge/strategic patches, server-side
//! apply with its conflicts, server-side dry run (`diff`, `--dry-run=server`) and field
//! validation. Written for kubectl 1.37 (CI installs it), whose typed clients send protobuf.

use serde_json::{Value, json};
use wasmkube::api::kinds::{DEPLOYMENTS, NAMESPACES, PODS};
use wasmkube::testing::Cluster;

use crate::cli::wasmkube;
use crate::kubectl::kubectl;
use crate::support::Output;

/// An image kubectl accepts (it refuses file paths); the pod never starts, which is fine here.
const IMAGE: &str = "registry.example/web:1";

fn ok(output: &Output) -> &str {
    assert!(output.success, "{}{}", output.stdout, output.stderr);
    output.stdout.trim()
}

/// `kubectl patch deployment web --type=TYPE -p PATCH`.
async fn patch_web(cluster: &Cluster, patch_type: &str, patch: &str) -> Output {
    let patch_type = format!("--type={patch_type}");
    let args = ["patch", "deployment", "web", &patch_type, "-p", patch];
    kubectl(cluster, &args, None).await
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

pub fn manifest(replicas: u32, extra_label: Option<&str>) -> String {
    let extra = extra_label
        .map(|l| format!("\n    {l}: \"yes\""))
        .unwrap_or_default();
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels:\n    app: web{extra}\nspec:\n  replicas: {replicas}\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n      - name: web\n        image: {IMAGE}\n"
    )
}

#[tokio::test]
async fn kubectl_patch_takes_json_merge_and_strategic_patches() {
    let cluster = Cluster::start().await.unwrap();
    let created = kubectl(&cluster, &["apply", "-f", "-"], Some(&manifest(1, None))).await;
    ok(&created);
    let json_patch = r#"[{"op":"test","path":"/spec/replicas","value":1},{"op":"replace","path":"/spec/replicas","value":2}]"#;
    let patched = patch_web(&cluster, "json", json_patch).await;
    assert_eq!(ok(&patched), "deployment.apps/web patched");
    assert_eq!(deployment(&cluster, "web")["spec"]["replicas"], 2);

    let failed_test = r#"[{"op":"test","path":"/spec/replicas","value":7}]"#;
    let refused = patch_web(&cluster, "json", failed_test).await;
    assert!(!refused.success, "{}", refused.stdout);

    let merge = r#"{"metadata":{"labels":{"tier":"front"}}}"#;
    let merged = patch_web(&cluster, "merge", merge).await;
    ok(&merged);
    let strategic = r#"{"spec":{"template":{"spec":{"containers":[{"name":"side","image":"registry.example/side:1"}]}}}}"#;
    let added = patch_web(&cluster, "strategic", strategic).await;
    ok(&added);
    let web = deployment(&cluster, "web");
    assert_eq!(web["metadata"]["labels"]["tier"], "front");
    let names: Vec<&str> = web["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["web", "side"],
        "strategic merge keeps web and adds side"
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn kubectl_server_side_apply_updates_reports_conflicts_and_forces() {
    let cluster = Cluster::start().await.unwrap();
    let apply = ["apply", "--server-side", "-f", "-"];
    let first = kubectl(&cluster, &apply, Some(&manifest(1, Some("extra")))).await;
    assert_eq!(ok(&first), "deployment.apps/web serverside-applied");
    let web = deployment(&cluster, "web");
    assert_eq!(web["metadata"]["managedFields"][0]["manager"], "kubectl");
    assert_eq!(web["metadata"]["managedFields"][0]["operation"], "Apply");

    let second = kubectl(&cluster, &apply, Some(&manifest(2, None))).await;
    ok(&second);
    let web = deployment(&cluster, "web");
    assert_eq!(web["spec"]["replicas"], 2);
    assert!(
        web["metadata"]["labels"].get("extra").is_none(),
        "no longer applied: {web}"
    );

    let other = ["apply", "--server-side", "--field-manager=ops", "-f", "-"];
    let conflict = kubectl(&cluster, &other, Some(&manifest(4, None))).await;
    assert!(!conflict.success, "{}", conflict.stdout);
    assert!(
        conflict
            .stderr
            .contains("Apply failed with 1 conflict: conflict with \"kubectl\": .spec.replicas"),
        "{}",
        conflict.stderr
    );
    assert_eq!(deployment(&cluster, "web")["spec"]["replicas"], 2);

    let forced = [
        "apply",
        "--server-side",
        "--field-manager=ops",
        "--force-conflicts",
        "-f",
        "-",
    ];
    ok(&kubectl(&cluster, &forced, Some(&manifest(4, None))).await);
    assert_eq!(deployment(&cluster, "web")["spec"]["replicas"], 4);
    cluster.shutdown().await;
}

#[tokio::test]
async fn kubectl_diff_and_server_dry_run_change_nothing() {
    let cluster = Cluster::start().await.unwrap();
    ok(&kubectl(&cluster, &["apply", "-f", "-"], Some(&manifest(1, None))).await);
    let before = deployment(&cluster, "web");

    let diff = kubectl(&cluster, &["diff", "-f", "-"], Some(&manifest(3, None))).await;
    assert!(
        diff.stdout.contains("-  replicas: 1"),
        "{}{}",
        diff.stdout,
        diff.stderr
    );
    assert!(diff.stdout.contains("+  replicas: 3"), "{}", diff.stdout);

    let dry = ["apply", "--dry-run=server", "-f", "-"];
    let answered = kubectl(&cluster, &dry, Some(&manifest(5, None))).await;
    assert_eq!(
        ok(&answered),
        "deployment.apps/web configured (server dry run)"
    );
    let created_dry = kubectl(
        &cluster,
        &["create", "namespace", "ghost", "--dry-run=server"],
        None,
    )
    .await;
    ok(&created_dry);
    assert!(cluster.api().get(&NAMESPACES, None, "ghost").is_err());
    let deleted_dry = kubectl(
        &cluster,
        &["delete", "deployment", "web", "--dry-run=server"],
        None,
    )
    .await;
    ok(&deleted_dry);

    // The controllers write status meanwhile; what the dry runs would have changed is intact.
    let after = deployment(&cluster, "web");
    assert_eq!(after["spec"], before["spec"]);
    assert_eq!(after["metadata"]["generation"], 1);
    assert!(after["metadata"].get("deletionTimestamp").is_none());
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_typo_in_a_manifest_is_refused_when_strict_and_warned_about_otherwise() {
    let cluster = Cluster::start().await.unwrap();
    let typo = manifest(1, None).replace("  replicas: 1", "  replicas: 1\n  replicaz: 2");
    // kubectl's default is --validate=strict, which it leaves to the server.
    for args in [
        &["apply", "-f", "-"][..],
        &["apply", "--validate=strict", "-f", "-"],
    ] {
        let strict = kubectl(&cluster, args, Some(&typo)).await;
        assert!(!strict.success, "{}", strict.stdout);
        assert!(
            strict
                .stderr
                .contains("strict decoding error: unknown field \"spec.replicaz\""),
            "{}",
            strict.stderr
        );
    }
    assert!(
        cluster
            .api()
            .get(&DEPLOYMENTS, Some("default"), "web")
            .is_err()
    );

    let warn = ["apply", "--validate=warn", "-f", "-"];
    let warned = kubectl(&cluster, &warn, Some(&typo)).await;
    assert_eq!(ok(&warned), "deployment.apps/web created");
    assert!(
        warned
            .stderr
            .contains("Warning: unknown field \"spec.replicaz\""),
        "{}",
        warned.stderr
    );
    cluster.shutdown().await;
}

/// A `List` of Deployments named `names`, as `kubectl get -o json` prints several objects.
fn deployment_list(names: &[&str]) -> Value {
    let items: Vec<Value> = names
        .iter()
        .map(|name| {
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
                   "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                            "template": {"metadata": {"labels": {"app": name}},
                                         "spec": {"containers": [{"name": "c", "image": IMAGE}]}}}})
        })
        .collect();
    json!({"apiVersion": "v1", "kind": "List", "items": items})
}

/// kubectl validates the items of a List itself, against `/openapi/v2` in protobuf.
#[tokio::test]
async fn kubectl_creates_a_list_and_finds_a_typo_in_one_of_its_items() {
    let cluster = Cluster::start().await.unwrap();
    let list = deployment_list(&["web", "api"]).to_string();
    let created = kubectl(&cluster, &["create", "-f", "-"], Some(&list)).await;
    assert_eq!(
        ok(&created),
        "deployment.apps/web created\ndeployment.apps/api created"
    );

    let mut typo = deployment_list(&["web2", "api2"]);
    typo["items"][1]["spec"]["replicaz"] = json!(2);
    let refused = kubectl(&cluster, &["create", "-f", "-"], Some(&typo.to_string())).await;
    assert!(!refused.success, "{}", refused.stdout);
    assert!(
        refused.stderr.contains("unknown field \"replicaz\""),
        "{}",
        refused.stderr
    );
    let deployments = cluster.api().list(&DEPLOYMENTS, None, &Default::default());
    assert_eq!(deployments.unwrap()["items"].as_array().unwrap().len(), 2);
    cluster.shutdown().await;
}

#[tokio::test]
async fn our_apply_server_side_is_a_field_manager_beside_kubectls() {
    let cluster = Cluster::start().await.unwrap();
    let ours = ["apply", "--server-side", "-f", "-"];
    let first = wasmkube(&cluster, &ours, Some(&manifest(1, None))).await;
    assert_eq!(ok(&first), "deployment.apps/web serverside-applied");
    let managers = &deployment(&cluster, "web")["metadata"]["managedFields"];
    assert_eq!(managers[0]["manager"], "wasmkube");

    let theirs = ["apply", "--server-side", "-f", "-"];
    let conflict = kubectl(&cluster, &theirs, Some(&manifest(3, None))).await;
    assert!(!conflict.success, "{}", conflict.stdout);
    let said = "Apply failed with 1 conflict: conflict with \"wasmkube\": .spec.replicas";
    assert!(conflict.stderr.contains(said), "{}", conflict.stderr);

    let forced = [
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=ops",
        "-f",
        "-",
    ];
    ok(&wasmkube(&cluster, &forced, Some(&manifest(5, None))).await);
    assert_eq!(deployment(&cluster, "web")["spec"]["replicas"], 5);
    cluster.shutdown().await;
}
