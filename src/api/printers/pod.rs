//! A pod's columns; READY, STATUS and RESTARTS computed as kubectl's `printPod` does.

use k8s_openapi::api::core::v1::{Container, ContainerStatus, Pod};
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

use super::{Column, Columns, decode, or_none, since};

pub static COLUMNS: Columns = Columns {
    columns: &[
        Column::standard("NAME"),
        Column::standard("READY"),
        Column::standard("STATUS"),
        Column::standard("RESTARTS"),
        Column::standard("AGE"),
        Column::wide("IP"),
        Column::wide("NODE"),
        Column::wide("NOMINATED NODE"),
        Column::wide("READINESS GATES"),
    ],
    cells,
};

fn cells(object: &Value, now: Timestamp) -> Vec<String> {
    let pod: Pod = decode(object);
    let summary = summarize(&pod);
    let Pod {
        metadata,
        spec,
        status,
    } = pod;
    let (spec, status) = (spec.unwrap_or_default(), status.unwrap_or_default());
    let gates = spec.readiness_gates.unwrap_or_default();
    let readiness_gates = if gates.is_empty() {
        "<none>".into()
    } else {
        let conditions = status.conditions.unwrap_or_default();
        let ready = gates
            .iter()
            .filter(|g| {
                conditions
                    .iter()
                    .any(|c| c.type_ == g.condition_type && c.status == "True")
            })
            .count();
        format!("{ready}/{}", gates.len())
    };
    vec![
        metadata.name.unwrap_or_default(),
        summary.ready_column(),
        summary.status.clone(),
        summary.restarts_column(now),
        since(metadata.creation_timestamp.map(|t| t.0), now),
        or_none(status.pod_ip),
        or_none(spec.node_name),
        or_none(status.nominated_node_name),
        readiness_gates,
    ]
}

/// What `get pods` shows about one pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodSummary {
    pub ready: usize,
    pub total: usize,
    /// `Running`, `Pending`, `CrashLoopBackOff`, `OOMKilled`, `Completed`, `Init:0/1`,
    /// `Terminating`, ...
    pub status: String,
    pub restarts: i64,
    /// When a container last terminated before a restart (for `3 (12s ago)`).
    pub last_restart: Option<Timestamp>,
}

impl PodSummary {
    /// `ready/total`.
    pub fn ready_column(&self) -> String {
        format!("{}/{}", self.ready, self.total)
    }

    /// `3`, or `3 (12s ago)` when the last restart time is known.
    pub fn restarts_column(&self, now: Timestamp) -> String {
        match self.last_restart {
            Some(at) if self.restarts != 0 => {
                format!("{} ({} ago)", self.restarts, since(Some(at), now))
            }
            _ => self.restarts.to_string(),
        }
    }
}

/// Summarizes `pod` exactly as kubectl's pod printer does.
pub fn summarize(pod: &Pod) -> PodSummary {
    let spec = pod.spec.clone().unwrap_or_default();
    let status = pod.status.clone().unwrap_or_default();
    let init_containers = spec.init_containers.unwrap_or_default();
    let init_statuses = status.init_container_statuses.unwrap_or_default();
    let container_statuses = status.container_statuses.unwrap_or_default();
    let conditions = status.conditions.unwrap_or_default();
    let condition_true = |kind: &str| {
        conditions
            .iter()
            .any(|c| c.type_ == kind && c.status == "True")
    };

    let phase = status.phase.unwrap_or_default();
    let mut reason = status
        .reason
        .clone()
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| phase.clone());
    let mut summary = PodSummary {
        ready: 0,
        total: spec.containers.len()
            + init_containers
                .iter()
                .filter(|c| is_sidecar(Some(c)))
                .count(),
        status: String::new(),
        restarts: 0,
        last_restart: None,
    };

    let mut sidecar_restarts = 0;
    let mut sidecar_last_restart = None;
    let mut initializing = false;
    for (index, container) in init_statuses.iter().enumerate() {
        let spec = init_containers.iter().find(|c| c.name == container.name);
        summary.restarts += i64::from(container.restart_count);
        summary.last_restart = later(summary.last_restart, last_termination(container));
        if is_sidecar(spec) {
            sidecar_restarts += i64::from(container.restart_count);
            sidecar_last_restart = later(sidecar_last_restart, last_termination(container));
        }
        let state = container.state.clone().unwrap_or_default();
        let waiting_reason = state
            .waiting
            .and_then(|w| w.reason)
            .filter(|r| !r.is_empty());
        match state.terminated {
            Some(terminated) if terminated.exit_code == 0 => continue,
            _ if is_sidecar(spec) && container.started == Some(true) => {
                if container.ready {
                    summary.ready += 1;
                }
                continue;
            }
            Some(terminated) => {
                reason = match terminated.reason.filter(|r| !r.is_empty()) {
                    Some(r) => format!("Init:{r}"),
                    None => match terminated.signal.filter(|&s| s != 0) {
                        Some(signal) => format!("Init:Signal:{signal}"),
                        None => format!("Init:ExitCode:{}", terminated.exit_code),
                    },
                };
            }
            None => match waiting_reason.filter(|r| r != "PodInitializing") {
                Some(r) => reason = format!("Init:{r}"),
                None => reason = format!("Init:{index}/{}", init_containers.len()),
            },
        }
        initializing = true;
        break;
    }

    if !initializing || condition_true("Initialized") {
        summary.restarts = sidecar_restarts;
        summary.last_restart = sidecar_last_restart;
        let mut has_running = false;
        for container in container_statuses.iter().rev() {
            summary.restarts += i64::from(container.restart_count);
            summary.last_restart = later(summary.last_restart, last_termination(container));
            let state = container.state.clone().unwrap_or_default();
            let waiting_reason = state
                .waiting
                .as_ref()
                .and_then(|w| w.reason.clone())
                .filter(|r| !r.is_empty());
            if let Some(r) = waiting_reason {
                reason = r;
            } else if let Some(terminated) = &state.terminated {
                reason = match terminated.reason.clone().filter(|r| !r.is_empty()) {
                    Some(r) => r,
                    None => match terminated.signal.filter(|&s| s != 0) {
                        Some(signal) => format!("Signal:{signal}"),
                        None => format!("ExitCode:{}", terminated.exit_code),
                    },
                };
            } else if container.ready && state.running.is_some() {
                has_running = true;
                summary.ready += 1;
            }
        }
        // A pod whose finished container is listed last but which still runs another.
        if reason == "Completed" && has_running {
            reason = if conditions.iter().any(|c| c.type_ == "Ready") {
                "Running".into()
            } else {
                "NotReady".into()
            };
        }
    }

    let deleting = pod.metadata.deletion_timestamp.is_some();
    if deleting && status.reason.as_deref() == Some("NodeLost") {
        reason = "Unknown".into();
    } else if deleting && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".into();
    }
    summary.status = reason;
    summary
}

/// An init container with `restartPolicy: Always` runs beside the app containers.
fn is_sidecar(container: Option<&Container>) -> bool {
    container.and_then(|c| c.restart_policy.as_deref()) == Some("Always")
}

fn last_termination(container: &ContainerStatus) -> Option<Timestamp> {
    container
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .and_then(|t| t.finished_at.as_ref())
        .map(|t| t.0)
}

fn later(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_now;
    use super::*;
    use serde_json::json;

    #[test]
    fn cells_follow_the_columns() {
        let pod = json!({
            "metadata": {"name": "demo", "namespace": "team", "creationTimestamp": "2024-01-09T23:59:55Z"},
            "spec": {"nodeName": "node-1", "containers": [{"name": "a"}]},
            "status": {"phase": "Running", "podIP": "10.0.0.5", "containerStatuses": [
                {"name": "a", "ready": true, "restartCount": 0, "state": {"running": {}}}
            ]}
        });
        assert_eq!(
            cells(&pod, test_now()),
            [
                "demo", "1/1", "Running", "0", "5s", "10.0.0.5", "node-1", "<none>", "<none>"
            ]
        );
        assert_eq!(COLUMNS.columns.len(), cells(&pod, test_now()).len());
    }

    fn pod(value: Value) -> Pod {
        serde_json::from_value(value).unwrap()
    }

    fn two_containers(statuses: Value) -> Pod {
        pod(json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"phase": "Running", "containerStatuses": statuses}
        }))
    }

    #[test]
    fn running_pod_counts_ready_containers() {
        let summary = summarize(&two_containers(json!([
            {"name": "a", "ready": true, "restartCount": 0, "state": {"running": {}}},
            {"name": "b", "ready": true, "restartCount": 0, "state": {"running": {}}}
        ])));
        assert_eq!(
            (summary.ready_column().as_str(), summary.status.as_str()),
            ("2/2", "Running")
        );
    }

    #[test]
    fn waiting_reason_wins_and_restarts_are_summed() {
        let summary = summarize(&two_containers(json!([
            {"name": "a", "ready": true, "restartCount": 0, "state": {"running": {}}},
            {"name": "b", "ready": false, "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
             "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": "2024-01-01T00:00:00Z"}}}
        ])));
        assert_eq!(summary.status, "CrashLoopBackOff");
        assert_eq!(summary.ready_column(), "1/2");
        assert_eq!(summary.restarts, 3);
        let now: Timestamp = "2024-01-01T00:00:12Z".parse().unwrap();
        assert_eq!(summary.restarts_column(now), "3 (12s ago)");
    }

    #[test]
    fn terminated_reasons_show_as_status() {
        for (reason, expected) in [
            ("OOMKilled", "OOMKilled"),
            ("Completed", "Completed"),
            ("Error", "Error"),
        ] {
            let summary = summarize(&pod(json!({
                "spec": {"containers": [{"name": "a"}]},
                "status": {"phase": "Failed", "containerStatuses": [
                    {"name": "a", "restartCount": 0, "state": {"terminated": {"exitCode": 1, "reason": reason}}}
                ]}
            })));
            assert_eq!(summary.status, expected);
            assert_eq!(summary.ready_column(), "0/1");
        }
        let summary = summarize(&pod(json!({
            "spec": {"containers": [{"name": "a"}]},
            "status": {"phase": "Failed", "containerStatuses": [
                {"name": "a", "state": {"terminated": {"exitCode": 3}}}
            ]}
        })));
        assert_eq!(summary.status, "ExitCode:3");
    }

    #[test]
    fn completed_container_beside_a_running_one_reads_running() {
        let summary = summarize(&pod(json!({
            "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}], "containerStatuses": [
                {"name": "a", "ready": true, "state": {"running": {}}},
                {"name": "b", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
            ]}
        })));
        assert_eq!(summary.status, "Running");
    }

    #[test]
    fn init_containers_show_progress_and_failures() {
        let base = |statuses: Value| {
            pod(json!({
                "spec": {"initContainers": [{"name": "i1"}, {"name": "i2"}], "containers": [{"name": "a"}]},
                "status": {"phase": "Pending", "initContainerStatuses": statuses}
            }))
        };
        let running = summarize(&base(json!([
            {"name": "i1", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
            {"name": "i2", "state": {"running": {}}}
        ])));
        assert_eq!(running.status, "Init:1/2");
        let failed = summarize(&base(json!([
            {"name": "i1", "restartCount": 2, "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}
        ])));
        assert_eq!((failed.status.as_str(), failed.restarts), ("Init:Error", 2));
        let backoff = summarize(&base(json!([
            {"name": "i1", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
        ])));
        assert_eq!(backoff.status, "Init:CrashLoopBackOff");
    }

    #[test]
    fn deletion_timestamp_reads_terminating_unless_finished() {
        let mut deleting = two_containers(json!([]));
        deleting.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                "2024-01-01T00:00:00Z".parse().unwrap(),
            ));
        assert_eq!(summarize(&deleting).status, "Terminating");
        deleting.status.as_mut().unwrap().phase = Some("Succeeded".into());
        assert_eq!(summarize(&deleting).status, "Succeeded");
    }

    #[test]
    fn pending_pod_without_statuses_reads_its_phase() {
        let summary = summarize(&pod(
            json!({"spec": {"containers": [{"name": "a"}]}, "status": {"phase": "Pending"}}),
        ));
        assert_eq!(
            (summary.ready_column().as_str(), summary.status.as_str()),
            ("0/1", "Pending")
        );
    }
}
