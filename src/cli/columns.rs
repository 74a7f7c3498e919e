//! The columns `get` prints for one kind: the kind's printer (`api::printers`), its wide
//! columns with `-o wide`, a NAMESPACES column first with `-A`, a LABELS column last with
//! `--show-labels`.

use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

use crate::api::kinds::Resource;
use crate::api::printers;

/// The columns `get` prints for one kind.
#[derive(Clone, Copy, Debug)]
pub struct Columns {
    pub kind: &'static Resource,
    pub wide: bool,
    /// A NAMESPACES column first (`-A`).
    pub namespace: bool,
    /// A LABELS column last (`--show-labels`).
    pub labels: bool,
}

impl Columns {
    pub fn headers(&self) -> Vec<String> {
        let headers = self
            .kind
            .printer
            .columns()
            .iter()
            .filter(|c| self.wide || c.priority == 0)
            .map(|c| c.name.to_string())
            .collect();
        self.decorate(headers, "NAMESPACE", "LABELS")
    }

    /// The cells of one object.
    pub fn row(&self, object: &Value, now: Timestamp) -> Vec<String> {
        let printer = self.kind.printer;
        let cells = printer
            .cells(object, now)
            .into_iter()
            .zip(printer.columns())
            .filter(|(_, c)| self.wide || c.priority == 0)
            .map(|(cell, _)| cell)
            .collect();
        let namespace = object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default();
        self.decorate(cells, namespace, &printers::labels(object))
    }

    fn decorate(&self, mut cells: Vec<String>, namespace: &str, labels: &str) -> Vec<String> {
        if self.namespace {
            cells.insert(0, namespace.to_string());
        }
        if self.labels {
            cells.push(labels.to_string());
        }
        cells
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::kinds::{DEPLOYMENTS, PODS};
    use serde_json::json;

    fn now() -> Timestamp {
        "2024-01-10T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn namespace_comes_first_and_labels_last() {
        let pod = json!({
            "metadata": {"name": "demo", "namespace": "team", "creationTimestamp": "2024-01-09T23:59:55Z", "labels": {"b": "2", "a": "1"}},
            "spec": {"nodeName": "node-1", "containers": [{"name": "a"}]},
            "status": {"phase": "Running", "podIP": "10.0.0.5", "containerStatuses": [
                {"name": "a", "ready": true, "restartCount": 0, "state": {"running": {}}}
            ]}
        });
        let columns = Columns {
            kind: &PODS,
            wide: true,
            namespace: true,
            labels: true,
        };
        assert_eq!(columns.headers()[..3], ["NAMESPACE", "NAME", "READY"]);
        assert_eq!(
            columns.row(&pod, now()),
            [
                "team", "demo", "1/1", "Running", "0", "5s", "10.0.0.5", "node-1", "<none>",
                "<none>", "a=1,b=2"
            ]
        );
    }

    #[test]
    fn wide_columns_only_with_wide() {
        let narrow = Columns {
            kind: &DEPLOYMENTS,
            wide: false,
            namespace: false,
            labels: false,
        };
        assert_eq!(
            narrow.headers(),
            ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
        );
        let deployment = json!({"metadata": {"name": "web"}, "spec": {"replicas": 1}});
        assert_eq!(narrow.row(&deployment, now()).len(), 5);
        let wide = Columns {
            wide: true,
            ..narrow
        };
        assert_eq!(wide.headers().len(), 8);
    }
}
