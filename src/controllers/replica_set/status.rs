//! A ReplicaSet's status from the pods it owns: how many exist, are fully labelled, ready, and
//! available (ready for `minReadySeconds`).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::pods::{fully_labeled, is_active, ready_condition};
use crate::api::clock;

/// The observed counts, and how long until a ready pod becomes available (if one is waiting).
pub fn compute(
    replica_set: &Value,
    owned: &[Arc<Value>],
    now: DateTime<Utc>,
) -> (Value, Option<Duration>) {
    let min_ready = replica_set
        .pointer("/spec/minReadySeconds")
        .and_then(Value::as_i64)
        .unwrap_or(0)
        .max(0);
    let template_labels = &replica_set["spec"]["template"]["metadata"]["labels"];
    let active: Vec<&Arc<Value>> = owned.iter().filter(|p| is_active(p)).collect();
    let (mut ready, mut available, mut wait) = (0, 0, None::<Duration>);
    for pod in &active {
        let Some(condition) = ready_condition(pod) else {
            continue;
        };
        ready += 1;
        let since = condition["lastTransitionTime"]
            .as_str()
            .and_then(clock::parse);
        match since.map(|since| clock::add_seconds(since, min_ready) - now) {
            Some(left) if min_ready > 0 && left > chrono::Duration::zero() => {
                let left = left.to_std().unwrap_or_default();
                wait = Some(wait.map_or(left, |w| w.min(left)));
            }
            _ => available += 1,
        }
    }
    let mut status = replica_set
        .get("status")
        .cloned()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    status["replicas"] = json!(active.len());
    status["fullyLabeledReplicas"] = json!(
        active
            .iter()
            .filter(|p| fully_labeled(p, template_labels))
            .count()
    );
    status["readyReplicas"] = json!(ready);
    status["availableReplicas"] = json!(available);
    status["observedGeneration"] = replica_set["metadata"]["generation"].clone();
    (status, wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(ready_since: Option<&str>, labels: Value) -> Arc<Value> {
        let conditions = match ready_since {
            Some(t) => json!([{"type": "Ready", "status": "True", "lastTransitionTime": t}]),
            None => json!([{"type": "Ready", "status": "False"}]),
        };
        Arc::new(
            json!({"metadata": {"labels": labels}, "status": {"phase": "Running", "conditions": conditions}}),
        )
    }

    fn replica_set(min_ready_seconds: i64) -> Value {
        json!({"metadata": {"generation": 4},
               "spec": {"minReadySeconds": min_ready_seconds,
                        "template": {"metadata": {"labels": {"app": "web", "tier": "a"}}}},
               "status": {"replicas": 0, "conditions": [{"type": "ReplicaFailure"}]}})
    }

    #[test]
    fn counts_replicas_labels_readiness_and_availability_after_min_ready_seconds() {
        let now = DateTime::parse_from_rfc3339("2026-01-01T00:01:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let full = json!({"app": "web", "tier": "a"});
        let owned = vec![
            pod(Some("2026-01-01T00:00:00Z"), full.clone()),
            pod(Some("2026-01-01T00:00:50Z"), full.clone()),
            pod(None, json!({"app": "web"})),
        ];
        let (status, wait) = compute(&replica_set(30), &owned, now);
        assert_eq!(status["replicas"], 3);
        assert_eq!(status["fullyLabeledReplicas"], 2);
        assert_eq!(status["readyReplicas"], 2);
        assert_eq!(status["availableReplicas"], 1);
        assert_eq!(status["observedGeneration"], 4);
        assert_eq!(
            status["conditions"],
            json!([{"type": "ReplicaFailure"}]),
            "kept"
        );
        assert_eq!(wait, Some(Duration::from_secs(20)));

        let (status, wait) = compute(&replica_set(0), &owned, now);
        assert_eq!(status["availableReplicas"], 2);
        assert_eq!(wait, None);
    }
}
