//! A Deployment's status from its ReplicaSets: the counts, and the `Available` and
//! `Progressing` conditions (Kubernetes' `calculateStatus` and `syncRolloutStatus`).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::rollout;
use crate::api::clock;

/// How the `Progressing` condition is treated in this sync.
pub enum Progress {
    /// Counts and `Available` only (a scaling event, or a paused Deployment).
    Untracked,
    /// A rollout step: progress is measured against the previous status and the deadline.
    Tracked {
        /// The `Progressing` condition a new rollout starts with (`NewReplicaSetCreated`,
        /// `FoundNewReplicaSet`), if it starts now.
        started: Option<(&'static str, String)>,
    },
}

fn count(sets: &[&Value], pointer: &str) -> i64 {
    sets.iter()
        .map(|rs| rs.pointer(pointer).and_then(Value::as_i64).unwrap_or(0))
        .sum()
}

/// The status to write, and how long until the progress deadline must be looked at again.
pub fn compute(
    deployment: &Value,
    new: Option<&Value>,
    all: &[Arc<Value>],
    progress: Progress,
    now: DateTime<Utc>,
) -> (Value, Option<Duration>) {
    let previous = &deployment["status"];
    let mut status = counts(deployment, new, all);
    let mut conditions = Conditions {
        list: previous["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
        stamp: clock::format(now),
    };
    let desired = deployment["spec"]["replicas"].as_i64().unwrap_or(1) as i32;
    let limits = rollout::limits(&deployment["spec"]["strategy"], desired);
    if status["availableReplicas"].as_i64().unwrap_or(0)
        >= i64::from(desired - limits.max_unavailable)
    {
        let message = "Deployment has minimum availability.";
        conditions.set(
            "Available",
            "True",
            "MinimumReplicasAvailable",
            message.into(),
        );
    } else {
        let message = "Deployment does not have minimum availability.";
        conditions.set(
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            message.into(),
        );
    }
    let paused = deployment["spec"]["paused"].as_bool() == Some(true);
    let reason = reason_of(&conditions.list, "Progressing");
    if paused && reason != Some("DeploymentPaused") {
        conditions.set(
            "Progressing",
            "Unknown",
            "DeploymentPaused",
            "Deployment is paused".into(),
        );
    } else if !paused && reason == Some("DeploymentPaused") {
        conditions.set(
            "Progressing",
            "Unknown",
            "DeploymentResumed",
            "Deployment is resumed".into(),
        );
    }
    let deadline = deployment["spec"]["progressDeadlineSeconds"].as_i64();
    let mut wait = None;
    if let (Progress::Tracked { started }, Some(deadline)) = (progress, deadline) {
        if let Some((reason, message)) = started {
            remove_condition(&mut conditions.list, "Progressing");
            conditions.set("Progressing", "True", reason, message);
        }
        let name = new
            .and_then(|rs| rs["metadata"]["name"].as_str())
            .unwrap_or_default();
        let complete = is_complete(desired, deployment, &status);
        track_progress(
            &mut conditions,
            name,
            complete,
            previous,
            &status,
            deadline,
            now,
        );
        if !complete {
            wait = time_left(&conditions.list, deadline, now)
                .map(|left| left.to_std().unwrap_or_default() + Duration::from_secs(1));
        }
    }
    if !conditions.list.is_empty() {
        status["conditions"] = Value::Array(conditions.list);
    }
    (status, wait)
}

/// The replica counts over all ReplicaSets (updated ones: the new ReplicaSet's).
fn counts(deployment: &Value, new: Option<&Value>, all: &[Arc<Value>]) -> Value {
    let all: Vec<&Value> = all.iter().map(|rs| &**rs).collect();
    let available = count(&all, "/status/availableReplicas");
    let total = count(&all, "/spec/replicas");
    let mut status = json!({
        "observedGeneration": deployment["metadata"]["generation"],
        "replicas": count(&all, "/status/replicas"),
        "updatedReplicas": count(&new.into_iter().collect::<Vec<_>>(), "/status/replicas"),
        "readyReplicas": count(&all, "/status/readyReplicas"),
        "availableReplicas": available,
        "unavailableReplicas": (total - available).max(0),
    });
    if let Some(collisions) = deployment["status"].get("collisionCount") {
        status["collisionCount"] = collisions.clone();
    }
    status
}

/// The `Progressing` condition of a rollout step (`syncRolloutStatus`): complete, still
/// progressing (its update time renewed), or past the deadline since it last progressed.
fn track_progress(
    conditions: &mut Conditions,
    name: &str,
    complete: bool,
    previous: &Value,
    status: &Value,
    deadline: i64,
    now: DateTime<Utc>,
) {
    let current = find(&conditions.list, "Progressing").cloned();
    let reason = current.as_ref().and_then(|c| c["reason"].as_str());
    if status["replicas"] == status["updatedReplicas"] && reason == Some("NewReplicaSetAvailable") {
        return;
    }
    if complete {
        let message = format!("ReplicaSet {name:?} has successfully progressed.");
        conditions.set("Progressing", "True", "NewReplicaSetAvailable", message);
    } else if has_progressed(previous, status) {
        let transition = current
            .filter(|c| c["status"] == "True")
            .map(|c| c["lastTransitionTime"].clone());
        remove_condition(&mut conditions.list, "Progressing");
        let message = format!("ReplicaSet {name:?} is progressing.");
        conditions.set("Progressing", "True", "ReplicaSetUpdated", message);
        if let Some(transition) = transition {
            let last = conditions.list.last_mut().expect("just set");
            last["lastTransitionTime"] = transition;
        }
    } else if time_left(&conditions.list, deadline, now)
        .is_some_and(|left| left <= chrono::Duration::zero())
    {
        let message = format!("ReplicaSet {name:?} has timed out progressing.");
        conditions.set("Progressing", "False", "ProgressDeadlineExceeded", message);
    }
}

/// The conditions being computed, and the time stamped on the ones that change.
struct Conditions {
    list: Vec<Value>,
    stamp: String,
}

impl Conditions {
    fn set(&mut self, kind: &str, state: &str, reason: &str, message: String) {
        let condition = json!({"type": kind, "status": state, "lastUpdateTime": self.stamp,
            "lastTransitionTime": self.stamp, "reason": reason, "message": message});
        set_condition(&mut self.list, condition);
    }
}

/// How long until the `Progressing` condition, unchanged, exceeds the deadline; `None` when it
/// is settled (complete or already timed out).
fn time_left(conditions: &[Value], deadline: i64, now: DateTime<Utc>) -> Option<chrono::Duration> {
    let current = find(conditions, "Progressing")?;
    if matches!(
        current["reason"].as_str(),
        Some("NewReplicaSetAvailable" | "ProgressDeadlineExceeded")
    ) {
        return None;
    }
    let since = clock::parse(current["lastUpdateTime"].as_str()?)?;
    Some(clock::add_seconds(since, deadline) - now)
}

/// Every desired replica is updated and available, and the status is of the latest spec
/// (`DeploymentComplete`).
pub fn is_complete(desired: i32, deployment: &Value, status: &Value) -> bool {
    let desired = i64::from(desired);
    status["updatedReplicas"].as_i64() == Some(desired)
        && status["replicas"].as_i64() == Some(desired)
        && status["availableReplicas"].as_i64() == Some(desired)
        && status["observedGeneration"].as_i64() >= deployment["metadata"]["generation"].as_i64()
}

/// More updated, fewer old, more ready or more available pods than before
/// (`DeploymentProgressing`).
fn has_progressed(before: &Value, after: &Value) -> bool {
    let get = |status: &Value, field: &str| status[field].as_i64().unwrap_or(0);
    let old = |status: &Value| get(status, "replicas") - get(status, "updatedReplicas");
    get(after, "updatedReplicas") > get(before, "updatedReplicas")
        || old(after) < old(before)
        || get(after, "readyReplicas") > get(before, "readyReplicas")
        || get(after, "availableReplicas") > get(before, "availableReplicas")
}

fn find<'a>(conditions: &'a [Value], kind: &str) -> Option<&'a Value> {
    conditions.iter().find(|c| c["type"] == kind)
}

fn reason_of<'a>(conditions: &'a [Value], kind: &str) -> Option<&'a str> {
    find(conditions, kind).and_then(|c| c["reason"].as_str())
}

fn remove_condition(conditions: &mut Vec<Value>, kind: &str) {
    conditions.retain(|c| c["type"] != kind);
}

/// Kubernetes' `SetDeploymentCondition`: nothing changes when status and reason are the same;
/// the transition time is kept when only the reason changes.
fn set_condition(conditions: &mut Vec<Value>, mut condition: Value) {
    if let Some(current) = find(conditions, condition["type"].as_str().unwrap_or_default()) {
        if current["status"] == condition["status"] && current["reason"] == condition["reason"] {
            return;
        }
        if current["status"] == condition["status"] {
            condition["lastTransitionTime"] = current["lastTransitionTime"].clone();
        }
    }
    remove_condition(conditions, condition["type"].as_str().unwrap_or_default());
    conditions.push(condition);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
            + chrono::Duration::seconds(seconds)
    }

    fn replica_set(name: &str, replicas: i64, ready: i64, available: i64) -> Arc<Value> {
        Arc::new(
            json!({"metadata": {"name": name}, "spec": {"replicas": replicas},
            "status": {"replicas": replicas, "readyReplicas": ready, "availableReplicas": available}}),
        )
    }

    fn deployment(replicas: i64, status: Value) -> Value {
        json!({"metadata": {"generation": 2},
               "spec": {"replicas": replicas, "progressDeadlineSeconds": 60,
                        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 2}}},
               "status": status})
    }

    fn condition<'a>(status: &'a Value, kind: &str) -> &'a Value {
        status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == kind)
            .unwrap()
    }

    #[test]
    fn counts_come_from_the_replica_sets_and_a_complete_rollout_says_so() {
        let new = replica_set("web-new", 3, 3, 3);
        let old = replica_set("web-old", 0, 0, 0);
        let started = Some((
            "NewReplicaSetCreated",
            "Created new replica set \"web-new\"".into(),
        ));
        let (status, wait) = compute(
            &deployment(3, json!({})),
            Some(&new),
            &[old, new.clone()],
            Progress::Tracked { started },
            at(0),
        );
        assert_eq!(status["replicas"], 3);
        assert_eq!(status["updatedReplicas"], 3);
        assert_eq!(status["availableReplicas"], 3);
        assert_eq!(status["unavailableReplicas"], 0);
        assert_eq!(status["observedGeneration"], 2);
        assert_eq!(
            condition(&status, "Available")["reason"],
            "MinimumReplicasAvailable"
        );
        assert_eq!(
            condition(&status, "Progressing")["reason"],
            "NewReplicaSetAvailable"
        );
        assert_eq!(wait, None);
    }

    #[test]
    fn a_stuck_rollout_times_out_after_the_progress_deadline() {
        let old = replica_set("web-old", 8, 8, 8);
        let new = replica_set("web-new", 5, 0, 0);
        let all = [old, new.clone()];
        let started = Some(("NewReplicaSetCreated", String::new()));
        let (status, wait) = compute(
            &deployment(10, json!({})),
            Some(&new),
            &all,
            Progress::Tracked { started },
            at(0),
        );
        assert_eq!(status["unavailableReplicas"], 5);
        assert_eq!(
            condition(&status, "Available")["status"],
            "True",
            "8 of 10, 2 may be unavailable"
        );
        assert_eq!(wait, Some(Duration::from_secs(61)));

        let tracked = || Progress::Tracked { started: None };
        let (later, wait) = compute(
            &deployment(10, status.clone()),
            Some(&new),
            &all,
            tracked(),
            at(59),
        );
        assert_eq!(
            condition(&later, "Progressing")["reason"],
            "ReplicaSetUpdated",
            "not yet"
        );
        assert_eq!(wait, Some(Duration::from_secs(2)));
        let (timed_out, wait) =
            compute(&deployment(10, later), Some(&new), &all, tracked(), at(61));
        let progressing = condition(&timed_out, "Progressing");
        assert_eq!(progressing["reason"], "ProgressDeadlineExceeded");
        assert_eq!(progressing["status"], "False");
        assert_eq!(wait, None);
    }

    #[test]
    fn too_few_available_pods_make_the_deployment_unavailable_and_pausing_is_noted() {
        let new = replica_set("web-new", 10, 7, 7);
        let mut paused = deployment(10, json!({}));
        paused["spec"]["paused"] = json!(true);
        let (status, _) = compute(
            &paused,
            Some(&new),
            std::slice::from_ref(&new),
            Progress::Untracked,
            at(0),
        );
        assert_eq!(condition(&status, "Available")["status"], "False");
        assert_eq!(
            condition(&status, "Progressing")["reason"],
            "DeploymentPaused"
        );
        let (resumed, _) = compute(
            &deployment(10, status),
            Some(&new),
            std::slice::from_ref(&new),
            Progress::Untracked,
            at(1),
        );
        assert_eq!(
            condition(&resumed, "Progressing")["reason"],
            "DeploymentResumed"
        );
    }
}
