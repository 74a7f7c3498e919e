//! `describe replicaset`: selector, owner, replicas, the phases of its pods and its template.

use serde_json::Value;

use super::describe::{Out, string_map, text};
use super::pod_template;
use crate::api::printers::workload::selector_text;

/// Writes the ReplicaSet's fields; `pods` are those it controls.
pub fn replica_set(out: &mut Out, object: &Value, pods: &[Value]) {
    let meta = &object["metadata"];
    out.field(0, "Name", text(&meta["name"]));
    out.field(0, "Namespace", text(&meta["namespace"]));
    out.field(
        0,
        "Selector",
        selector_text(object.pointer("/spec/selector")),
    );
    out.map(0, "Labels", string_map(&meta["labels"]).as_ref());
    out.annotations(0, "Annotations", string_map(&meta["annotations"]));
    let controller = meta["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|owner| owner["controller"] == true);
    if let Some(owner) = controller {
        let owner = format!("{}/{}", text(&owner["kind"]), text(&owner["name"]));
        out.field(0, "Controlled By", owner);
    }
    let current = object
        .pointer("/status/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let desired = object
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    out.field(
        0,
        "Replicas",
        format!("{current} current / {desired} desired"),
    );
    out.field(0, "Pods Status", pods_status(pods));
    pod_template::describe(out, &object["spec"]["template"]);
}

/// `3 Running / 0 Waiting / 0 Succeeded / 0 Failed`; a Pending pod is Waiting.
fn pods_status(pods: &[Value]) -> String {
    let count = |phase: &str| {
        pods.iter()
            .filter(|pod| pod["status"]["phase"] == phase)
            .count()
    };
    format!(
        "{} Running / {} Waiting / {} Succeeded / {} Failed",
        count("Running"),
        count("Pending"),
        count("Succeeded"),
        count("Failed")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn replica_set_description_reads_like_kubectls() {
        let rs = json!({
            "metadata": {"name": "web-1", "namespace": "default", "labels": {"app": "web"},
                         "annotations": {"deployment.kubernetes.io/revision": "1"},
                         "ownerReferences": [{"kind": "Deployment", "name": "web", "controller": true}]},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": "a.wasm"}]}}},
            "status": {"replicas": 2},
        });
        let pods = [
            json!({"status": {"phase": "Running"}}),
            json!({"status": {"phase": "Pending"}}),
        ];
        let mut out = Out::default();
        replica_set(&mut out, &rs, &pods);
        assert_eq!(
            out.render(),
            "Name:           web-1\nNamespace:      default\nSelector:       app=web\nLabels:         app=web\nAnnotations:    deployment.kubernetes.io/revision: 1\nControlled By:  Deployment/web\nReplicas:       2 current / 2 desired\nPods Status:    1 Running / 1 Waiting / 0 Succeeded / 0 Failed\nPod Template:\n  Labels:  app=web\n  Containers:\n   c:\n    Image:         a.wasm\n    Port:          <none>\n    Host Port:     <none>\n    Environment:   <none>\n    Mounts:        <none>\n  Volumes:         <none>\n  Node-Selectors:  <none>\n  Tolerations:     <none>\n"
        );
    }
}
