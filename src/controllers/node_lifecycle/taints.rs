//! The `node.kubernetes.io/unreachable` taints of a silent node: added while it is silent,
//! removed once it reports `Ready=True` again.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::api::clock;

/// The taint key Kubernetes puts on a node whose agent stopped reporting.
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";

/// The node's taints as they should be, or `None` when they already are.
pub fn reconciled(node: &Value, silent: bool, now: &str) -> Option<Vec<Value>> {
    let current: Vec<Value> = node["spec"]["taints"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let is_unreachable = |t: &Value| t["key"] == UNREACHABLE;
    let present: Vec<&str> = current
        .iter()
        .filter(|t| is_unreachable(t))
        .filter_map(|t| t["effect"].as_str())
        .collect();
    if silent {
        let missing: Vec<&str> = ["NoSchedule", "NoExecute"]
            .into_iter()
            .filter(|effect| !present.contains(effect))
            .collect();
        if missing.is_empty() {
            return None;
        }
        let mut taints = current.clone();
        taints.extend(
            missing
                .into_iter()
                .map(|effect| json!({"key": UNREACHABLE, "effect": effect, "timeAdded": now})),
        );
        return Some(taints);
    }
    let ready = node["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
        .is_some_and(|c| c["status"] == "True");
    if ready && !present.is_empty() {
        return Some(current.into_iter().filter(|t| !is_unreachable(t)).collect());
    }
    None
}

/// When the node was tainted unreachable with effect `NoExecute`, if it is.
pub fn unreachable_since(node: &Value) -> Option<DateTime<Utc>> {
    node["spec"]["taints"]
        .as_array()?
        .iter()
        .find(|t| t["key"] == UNREACHABLE && t["effect"] == "NoExecute")
        .map(|t| {
            t["timeAdded"]
                .as_str()
                .and_then(clock::parse)
                .unwrap_or_else(Utc::now)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(ready: &str, taints: Value) -> Value {
        json!({"spec": {"taints": taints},
               "status": {"conditions": [{"type": "Ready", "status": ready}]}})
    }

    #[test]
    fn a_silent_node_gets_both_unreachable_taints_once() {
        let other = json!({"key": "dedicated", "value": "edge", "effect": "NoSchedule"});
        let silent = node("Unknown", json!([other]));
        let taints = reconciled(&silent, true, "2026-11-28T07:00:00Z").unwrap();
        assert_eq!(taints.len(), 3);
        assert_eq!(taints[0], other);
        assert_eq!(taints[2]["effect"], "NoExecute");
        let tainted = node("Unknown", json!(taints));
        assert_eq!(reconciled(&tainted, true, "2026-11-28T07:00:09Z"), None);
        assert_eq!(
            unreachable_since(&tainted).unwrap().to_rfc3339(),
            "2026-11-28T07:00:00+00:00"
        );
    }

    #[test]
    fn taints_go_only_once_the_node_is_ready_again() {
        let taints = json!([{"key": UNREACHABLE, "effect": "NoSchedule"},
                            {"key": UNREACHABLE, "effect": "NoExecute"},
                            {"key": "dedicated", "effect": "NoSchedule"}]);
        // Heard from again, but not yet reporting Ready (or the controller just restarted).
        assert_eq!(
            reconciled(&node("Unknown", taints.clone()), false, "t"),
            None
        );
        let cleared = reconciled(&node("True", taints), false, "t").unwrap();
        assert_eq!(
            cleared,
            vec![json!({"key": "dedicated", "effect": "NoSchedule"})]
        );
        assert_eq!(reconciled(&node("True", json!([])), false, "t"), None);
        assert_eq!(unreachable_since(&node("True", json!([]))), None);
    }
}
