//! What happens to the pods of an unreachable node: marked not ready at once, evicted once
//! their toleration of the `unreachable:NoExecute` taint runs out.

use chrono::{DateTime, Utc};
use serde_json::Value;
use std::time::Duration;

use super::taints::UNREACHABLE;
use crate::api::clock;
use crate::api::kinds::PODS;
use crate::api::objects::{now, take_items};
use crate::api::selectors::FieldSelector;
use crate::api::{Api, ApiError, ApiResult, DeleteOptions, ListOptions, Part};
use crate::events::{EventType, Recorder};

fn pods_on(api: &Api, node: &str) -> ApiResult<Vec<Value>> {
    let options = ListOptions {
        fields: FieldSelector::parse(&format!("spec.nodeName={node}"), &PODS)?,
        ..Default::default()
    };
    Ok(take_items(&mut api.list(&PODS, None, &options)?))
}

/// Sets `Ready=False` on the node's pods: nobody can vouch for them any more.
pub fn mark_pods_not_ready(api: &Api, node: &str) -> ApiResult<()> {
    for mut pod in pods_on(api, node)? {
        let Some(conditions) = pod["status"]["conditions"].as_array_mut() else {
            continue;
        };
        let Some(ready) = conditions
            .iter_mut()
            .find(|c| c["type"] == "Ready" && c["status"] == "True")
        else {
            continue;
        };
        ready["status"] = "False".into();
        ready["lastTransitionTime"] = now().into();
        let (namespace, name) = identity(&pod);
        match api.update(&PODS, Some(&namespace), &name, pod, Part::Status) {
            Ok(_) | Err(ApiError::Conflict { .. } | ApiError::NotFound { .. }) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// Deletes (gracefully) the node's pods whose time on the unreachable node is up.
pub fn evict_due_pods(
    api: &Api,
    recorder: &Recorder,
    node: &str,
    since: DateTime<Utc>,
    timeout: Duration,
) -> ApiResult<()> {
    let now = Utc::now();
    for pod in pods_on(api, node)? {
        if pod["metadata"]["deletionTimestamp"].is_string() {
            continue;
        }
        if eviction_due(&pod, since, timeout).is_none_or(|due| due > now) {
            continue;
        }
        let (namespace, name) = identity(&pod);
        let options = DeleteOptions {
            precondition_uid: pod["metadata"]["uid"].as_str().map(str::to_string),
            ..Default::default()
        };
        match api.delete(&PODS, Some(&namespace), &name, &options) {
            Ok(_) => recorder.record(
                &pod,
                None,
                EventType::Normal,
                "TaintManagerEviction",
                &format!("Marking for deletion Pod {namespace}/{name}"),
            ),
            Err(ApiError::Conflict { .. } | ApiError::NotFound { .. }) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// When a pod on a node tainted `unreachable:NoExecute` at `since` is to be evicted: after
/// `default` unless it tolerates the taint — for `tolerationSeconds`, or for ever.
fn eviction_due(pod: &Value, since: DateTime<Utc>, default: Duration) -> Option<DateTime<Utc>> {
    let tolerations: Vec<&Value> = pod["spec"]["tolerations"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| tolerates_unreachable(t))
        .collect();
    if tolerations.is_empty() {
        return Some(clock::add(since, default));
    }
    let seconds = tolerations
        .iter()
        .map(|t| t["tolerationSeconds"].as_i64())
        .collect::<Option<Vec<i64>>>()?;
    let least = seconds.into_iter().min()?.max(0);
    Some(clock::add_seconds(since, least))
}

fn tolerates_unreachable(toleration: &Value) -> bool {
    let key = toleration["key"].as_str().unwrap_or_default();
    let exists = toleration["operator"] == "Exists";
    let key_matches = key == UNREACHABLE || (key.is_empty() && exists);
    let effect = toleration["effect"].as_str().unwrap_or_default();
    let value_matches = exists || toleration["value"].as_str().unwrap_or_default().is_empty();
    key_matches && matches!(effect, "" | "NoExecute") && value_matches
}

fn identity(pod: &Value) -> (String, String) {
    let meta = &pod["metadata"];
    (
        meta["namespace"].as_str().unwrap_or("default").to_string(),
        meta["name"].as_str().unwrap_or_default().to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn since() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-28T07:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn pod(tolerations: Value) -> Value {
        json!({"spec": {"tolerations": tolerations}})
    }

    #[test]
    fn an_intolerant_pod_is_evicted_after_the_default_timeout() {
        let due = eviction_due(&pod(json!(null)), since(), Duration::from_secs(10));
        assert_eq!(due, Some(clock::add_seconds(since(), 10)));
        let unrelated = json!([{"key": "dedicated", "operator": "Exists"}]);
        let due = eviction_due(&pod(unrelated), since(), Duration::from_secs(10));
        assert_eq!(due, Some(clock::add_seconds(since(), 10)));
    }

    #[test]
    fn toleration_seconds_bound_the_stay_and_none_means_for_ever() {
        let bounded = json!([{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute",
                               "tolerationSeconds": 30}]);
        let due = eviction_due(&pod(bounded), since(), Duration::from_secs(10));
        assert_eq!(due, Some(clock::add_seconds(since(), 30)));
        let forever = json!([{"key": UNREACHABLE, "operator": "Exists"}]);
        assert_eq!(
            eviction_due(&pod(forever), since(), Duration::from_secs(10)),
            None
        );
        let everything = json!([{"operator": "Exists"}]);
        assert_eq!(
            eviction_due(&pod(everything), since(), Duration::from_secs(10)),
            None
        );
    }

    #[test]
    fn a_toleration_for_another_effect_or_value_does_not_count() {
        let no_schedule =
            json!([{"key": UNREACHABLE, "operator": "Exists", "effect": "NoSchedule"}]);
        let due = eviction_due(&pod(no_schedule), since(), Duration::from_secs(10));
        assert_eq!(due, Some(clock::add_seconds(since(), 10)));
        let valued = json!([{"key": UNREACHABLE, "operator": "Equal", "value": "x"}]);
        let due = eviction_due(&pod(valued), since(), Duration::from_secs(10));
        assert_eq!(due, Some(clock::add_seconds(since(), 10)));
    }
}
