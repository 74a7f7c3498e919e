//! A kind declared here, in the test, and registered at run time: served, discoverable,
//! printable and admitted with no change anywhere else (the way CustomResourceDefinitions will
//! be).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use wasmkube::api::Cause;
use wasmkube::api::kinds::{Admission, Resource, Strategy, Subresource, encode};
use wasmkube::api::printers::{Column, Columns, since};
use wasmkube::testing::Cluster;

use crate::kubectl::kubectl;

#[derive(Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct Widget {
    api_version: String,
    kind: String,
    metadata: ObjectMeta,
    spec: WidgetSpec,
}

#[derive(Default, Deserialize, Serialize)]
struct WidgetSpec {
    size: i64,
}

struct WidgetRules;

impl Strategy for WidgetRules {
    fn admit(&self, admission: &mut Admission<'_>) -> wasmkube::api::ApiResult<Value> {
        let widget: Widget = admission.decode()?;
        if widget.spec.size < 0 {
            admission.causes.push(Cause::invalid(
                "spec.size",
                widget.spec.size,
                "must be greater than or equal to 0",
            ));
        }
        encode(&widget)
    }

    fn schema(&self) -> Value {
        json!({"type": "object", "properties": {"spec": {"type": "object",
            "properties": {"size": {"type": "integer"}}}}})
    }
}

fn widget_cells(object: &Value, now: Timestamp) -> Vec<String> {
    let created = object["metadata"]["creationTimestamp"]
        .as_str()
        .and_then(|t| t.parse().ok());
    vec![
        object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .into(),
        object["spec"]["size"].to_string(),
        since(created, now),
    ]
}

static WIDGET_COLUMNS: Columns = Columns {
    columns: &[
        Column::standard("NAME"),
        Column::standard("SIZE"),
        Column::standard("AGE"),
    ],
    cells: widget_cells,
};

static WIDGETS: Resource = Resource {
    group: "example.com",
    version: "v1",
    kind: "Widget",
    plural: "widgets",
    singular: "widget",
    short_names: &["wd"],
    categories: &[],
    namespaced: true,
    subresources: &[Subresource::Status],
    label_names: false,
    selectable_fields: &[],
    strategy: &WidgetRules,
    printer: &WIDGET_COLUMNS,
};

fn widget(name: &str, size: i64) -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name}, "spec": {"size": size}})
}

#[tokio::test]
async fn a_kind_registered_at_run_time_is_served_discoverable_printable_and_admitted() {
    let cluster = Cluster::start().await.unwrap();
    cluster.api().registry().register(&WIDGETS).unwrap();
    let client = cluster.client();
    let collection = WIDGETS.path(Some("default"), None);

    let created = client.create(&collection, &widget("w1", 3)).await.unwrap();
    assert_eq!(created["spec"]["size"], 3);
    assert!(created["metadata"]["uid"].is_string());
    let refused = client
        .create(&collection, &widget("w2", -1))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some(422));
    assert!(refused.to_string().contains("spec.size"), "{refused}");

    let groups = client.get("/apis").await.unwrap();
    assert!(
        groups["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["name"] == "example.com"),
        "{groups}"
    );
    let resources = client.get("/apis/example.com/v1").await.unwrap();
    let names: Vec<&str> = resources["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(names, ["widgets", "widgets/status"]);

    let table = kubectl(&cluster, &["get", "wd"], None).await;
    assert!(table.success, "{}", table.stderr);
    let header: Vec<&str> = table
        .stdout
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(header, ["NAME", "SIZE", "AGE"]);
    let row: Vec<&str> = table
        .stdout
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(row[..2], ["w1", "3"]);

    cluster
        .api()
        .registry()
        .unregister("example.com", "v1", "widgets");
    let gone = client.get(&collection).await.unwrap_err();
    assert_eq!(gone.code(), Some(404));
    cluster.shutdown().await;
}
