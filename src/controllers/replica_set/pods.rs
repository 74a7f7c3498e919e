//! What a ReplicaSet makes of the pods around it, decided without I/O: which it owns, adopts
//! and releases, which go first when there are too many, and what a new one looks like.

use std::cmp::Reverse;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::api::kinds::{PODS, REPLICA_SETS};
use crate::api::selectors::LabelSelector;

/// The owner reference marking `pod` as managed by a controller, if any.
pub fn controller_ref(pod: &Value) -> Option<&Value> {
    pod.pointer("/metadata/ownerReferences")?
        .as_array()?
        .iter()
        .find(|r| r["controller"].as_bool() == Some(true))
}

/// The reference a ReplicaSet's pods carry to it.
pub fn owner_ref(replica_set: &Value) -> Value {
    REPLICA_SETS.controller_reference(replica_set)
}

pub fn is_terminating(object: &Value) -> bool {
    object
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
}

/// Counted as a replica: not being deleted and not finished.
pub fn is_active(pod: &Value) -> bool {
    !is_terminating(pod)
        && !matches!(
            pod.pointer("/status/phase").and_then(Value::as_str),
            Some("Succeeded" | "Failed")
        )
}

/// The `Ready` condition, when it is `True`.
pub fn ready_condition(pod: &Value) -> Option<&Value> {
    pod.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready" && c["status"] == "True")
}

pub fn is_ready(pod: &Value) -> bool {
    ready_condition(pod).is_some()
}

/// The pods of one namespace as a ReplicaSet with `uid` and `selector` sees them.
#[derive(Debug, Default)]
pub struct Claim {
    /// Controlled by it and selected.
    pub owned: Vec<Arc<Value>>,
    /// Selected, controlled by nobody: to be adopted.
    pub orphans: Vec<Arc<Value>>,
    /// Controlled by it but no longer selected: to be released.
    pub strays: Vec<Arc<Value>>,
}

/// Sorts `pods` by their relation to the ReplicaSet (Kubernetes' `ClaimPods`). A ReplicaSet
/// being deleted adopts nothing; terminating orphans are left alone.
pub fn claim(pods: Vec<Arc<Value>>, uid: &str, selector: &LabelSelector, deleting: bool) -> Claim {
    let mut claim = Claim::default();
    for pod in pods {
        let selected = selector.matches(&pod);
        match controller_ref(&pod).map(|r| r["uid"].as_str() == Some(uid)) {
            Some(true) if selected => claim.owned.push(pod),
            Some(true) if !is_terminating(&pod) => claim.strays.push(pod),
            None if selected && !deleting && !is_terminating(&pod) => claim.orphans.push(pod),
            _ => {}
        }
    }
    claim
}

/// Orders pods so that the first are the best to delete (Kubernetes' `ActivePods`): unscheduled
/// before scheduled, pending before running, not ready before ready, ready for less time before
/// more, more restarts before fewer, newer before older.
pub fn sort_for_deletion(pods: &mut [Arc<Value>]) {
    pods.sort_by_cached_key(|pod| {
        let scheduled = pod
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
        let phase = match pod.pointer("/status/phase").and_then(Value::as_str) {
            Some("Pending") | None => 0,
            Some("Running") => 2,
            Some(_) => 1,
        };
        let ready_since = ready_condition(pod)
            .map(|c| c["lastTransitionTime"].as_str().unwrap_or("").to_string());
        let restarts: i64 = pod
            .pointer("/status/containerStatuses")
            .and_then(Value::as_array)
            .map(|all| all.iter().filter_map(|c| c["restartCount"].as_i64()).sum())
            .unwrap_or(0);
        let created = pod
            .pointer("/metadata/creationTimestamp")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let name = pod
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        (
            scheduled,
            phase,
            ready_since.is_some(),
            Reverse(ready_since),
            Reverse(restarts),
            Reverse(created),
            Reverse(name),
        )
    });
}

/// A new pod from the ReplicaSet's template, named `<replicaset>-<5 random characters>`.
pub fn from_template(replica_set: &Value) -> Value {
    let template = &replica_set["spec"]["template"];
    let mut metadata = json!({
        "generateName": format!("{}-", replica_set["metadata"]["name"].as_str().unwrap_or_default()),
        "namespace": replica_set["metadata"]["namespace"],
        "ownerReferences": [owner_ref(replica_set)],
    });
    for field in ["labels", "annotations", "finalizers"] {
        if let Some(value) = template["metadata"].get(field).filter(|v| !v.is_null()) {
            metadata[field] = value.clone();
        }
    }
    json!({"apiVersion": PODS.api_version(), "kind": PODS.kind, "metadata": metadata, "spec": template["spec"]})
}

/// Whether the pod carries every label of the template (`fullyLabeledReplicas`).
pub fn fully_labeled(pod: &Value, template_labels: &Value) -> bool {
    template_labels
        .as_object()
        .into_iter()
        .flatten()
        .all(|(key, value)| pod.pointer("/metadata/labels").and_then(|l| l.get(key)) == Some(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, labels: Value, owner: Option<&str>) -> Arc<Value> {
        let mut pod = json!({"metadata": {"name": name, "labels": labels}});
        if let Some(uid) = owner {
            pod["metadata"]["ownerReferences"] =
                json!([{"kind": "ReplicaSet", "name": "rs", "uid": uid, "controller": true}]);
        }
        Arc::new(pod)
    }

    fn names(pods: &[Arc<Value>]) -> Vec<&str> {
        pods.iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn claiming_sorts_owned_orphans_strays_and_other_owners_pods() {
        let selector = LabelSelector::parse("app=web").unwrap();
        let web = json!({"app": "web"});
        let pods = vec![
            pod("mine", web.clone(), Some("u1")),
            pod("orphan", web.clone(), None),
            pod("stray", json!({"app": "db"}), Some("u1")),
            pod("theirs", web.clone(), Some("u2")),
            pod("unrelated", json!({"app": "db"}), None),
        ];
        let claim = claim(pods.clone(), "u1", &selector, false);
        assert_eq!(names(&claim.owned), ["mine"]);
        assert_eq!(names(&claim.orphans), ["orphan"]);
        assert_eq!(names(&claim.strays), ["stray"]);
        assert!(
            super::claim(pods, "u1", &selector, true).orphans.is_empty(),
            "no adoption while deleting"
        );
    }

    #[test]
    fn deletion_prefers_unscheduled_then_not_ready_then_newest() {
        let ready = json!([{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]);
        let make = |name: &str, node: Option<&str>, phase: &str, ready_now: bool, created: &str| {
            let conditions = if ready_now { ready.clone() } else { json!([]) };
            Arc::new(
                json!({"metadata": {"name": name, "creationTimestamp": created},
                            "spec": {"nodeName": node}, "status": {"phase": phase, "conditions": conditions}}),
            )
        };
        let mut pods = vec![
            make(
                "old-ready",
                Some("n1"),
                "Running",
                true,
                "2026-01-01T00:00:00Z",
            ),
            make(
                "new-ready",
                Some("n1"),
                "Running",
                true,
                "2026-01-02T00:00:00Z",
            ),
            make(
                "not-ready",
                Some("n1"),
                "Running",
                false,
                "2026-01-01T00:00:00Z",
            ),
            make(
                "pending",
                Some("n1"),
                "Pending",
                false,
                "2026-01-01T00:00:00Z",
            ),
            make(
                "unscheduled",
                None,
                "Pending",
                false,
                "2026-01-01T00:00:00Z",
            ),
        ];
        sort_for_deletion(&mut pods);
        assert_eq!(
            names(&pods),
            [
                "unscheduled",
                "pending",
                "not-ready",
                "new-ready",
                "old-ready"
            ]
        );
    }

    #[test]
    fn a_pod_from_the_template_is_owned_and_labelled() {
        let rs = json!({"metadata": {"name": "web", "namespace": "default", "uid": "u1"},
            "spec": {"template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": "c.wasm"}]}}}});
        let pod = from_template(&rs);
        assert_eq!(pod["metadata"]["generateName"], "web-");
        assert_eq!(pod["metadata"]["labels"], json!({"app": "web"}));
        let owner = controller_ref(&pod).unwrap();
        assert_eq!(
            (owner["uid"].as_str(), owner["blockOwnerDeletion"].as_bool()),
            (Some("u1"), Some(true))
        );
        assert!(fully_labeled(
            &pod,
            &rs["spec"]["template"]["metadata"]["labels"]
        ));
        assert!(!fully_labeled(
            &json!({"metadata": {}}),
            &json!({"app": "web"})
        ));
    }

    #[test]
    fn finished_and_terminating_pods_are_not_replicas() {
        assert!(is_active(&json!({"status": {"phase": "Running"}})));
        assert!(!is_active(&json!({"status": {"phase": "Failed"}})));
        assert!(!is_active(
            &json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}})
        ));
    }
}
