//! The pod status the node reports: container states, phase and conditions, as pure functions.

use serde_json::{Value, json};

/// A container's state, as `status.containerStatuses[].state` shows it.
#[derive(Clone, Debug, PartialEq)]
pub enum ContainerState {
    Waiting {
        reason: String,
        message: Option<String>,
    },
    Running {
        started_at: String,
    },
    Terminated(Termination),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Termination {
    pub exit_code: i32,
    pub reason: String,
    pub message: Option<String>,
    pub started_at: String,
    pub finished_at: String,
}

impl ContainerState {
    pub fn waiting(reason: &str, message: Option<String>) -> Self {
        ContainerState::Waiting {
            reason: reason.into(),
            message,
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            ContainerState::Waiting { reason, message } => {
                json!({"waiting": {"reason": reason, "message": message}})
            }
            ContainerState::Running { started_at } => json!({"running": {"startedAt": started_at}}),
            ContainerState::Terminated(t) => json!({"terminated": {
                "exitCode": t.exit_code, "reason": t.reason, "message": t.message,
                "startedAt": t.started_at, "finishedAt": t.finished_at,
            }}),
        }
    }
}

/// What the node knows of one container.
#[derive(Clone, Debug, PartialEq)]
pub struct ContainerRecord {
    pub name: String,
    pub image: String,
    pub image_id: String,
    pub state: ContainerState,
    pub last_termination: Option<Termination>,
    pub restart_count: i32,
    /// Whether the running instance is ready: its readiness probe passes (after its startup
    /// probe), or it has none.
    pub ready: bool,
    /// Whether the running instance has started: its startup probe passed, or it has none.
    pub started: bool,
}

impl ContainerRecord {
    pub fn new(name: &str, image: &str) -> Self {
        Self {
            name: name.into(),
            image: image.into(),
            image_id: String::new(),
            state: ContainerState::waiting("ContainerCreating", None),
            last_termination: None,
            restart_count: 0,
            ready: false,
            started: false,
        }
    }

    pub fn is_running(&self) -> bool {
        matches!(self.state, ContainerState::Running { .. })
    }

    /// Running and ready (`containerStatuses[].ready`, what `READY n/m` counts).
    pub fn is_ready(&self) -> bool {
        self.is_running() && self.ready
    }

    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "image": self.image,
            "imageID": self.image_id,
            "state": self.state.to_json(),
            "lastState": self.last_termination.clone().map(|t| ContainerState::Terminated(t).to_json()).unwrap_or(json!({})),
            "ready": self.is_ready(),
            "started": self.is_running() && self.started,
            "restartCount": self.restart_count,
        })
    }
}

/// Everything the node reports about one pod.
#[derive(Clone, Debug, PartialEq)]
pub struct PodRecord {
    pub restart_policy: String,
    pub init: Vec<ContainerRecord>,
    pub app: Vec<ContainerRecord>,
    pub initialized: bool,
    pub start_time: String,
    /// When the Ready condition last changed (what `minReadySeconds` counts from).
    pub ready_transition: String,
    pub host_ip: String,
    pub pod_ip: String,
    pub terminating: bool,
    /// Why the node evicted the pod (its disk usage), if it did: the pod has failed for good.
    pub eviction: Option<String>,
}

/// Kubernetes' pod phase, from the containers' states and the restart policy.
pub fn phase(pod: &PodRecord) -> &'static str {
    if pod.eviction.is_some() {
        return "Failed";
    }
    if !pod.initialized {
        let init_failed = pod.init.iter().any(|c| {
            matches!(&c.state, ContainerState::Terminated(t) if t.exit_code != 0)
                && pod.restart_policy == "Never"
        });
        return if init_failed { "Failed" } else { "Pending" };
    }
    let (mut waiting, mut running, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for container in &pod.app {
        match &container.state {
            ContainerState::Running { .. } => running += 1,
            ContainerState::Terminated(t) => {
                stopped += 1;
                if t.exit_code == 0 {
                    succeeded += 1;
                }
            }
            ContainerState::Waiting { .. } if container.last_termination.is_some() => stopped += 1,
            ContainerState::Waiting { .. } => waiting += 1,
        }
    }
    match () {
        _ if waiting > 0 => "Pending",
        _ if running > 0 => "Running",
        _ if stopped == 0 => "Pending",
        _ if pod.restart_policy == "Always" => "Running",
        _ if stopped == succeeded => "Succeeded",
        _ if pod.restart_policy == "OnFailure" => "Running",
        _ => "Failed",
    }
}

/// Whether nothing worth reporting has happened to the pod yet: every container still waits
/// for its first start and none has restarted, and the pod is neither stopping nor evicted.
pub fn is_starting(pod: &PodRecord) -> bool {
    let creating = ContainerState::waiting("ContainerCreating", None);
    let untouched = |c: &ContainerRecord| {
        c.state == creating && c.restart_count == 0 && c.last_termination.is_none()
    };
    !pod.terminating && pod.eviction.is_none() && pod.init.iter().chain(&pod.app).all(untouched)
}

/// The `status` object of the pod.
pub fn status_json(pod: &PodRecord) -> Value {
    let phase = phase(pod);
    let containers_ready = containers_ready(pod);
    let ready = is_ready(pod);
    let condition = |kind: &str, status: bool, reason: Option<&str>| {
        let since = if matches!(kind, "Ready" | "ContainersReady") {
            &pod.ready_transition
        } else {
            &pod.start_time
        };
        json!({"type": kind, "status": if status { "True" } else { "False" }, "reason": reason, "lastTransitionTime": since})
    };
    let not_ready_reason = (!containers_ready).then_some("ContainersNotReady");
    let mut status = json!({
        "phase": phase,
        "conditions": [
            condition("PodReadyToStartContainers", true, None),
            condition("Initialized", pod.initialized, (!pod.initialized).then_some("ContainersNotInitialized")),
            condition("Ready", ready, if ready { None } else { not_ready_reason.or(Some("PodCompleted")) }),
            condition("ContainersReady", containers_ready, not_ready_reason),
            condition("PodScheduled", true, None),
        ],
        "hostIP": pod.host_ip,
        "hostIPs": [{"ip": pod.host_ip}],
        "podIP": pod.pod_ip,
        "podIPs": [{"ip": pod.pod_ip}],
        "startTime": pod.start_time,
        "containerStatuses": pod.app.iter().map(ContainerRecord::to_json).collect::<Vec<_>>(),
    });
    if !pod.init.is_empty() {
        status["initContainerStatuses"] = pod.init.iter().map(ContainerRecord::to_json).collect();
    }
    if let Some(message) = &pod.eviction {
        status["reason"] = json!("Evicted");
        status["message"] = json!(message);
        if let Some(conditions) = status["conditions"].as_array_mut() {
            conditions.push(json!({"type": "DisruptionTarget", "status": "True",
                "reason": "TerminationByKubelet", "message": message,
                "lastTransitionTime": pod.ready_transition}));
        }
    }
    status
}

fn containers_ready(pod: &PodRecord) -> bool {
    pod.app.iter().all(ContainerRecord::is_ready) && !pod.terminating
}

/// The pod's Ready condition: every app container running and ready, the pod running and not
/// terminating.
pub fn is_ready(pod: &PodRecord) -> bool {
    containers_ready(pod) && phase(pod) == "Running"
}

/// Whether a container that ended with `exit_code` is started again under `restart_policy`.
pub fn should_restart(restart_policy: &str, exit_code: i32) -> bool {
    match restart_policy {
        "Always" => true,
        "OnFailure" => exit_code != 0,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terminated(code: i32) -> ContainerState {
        ContainerState::Terminated(Termination {
            exit_code: code,
            reason: if code == 0 { "Completed" } else { "Error" }.into(),
            message: None,
            started_at: String::new(),
            finished_at: String::new(),
        })
    }

    fn pod(policy: &str, states: Vec<ContainerState>) -> PodRecord {
        PodRecord {
            restart_policy: policy.into(),
            init: vec![],
            app: states
                .into_iter()
                .enumerate()
                .map(|(i, state)| ContainerRecord {
                    state,
                    ready: true,
                    started: true,
                    ..ContainerRecord::new(&format!("c{i}"), "x.wasm")
                })
                .collect(),
            initialized: true,
            start_time: String::new(),
            ready_transition: String::new(),
            host_ip: String::new(),
            pod_ip: String::new(),
            terminating: false,
            eviction: None,
        }
    }

    #[test]
    fn phase_follows_kubernetes_for_every_policy_and_outcome() {
        let running = ContainerState::Running {
            started_at: String::new(),
        };
        let cases = [
            ("Never", vec![terminated(3)], "Failed"),
            ("Never", vec![terminated(0)], "Succeeded"),
            ("OnFailure", vec![terminated(0)], "Succeeded"),
            ("OnFailure", vec![terminated(1)], "Running"),
            ("Always", vec![terminated(0)], "Running"),
            ("Never", vec![running.clone(), terminated(1)], "Running"),
            (
                "Never",
                vec![ContainerState::waiting("ContainerCreating", None)],
                "Pending",
            ),
            ("Never", vec![terminated(0), terminated(2)], "Failed"),
        ];
        for (policy, states, expected) in cases {
            assert_eq!(
                phase(&pod(policy, states.clone())),
                expected,
                "{policy} {states:?}"
            );
        }
    }

    #[test]
    fn a_crash_looping_container_keeps_the_pod_running_but_not_ready() {
        let mut record = pod(
            "Always",
            vec![ContainerState::waiting("CrashLoopBackOff", None)],
        );
        record.app[0].last_termination = Some(Termination {
            exit_code: 1,
            reason: "Error".into(),
            message: None,
            started_at: String::new(),
            finished_at: String::new(),
        });
        let status = status_json(&record);
        assert_eq!(status["phase"], "Running");
        assert_eq!(status["conditions"][2]["status"], "False");
    }

    #[test]
    fn failed_init_container_fails_the_pod_only_without_restarts() {
        let mut record = pod(
            "Never",
            vec![ContainerState::waiting("PodInitializing", None)],
        );
        record.initialized = false;
        record.init = vec![ContainerRecord {
            state: terminated(1),
            ..ContainerRecord::new("init", "x.wasm")
        }];
        assert_eq!(phase(&record), "Failed");
        record.restart_policy = "OnFailure".into();
        assert_eq!(phase(&record), "Pending");
    }

    #[test]
    fn an_evicted_pod_has_failed_with_reason_evicted_and_a_disruption_condition() {
        let running = ContainerState::Running {
            started_at: String::new(),
        };
        let mut record = pod("Always", vec![running]);
        record.eviction =
            Some("Usage of EmptyDir volume \"data\" exceeds the limit \"10Mi\".".into());
        let status = status_json(&record);
        assert_eq!(status["phase"], "Failed");
        assert_eq!(status["reason"], "Evicted");
        assert!(status["message"].as_str().unwrap().contains("EmptyDir"));
        let disruption = status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "DisruptionTarget")
            .unwrap();
        assert_eq!(disruption["reason"], "TerminationByKubelet");
        assert!(!is_ready(&record));
    }

    #[test]
    fn a_running_container_that_is_not_ready_keeps_the_pod_out_of_ready() {
        let running = ContainerState::Running {
            started_at: String::new(),
        };
        let mut record = pod("Always", vec![running.clone(), running]);
        assert!(is_ready(&record));
        record.app[1].ready = false;
        let status = status_json(&record);
        assert!(!is_ready(&record));
        assert_eq!(status["conditions"][2]["status"], "False");
        assert_eq!(status["conditions"][2]["reason"], "ContainersNotReady");
        assert_eq!(status["containerStatuses"][0]["ready"], true);
        assert_eq!(status["containerStatuses"][1]["ready"], false);
        assert_eq!(status["phase"], "Running");
    }

    #[test]
    fn a_pod_is_starting_until_a_container_moves_or_the_pod_stops() {
        let creating = || ContainerState::waiting("ContainerCreating", None);
        let starting = pod("Always", vec![creating(), creating()]);
        assert!(is_starting(&starting));
        let mut pulled = starting.clone();
        pulled.app[0].image_id = "sha256:abc".into();
        assert!(
            is_starting(&pulled),
            "a pulled image alone is not worth a write"
        );
        type Change = fn(&mut PodRecord);
        let changes: [(&str, Change); 5] = [
            ("a container runs", |p| {
                p.app[1].state = ContainerState::Running {
                    started_at: String::new(),
                }
            }),
            ("a pull fails", |p| {
                p.app[0].state = ContainerState::waiting("ErrImagePull", Some("no".into()))
            }),
            ("a container restarted before", |p| {
                p.app[0].restart_count = 1
            }),
            ("the pod is stopping", |p| p.terminating = true),
            ("the pod is evicted", |p| p.eviction = Some("disk".into())),
        ];
        for (what, change) in changes {
            let mut changed = starting.clone();
            change(&mut changed);
            assert!(!is_starting(&changed), "{what}");
        }
        let mut init_running = starting.clone();
        init_running.init = vec![ContainerRecord {
            state: ContainerState::Running {
                started_at: String::new(),
            },
            ..ContainerRecord::new("init", "x.wasm")
        }];
        assert!(!is_starting(&init_running), "an init container runs");
    }

    #[test]
    fn restart_decisions_per_policy() {
        assert!(should_restart("Always", 0));
        assert!(should_restart("OnFailure", 1));
        assert!(!should_restart("OnFailure", 0));
        assert!(!should_restart("Never", 1));
    }
}
