//! `describe deployment`: replicas, strategy, template, conditions and its ReplicaSets.

use serde_json::Value;

use super::describe::{Out, format_time, string_map, text};
use super::pod_template;
use crate::api::printers::workload::selector_text;

const REVISION: &str = "deployment.kubernetes.io/revision";

fn int(object: &Value, pointer: &str) -> i64 {
    object.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

/// `web-abc (3/3 replicas created)`, as kubectl names a ReplicaSet.
fn replica_set_line(rs: &Value) -> String {
    format!(
        "{} ({}/{} replicas created)",
        text(&rs["metadata"]["name"]),
        int(rs, "/status/replicas"),
        int(rs, "/spec/replicas")
    )
}

/// Writes the Deployment's fields; `replica_sets` are those it controls.
pub fn deployment(out: &mut Out, object: &Value, replica_sets: &[Value]) {
    let meta = &object["metadata"];
    out.field(0, "Name", text(&meta["name"]));
    out.field(0, "Namespace", text(&meta["namespace"]));
    let created = serde::Deserialize::deserialize(&meta["creationTimestamp"]).ok();
    out.field(0, "CreationTimestamp", format_time(created.as_ref()));
    out.map(0, "Labels", string_map(&meta["labels"]).as_ref());
    out.annotations(0, "Annotations", string_map(&meta["annotations"]));
    out.field(
        0,
        "Selector",
        selector_text(object.pointer("/spec/selector")),
    );
    out.field(
        0,
        "Replicas",
        format!(
            "{} desired | {} updated | {} total | {} available | {} unavailable",
            object
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1),
            int(object, "/status/updatedReplicas"),
            int(object, "/status/replicas"),
            int(object, "/status/availableReplicas"),
            int(object, "/status/unavailableReplicas"),
        ),
    );
    let strategy = &object["spec"]["strategy"];
    out.field(0, "StrategyType", text(&strategy["type"]));
    out.field(0, "MinReadySeconds", int(object, "/spec/minReadySeconds"));
    if strategy["type"] == "RollingUpdate" {
        let rolling = &strategy["rollingUpdate"];
        out.field(
            0,
            "RollingUpdateStrategy",
            format!(
                "{} max unavailable, {} max surge",
                text(&rolling["maxUnavailable"]),
                text(&rolling["maxSurge"])
            ),
        );
    }
    pod_template::describe(out, &object["spec"]["template"]);
    conditions(out, object);
    let revision = &meta["annotations"][REVISION];
    let (new, old): (Vec<&Value>, Vec<&Value>) = replica_sets
        .iter()
        .partition(|rs| rs["metadata"]["annotations"][REVISION] == *revision);
    // kubectl 1.37 lists every old ReplicaSet, scaled down to 0/0 or not.
    let old: Vec<String> = old.into_iter().map(replica_set_line).collect();
    out.field(
        0,
        "OldReplicaSets",
        if old.is_empty() {
            "<none>".into()
        } else {
            old.join(", ")
        },
    );
    out.field(
        0,
        "NewReplicaSet",
        new.first()
            .map_or("<none>".into(), |rs| replica_set_line(rs)),
    );
}

fn conditions(out: &mut Out, object: &Value) {
    let Some(conditions) = object["status"]["conditions"].as_array() else {
        return;
    };
    out.line(0, "Conditions:");
    out.row(1, &["Type", "Status", "Reason"]);
    out.row(1, &["----", "------", "------"]);
    for condition in conditions {
        out.row(
            1,
            &[
                &text(&condition["type"]),
                &text(&condition["status"]),
                &text(&condition["reason"]),
            ],
        );
    }
}
