//! CustomResourceDefinitions applied with kubectl: served within a second (discovery, CRUD,
//! Tables with the declared columns, OpenAPI for explain, status and scale), validated and
//! defaulted by their schema, and gone with their objects when the definition is deleted.

use std::time::Duration;

use serde_json::json;
use wasmkube::testing::Cluster;

use crate::kubectl::kubectl;
use crate::support::eventually;

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    - {name: Color, type: string, jsonPath: .spec.color}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {type: integer, minimum: 0, description: How big the widget is.}
              color: {type: string, enum: [red, blue], default: red}
              replicas: {type: integer}
          status:
            type: object
            properties:
              replicas: {type: integer}
"#;

const WIDGETS: &str = "/apis/example.com/v1/namespaces/default/widgets";

#[tokio::test]
async fn a_crd_applied_with_kubectl_serves_validates_prints_and_goes_with_its_objects() {
    let cluster = Cluster::start().await.unwrap();
    let applied = kubectl(&cluster, &["apply", "-f", "-"], Some(CRD)).await;
    assert!(applied.success, "{}", applied.stderr);
    let client = cluster.client();
    eventually(Duration::from_secs(1), "the CRD Established", || async {
        let crd = client
            .get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com")
            .await
            .ok()?;
        let conditions = crd["status"]["conditions"].as_array()?;
        conditions
            .iter()
            .any(|c| c["type"] == "Established" && c["status"] == "True")
            .then_some(())
    })
    .await;

    let widget = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1}\nspec: {size: 3, bogus: 1}\n";
    let strict = kubectl(&cluster, &["apply", "-f", "-"], Some(widget)).await;
    assert!(!strict.success);
    assert!(
        strict.stderr.contains(r#"unknown field "spec.bogus""#),
        "{}",
        strict.stderr
    );
    let created = kubectl(
        &cluster,
        &["apply", "--validate=false", "-f", "-"],
        Some(widget),
    )
    .await;
    assert!(created.success, "{}", created.stderr);
    let stored = client.get(&format!("{WIDGETS}/w1")).await.unwrap();
    assert_eq!(
        stored["spec"],
        json!({"size": 3, "color": "red"}),
        "pruned and defaulted"
    );

    let table = kubectl(&cluster, &["get", "wd"], None).await;
    let header: Vec<&str> = table
        .stdout
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAME", "SIZE", "COLOR"],
        "{}{}",
        table.stdout,
        table.stderr
    );
    assert_eq!(
        table
            .stdout
            .lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["w1", "3", "red"]
    );

    let bad = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w2}\nspec: {size: -1, color: pink}\n";
    let refused = kubectl(&cluster, &["apply", "-f", "-"], Some(bad)).await;
    assert!(!refused.success);
    assert!(
        refused
            .stderr
            .contains("spec.size in body should be greater than or equal to 0"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains(r#"Unsupported value: "pink""#),
        "{}",
        refused.stderr
    );

    let explained = kubectl(&cluster, &["explain", "widget.spec.size"], None).await;
    assert!(
        explained.stdout.contains("How big the widget is."),
        "{}{}",
        explained.stdout,
        explained.stderr
    );

    let scaled = kubectl(&cluster, &["scale", "widget", "w1", "--replicas=4"], None).await;
    assert!(scaled.success, "{}", scaled.stderr);
    assert_eq!(
        client.get(&format!("{WIDGETS}/w1")).await.unwrap()["spec"]["replicas"],
        4
    );
    let mut status = client.get(&format!("{WIDGETS}/w1")).await.unwrap();
    status["status"] = json!({"replicas": 4});
    status["spec"]["size"] = json!(9);
    let written = client
        .replace(&format!("{WIDGETS}/w1/status"), &status)
        .await
        .unwrap();
    assert_eq!(
        (
            written["status"]["replicas"].clone(),
            written["spec"]["size"].clone()
        ),
        (json!(4), json!(3))
    );

    let deleted = kubectl(&cluster, &["delete", "crd", "widgets.example.com"], None).await;
    assert!(deleted.success, "{}", deleted.stderr);
    let gone = client.get(WIDGETS).await.unwrap_err();
    assert_eq!(gone.code(), Some(404));
    let resources = client.get("/apis").await.unwrap();
    assert!(
        !resources.to_string().contains("example.com"),
        "{resources}"
    );
    cluster.shutdown().await;
}

/// Two served versions of one resource, v1 stored, no conversion webhook.
const TWO_VERSIONS: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: gadgets, singular: gadget, kind: Gadget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
  - name: v2
    served: true
    storage: false
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
"#;

#[tokio::test]
async fn each_served_version_shows_the_same_objects_in_its_own_api_version() {
    let cluster = Cluster::start().await.unwrap();
    let applied = kubectl(&cluster, &["apply", "-f", "-"], Some(TWO_VERSIONS)).await;
    assert!(applied.success, "{}", applied.stderr);
    let client = cluster.client();
    let (v1, v2) = (
        "/apis/example.com/v1/namespaces/default/gadgets",
        "/apis/example.com/v2/namespaces/default/gadgets",
    );
    eventually(Duration::from_secs(5), "both versions served", || async {
        client.list(v2, &Default::default()).await.ok()
    })
    .await;
    let gadget = json!({"apiVersion": "example.com/v1", "kind": "Gadget",
                        "metadata": {"name": "g1"}, "spec": {"size": 1}});
    client.create(v1, &gadget).await.unwrap();

    let read = client.get(&format!("{v2}/g1")).await.unwrap();
    assert_eq!(read["apiVersion"], "example.com/v2");
    let listed = client.list(v2, &Default::default()).await.unwrap();
    assert_eq!(listed["items"][0]["apiVersion"], "example.com/v2");
    let patched = client
        .patch(&format!("{v2}/g1"), &json!({"spec": {"size": 2}}))
        .await
        .unwrap();
    assert_eq!(patched["apiVersion"], "example.com/v2");
    let back = client.get(&format!("{v1}/g1")).await.unwrap();
    assert_eq!(
        (&back["apiVersion"], &back["spec"]["size"]),
        (&json!("example.com/v1"), &json!(2))
    );
    let shown = kubectl(
        &cluster,
        &[
            "get",
            "gadgets.v2.example.com",
            "g1",
            "-o",
            "jsonpath={.apiVersion}",
        ],
        None,
    )
    .await;
    assert_eq!(shown.stdout, "example.com/v2", "{}", shown.stderr);
    cluster.shutdown().await;
}
