//! Extreme numbers in every numeric field of every served kind, sent over HTTP to a real
//! `wasmkube up`: each write is refused with a 4xx or taken and reconciled (then deleted, which
//! is where a grace period meets the clock); no 5xx, no panic in the server's log, and the
//! cluster's other work goes on.
//!
//! The numeric fields come from each kind's own JSON schema (`Strategy::schema`), so a kind
//! added later is covered without touching this file — only its sample below.

use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use wasmkube::api::kinds::{BUILT_IN, Resource, Subresource};
use wasmkube::client::{Client, ClientError, DeleteParams};

use crate::processes::{free_port, start_control_plane};
use crate::support::{PodBuilder, eventually, exerciser};

const NAMESPACE: &str = "extremes";
/// What a careless or hostile client sends where a number belongs.
const EXTREMES: &[i64] = &[i64::MAX, i64::MIN, -1, 0, 1 << 31];
/// Writes in flight at once.
const IN_FLIGHT: usize = 8;
/// Deep enough for a pod spec inside a Deployment's template; recursive types stop earlier.
const MAX_DEPTH: usize = 16;

/// A valid object of each served kind, the base every extreme value is written into.
fn sample(resource: &Resource) -> Value {
    let template = json!({"metadata": {"labels": {"app": "x"}}, "spec": {
        "containers": [{"name": "c", "image": exerciser(), "args": ["print", "hi"]}]}});
    let workload =
        json!({"replicas": 1, "selector": {"matchLabels": {"app": "x"}}, "template": template});
    let spec = match resource.kind {
        "Pod" => json!({"restartPolicy": "Never", "containers": template["spec"]["containers"]}),
        "ReplicaSet" | "Deployment" => workload,
        "Lease" => json!({"holderIdentity": "x", "leaseDurationSeconds": 10}),
        "Node" | "Namespace" => json!({}),
        "LimitRange" => json!({"limits": [{"type": "Container", "default": {"memory": "64Mi"}}]}),
        "Event" => {
            return json!({"involvedObject": {"kind": "Pod", "name": "p", "namespace": NAMESPACE},
                          "reason": "Test", "message": "m", "type": "Normal"});
        }
        "Service" => json!({"selector": {"app": "x"}, "ports": [{"port": 80}]}),
        "NetworkPolicy" => json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"],
            "egress": [{"ports": [{"protocol": "TCP", "port": 80, "endPort": 90}]}]}),
        "Endpoints" => {
            return json!({"subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]});
        }
        "EndpointSlice" => {
            return json!({"addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"]}],
                          "ports": [{"port": 80}]});
        }
        "CustomResourceDefinition" => json!({"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "gadgets", "kind": "Gadget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object"}}}]}),
        other => panic!("no sample for kind {other}: add one to extreme_values.rs"),
    };
    json!({"spec": spec})
}

/// JSON pointers (arrays at index 0) of every integer or int-or-string field in `schema`.
fn numeric_fields(schema: &Value) -> Vec<String> {
    let mut fields = Vec::new();
    walk(
        schema,
        &schema["$defs"],
        String::new(),
        &mut Vec::new(),
        &mut fields,
    );
    fields
}

fn walk(node: &Value, defs: &Value, path: String, seen: &mut Vec<String>, out: &mut Vec<String>) {
    if seen.len() > MAX_DEPTH {
        return;
    }
    if let Some(reference) = node["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap_or_default().to_string();
        if !seen.contains(&name) {
            seen.push(name.clone());
            walk(&defs[&name], defs, path, seen, out);
            seen.pop();
        }
        return;
    }
    if node["type"] == "integer" || node["x-kubernetes-int-or-string"] == true {
        out.push(path);
    } else if node["type"] == "array" {
        walk(&node["items"], defs, format!("{path}/0"), seen, out);
    } else if let Some(properties) = node["properties"].as_object() {
        for (name, property) in properties {
            walk(property, defs, format!("{path}/{name}"), seen, out);
        }
    }
}

/// `object` with `value` at `pointer`, making the objects and one-element arrays on the way.
fn with_value(mut object: Value, pointer: &str, value: i64) -> Value {
    let mut slot = &mut object;
    for segment in pointer.trim_start_matches('/').split('/') {
        slot = match segment.parse::<usize>() {
            Ok(index) => {
                if !slot.is_array() {
                    *slot = json!([]);
                }
                let items = slot.as_array_mut().expect("made an array");
                while items.len() <= index {
                    items.push(json!({}));
                }
                &mut items[index]
            }
            Err(_) => {
                if !slot.is_object() {
                    *slot = json!({});
                }
                &mut slot[segment]
            }
        };
    }
    *slot = json!(value);
    object
}

/// A write the server took (`Ok(true)`), refused with a 4xx (`Ok(false)`), or failed on.
fn outcome(result: Result<Value, ClientError>, what: &str) -> bool {
    match result {
        Ok(_) => true,
        Err(error) if error.code().is_some_and(|c| (400..500).contains(&c)) => false,
        Err(error) => panic!("{what}: {error}"),
    }
}

/// Writes every extreme into every numeric field of `resource`, several writes at once;
/// deletes what was taken. Returns how many writes it made.
async fn exercise(client: &Client, resource: &'static Resource) -> usize {
    let fields = numeric_fields(&resource.strategy.schema());
    let attempts: Vec<(String, i64)> = fields
        .iter()
        .filter(|f| !f.starts_with("/status/") || resource.serves(Subresource::Status))
        .flat_map(|field| EXTREMES.iter().map(move |value| (field.clone(), *value)))
        .collect();
    let count = attempts.len();
    futures::stream::iter(attempts.into_iter().enumerate())
        .for_each_concurrent(IN_FLIGHT, |(index, (field, value))| {
            write_extreme(client, resource, format!("x{index}"), field, value)
        })
        .await;
    count
}

/// Creates an object of `resource` named `name` with `value` at `field` (or creates it and
/// writes `value` into its status), then deletes it.
async fn write_extreme(
    client: &Client,
    resource: &Resource,
    name: String,
    field: String,
    value: i64,
) {
    let namespace = Some(NAMESPACE).filter(|_| resource.namespaced);
    let what = format!("{} {field} = {value}", resource.kind);
    let in_status = field.starts_with("/status/");
    let mut object = sample(resource);
    if !in_status {
        object = with_value(object, &field, value);
    }
    object["metadata"]["name"] = json!(name);
    let created = client
        .create(&resource.path(namespace, None), &object)
        .await;
    if !outcome(created, &what) {
        return;
    }
    let path = resource.path(namespace, Some(&name));
    if in_status {
        let current = with_value(client.get(&path).await.unwrap(), &field, value);
        outcome(
            client.replace(&format!("{path}/status"), &current).await,
            &what,
        );
    }
    outcome(client.delete(&path, &DeleteParams::default()).await, &what);
}

/// The server still does its work: a pod runs to completion and its log is served.
async fn still_works(client: &Client) {
    let pods = "/api/v1/namespaces/default/pods";
    let canary = PodBuilder::named("canary")
        .restart_policy("Never")
        .container("c", &["print", "still-here"])
        .build();
    client.create(pods, &canary).await.unwrap();
    eventually(Duration::from_secs(30), "the canary to finish", || async {
        let pod = client.get(&format!("{pods}/canary")).await.ok()?;
        (pod["status"]["phase"] == "Succeeded").then_some(())
    })
    .await;
    let log = client
        .get_text(&format!("{pods}/canary/log"))
        .await
        .unwrap();
    assert_eq!(log.trim(), "still-here");
}

/// Lines of the server's log that hold `text`.
fn in_log(data_dir: &Path, text: &str) -> Vec<String> {
    let log = std::fs::read_to_string(data_dir.join("wasmkube.log")).unwrap_or_default();
    log.lines()
        .filter(|line| line.contains(text))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn extreme_numbers_in_every_field_of_every_kind_get_a_4xx_or_a_working_reconcile() {
    let data_dir = tempfile::tempdir().unwrap();
    let (_server, client) = start_control_plane("up", data_dir.path(), free_port()).await;
    let namespace = json!({"metadata": {"name": NAMESPACE}});
    client
        .create("/api/v1/namespaces", &namespace)
        .await
        .unwrap();
    let mut writes = 0;
    for resource in BUILT_IN {
        writes += exercise(&client, resource).await;
    }
    assert!(
        writes > 1000,
        "only {writes} writes: the schemas were not walked"
    );
    // Let the controllers and the node work through what was created and deleted.
    tokio::time::sleep(Duration::from_secs(3)).await;
    still_works(&client).await;
    let panics = in_log(data_dir.path(), "panicked");
    assert!(panics.is_empty(), "the server panicked: {panics:#?}");
    // What the server stored from an extreme value, it can read back (a deletionTimestamp
    // past what a typed object holds once failed every later status write of its pod).
    let unreadable = in_log(data_dir.path(), "cannot be handled as");
    assert!(
        unreadable.is_empty(),
        "stored objects unreadable: {unreadable:#?}"
    );
}

#[test]
fn numeric_fields_reach_into_templates_and_int_or_string_fields() {
    let fields = numeric_fields(&wasmkube::api::kinds::DEPLOYMENTS.strategy.schema());
    for expected in [
        "/spec/replicas",
        "/spec/template/spec/terminationGracePeriodSeconds",
        "/spec/template/spec/tolerations/0/tolerationSeconds",
        "/spec/template/spec/containers/0/ports/0/containerPort",
        "/spec/strategy/rollingUpdate/maxSurge",
        "/status/replicas",
    ] {
        assert!(
            fields.iter().any(|f| f == expected),
            "{expected} in {fields:?}"
        );
    }
    assert_eq!(with_value(json!({}), "/a/0/b", 7), json!({"a": [{"b": 7}]}));
}
