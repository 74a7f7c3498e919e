//! The columns of pod controllers: a ReplicaSet's DESIRED CURRENT READY, a Deployment's READY
//! UP-TO-DATE AVAILABLE, and with `-o wide` their containers, images and selector.
//!
//! Read from the JSON so a status missing a field reads as 0, as kubectl prints it.

use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

use super::{Column, Columns, age, or_none, text};

pub static REPLICA_SET_COLUMNS: Columns = Columns {
    columns: &[
        Column::standard("NAME"),
        Column::standard("DESIRED"),
        Column::standard("CURRENT"),
        Column::standard("READY"),
        Column::standard("AGE"),
        Column::wide("CONTAINERS"),
        Column::wide("IMAGES"),
        Column::wide("SELECTOR"),
    ],
    cells: |object, now| {
        let count = |pointer| count(object, pointer).to_string();
        let counts = [
            count("/spec/replicas"),
            count("/status/replicas"),
            count("/status/readyReplicas"),
        ];
        row(object, counts, now)
    },
};

pub static DEPLOYMENT_COLUMNS: Columns = Columns {
    columns: &[
        Column::standard("NAME"),
        Column::standard("READY"),
        Column::standard("UP-TO-DATE"),
        Column::standard("AVAILABLE"),
        Column::standard("AGE"),
        Column::wide("CONTAINERS"),
        Column::wide("IMAGES"),
        Column::wide("SELECTOR"),
    ],
    cells: |object, now| {
        let ready = count(object, "/status/readyReplicas");
        let desired = count(object, "/spec/replicas");
        let counts = [
            format!("{ready}/{desired}"),
            count(object, "/status/updatedReplicas").to_string(),
            count(object, "/status/availableReplicas").to_string(),
        ];
        row(object, counts, now)
    },
};

fn count(object: &Value, pointer: &str) -> i64 {
    object.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn row(object: &Value, counts: [String; 3], now: Timestamp) -> Vec<String> {
    let containers = object
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let join = |field: &str| {
        let values: Vec<&str> = containers
            .iter()
            .filter_map(|c| c.get(field).and_then(Value::as_str))
            .collect();
        or_none(Some(values.join(",")))
    };
    let mut row = vec![text(object, "/metadata/name")];
    row.extend(counts);
    row.extend([
        age(object, now),
        join("name"),
        join("image"),
        selector_text(object.pointer("/spec/selector")),
    ]);
    row
}

/// A label selector as kubectl prints it: `app=web,tier in (a,b)`.
pub fn selector_text(selector: Option<&Value>) -> String {
    let Some(selector) = selector else {
        return "<none>".into();
    };
    let mut terms: Vec<String> = selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    for expression in selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = expression["key"].as_str().unwrap_or_default();
        let values: Vec<&str> = expression["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        terms.push(match expression["operator"].as_str().unwrap_or_default() {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            other => format!("{key} {other}"),
        });
    }
    or_none(Some(terms.join(",")))
}

#[cfg(test)]
mod tests {
    use super::super::{Printer, test_now};
    use super::*;
    use serde_json::json;

    #[test]
    fn deployment_rows_show_ready_of_desired_and_wide_images() {
        let deployment = json!({
            "metadata": {"name": "web", "creationTimestamp": "2024-01-09T23:00:00Z"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"spec": {"containers": [{"name": "c", "image": "web.wasm"}]}}},
            "status": {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}
        });
        assert_eq!(
            DEPLOYMENT_COLUMNS.cells(&deployment, test_now()),
            ["web", "2/3", "3", "2", "60m", "c", "web.wasm", "app=web"]
        );
    }

    #[test]
    fn replica_set_rows_read_a_missing_status_as_zero() {
        let replica_set = json!({
            "metadata": {"name": "web-abc", "creationTimestamp": "2024-01-09T23:59:00Z"},
            "spec": {"replicas": 2}
        });
        assert_eq!(
            REPLICA_SET_COLUMNS.cells(&replica_set, test_now())[..5],
            ["web-abc", "2", "0", "0", "60s"]
        );
    }
}
