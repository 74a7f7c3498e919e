//! What the scheduler reads from a pod: effective resource requests, node selector,
//! tolerations and controlling owner.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, PodSpec, Toleration};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde_json::Value;

use crate::api::quantity;

/// The CPU a container without a CPU request counts for scoring (Kubernetes' 100m).
pub const DEFAULT_MILLI_CPU_REQUEST: u64 = 100;
/// The memory a container without a memory request counts for scoring (Kubernetes' 200Mi).
pub const DEFAULT_MEMORY_REQUEST: u64 = 200 << 20;

/// An amount of the two resources the scheduler fits: CPU in millicores, memory in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    pub milli_cpu: u64,
    pub memory: u64,
}

impl Resources {
    pub fn plus(self, other: Resources) -> Resources {
        Resources {
            milli_cpu: self.milli_cpu.saturating_add(other.milli_cpu),
            memory: self.memory.saturating_add(other.memory),
        }
    }

    pub fn minus(self, other: Resources) -> Resources {
        Resources {
            milli_cpu: self.milli_cpu.saturating_sub(other.milli_cpu),
            memory: self.memory.saturating_sub(other.memory),
        }
    }

    fn max(self, other: Resources) -> Resources {
        Resources {
            milli_cpu: self.milli_cpu.max(other.milli_cpu),
            memory: self.memory.max(other.memory),
        }
    }

    /// Reads `cpu` and `memory` from a resource list; what is missing or unreadable is 0.
    pub fn from_list(list: Option<&BTreeMap<String, Quantity>>) -> Resources {
        let read = |name: &str, parse: fn(&str) -> Option<u64>| {
            list.and_then(|l| l.get(name))
                .and_then(|q| parse(&q.0))
                .unwrap_or(0)
        };
        Resources {
            milli_cpu: read("cpu", quantity::millicores),
            memory: read("memory", quantity::bytes),
        }
    }
}

/// A pod's requests as the fit check sees them, and as scoring sees them (where a container
/// that names no request counts Kubernetes' non-zero defaults).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Requests {
    pub fit: Resources,
    pub scoring: Resources,
}

impl Requests {
    pub fn plus(self, other: Requests) -> Requests {
        Requests {
            fit: self.fit.plus(other.fit),
            scoring: self.scoring.plus(other.scoring),
        }
    }

    pub fn minus(self, other: Requests) -> Requests {
        Requests {
            fit: self.fit.minus(other.fit),
            scoring: self.scoring.minus(other.scoring),
        }
    }

    fn max(self, other: Requests) -> Requests {
        Requests {
            fit: self.fit.max(other.fit),
            scoring: self.scoring.max(other.scoring),
        }
    }
}

/// One container's requests. Admission does not default requests from limits, so this does,
/// as Kubernetes' defaulting would have: a resource limited but not requested requests its limit.
fn container_requests(container: &Container) -> Requests {
    let resources = container.resources.as_ref();
    let requests = resources.and_then(|r| r.requests.as_ref());
    let limits = resources.and_then(|r| r.limits.as_ref());
    let requested = |name: &str, parse: fn(&str) -> Option<u64>| {
        requests
            .and_then(|list| list.get(name))
            .or_else(|| limits.and_then(|list| list.get(name)))
            .map(|q| parse(&q.0).unwrap_or(0))
    };
    let cpu = requested("cpu", quantity::millicores);
    let memory = requested("memory", quantity::bytes);
    Requests {
        fit: Resources {
            milli_cpu: cpu.unwrap_or(0),
            memory: memory.unwrap_or(0),
        },
        scoring: Resources {
            milli_cpu: cpu.unwrap_or(DEFAULT_MILLI_CPU_REQUEST),
            memory: memory.unwrap_or(DEFAULT_MEMORY_REQUEST),
        },
    }
}

/// The pod's effective requests, as Kubernetes computes them: the app containers' sum (with
/// sidecars, i.e. init containers with `restartPolicy: Always`), or the peak of any init
/// container running alongside the sidecars started before it, whichever is larger; plus the
/// pod overhead.
pub fn pod_requests(spec: &PodSpec) -> Requests {
    let mut total = spec
        .containers
        .iter()
        .map(container_requests)
        .fold(Requests::default(), Requests::plus);
    let mut sidecars = Requests::default();
    let mut init_peak = Requests::default();
    for container in spec.init_containers.iter().flatten() {
        let own = container_requests(container);
        let running = if container.restart_policy.as_deref() == Some("Always") {
            total = total.plus(own);
            sidecars = sidecars.plus(own);
            sidecars
        } else {
            own.plus(sidecars)
        };
        init_peak = init_peak.max(running);
    }
    let overhead = Resources::from_list(spec.overhead.as_ref());
    total.max(init_peak).plus(Requests {
        fit: overhead,
        scoring: overhead,
    })
}

/// The uid of the pod's controlling owner (`ownerReferences[].controller: true`).
pub fn controller_uid(pod: &Value) -> Option<&str> {
    pod["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|owner| owner["controller"] == true)?["uid"]
        .as_str()
}

/// What scheduling one pod needs to know about it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodInfo {
    pub requests: Requests,
    pub node_selector: BTreeMap<String, String>,
    pub tolerations: Vec<Toleration>,
    /// Pods of the same controller are spread over nodes.
    pub owner: Option<String>,
}

impl PodInfo {
    /// Reads a stored pod; a spec that does not decode (admission makes that impossible)
    /// asks for nothing.
    pub fn of(pod: &Value) -> PodInfo {
        let spec: PodSpec = serde::Deserialize::deserialize(&pod["spec"]).unwrap_or_default();
        PodInfo {
            requests: pod_requests(&spec),
            node_selector: spec.node_selector.unwrap_or_default(),
            tolerations: spec.tolerations.unwrap_or_default(),
            owner: controller_uid(pod).map(str::to_string),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn requests_of(spec: Value) -> Requests {
        pod_requests(&serde_json::from_value(spec).unwrap())
    }

    fn container(requests: Value, limits: Value) -> Value {
        json!({"name": "c", "resources": {"requests": requests, "limits": limits}})
    }

    fn resources(milli_cpu: u64, memory: u64) -> Resources {
        Resources { milli_cpu, memory }
    }

    #[test]
    fn app_containers_add_up() {
        let requests = requests_of(json!({"containers": [
            container(json!({"cpu": "250m", "memory": "64Mi"}), json!({})),
            container(json!({"cpu": "1", "memory": "1Gi"}), json!({})),
        ]}));
        assert_eq!(requests.fit, resources(1250, (64 << 20) + (1 << 30)));
        assert_eq!(requests.scoring, requests.fit);
    }

    #[test]
    fn a_limit_without_a_request_is_the_request() {
        let requests = requests_of(json!({"containers": [
            container(json!({"cpu": "100m"}), json!({"cpu": "2", "memory": "128Mi"})),
        ]}));
        assert_eq!(requests.fit, resources(100, 128 << 20));
    }

    #[test]
    fn containers_without_requests_fit_anywhere_but_score_with_defaults() {
        let requests = requests_of(json!({"containers": [
            {"name": "a"},
            container(json!({"memory": "1Gi"}), json!({})),
        ]}));
        assert_eq!(requests.fit, resources(0, 1 << 30));
        assert_eq!(
            requests.scoring,
            resources(
                2 * DEFAULT_MILLI_CPU_REQUEST,
                DEFAULT_MEMORY_REQUEST + (1 << 30)
            )
        );
    }

    #[test]
    fn an_init_container_larger_than_the_app_containers_sets_the_request() {
        let requests = requests_of(json!({
            "initContainers": [container(json!({"cpu": "2", "memory": "10Mi"}), json!({}))],
            "containers": [container(json!({"cpu": "500m", "memory": "1Gi"}), json!({}))],
        }));
        assert_eq!(requests.fit, resources(2000, 1 << 30));
    }

    #[test]
    fn sidecars_count_with_the_app_and_under_later_init_containers() {
        let mut sidecar = container(json!({"cpu": "100m", "memory": "0"}), json!({}));
        sidecar["restartPolicy"] = json!("Always");
        let requests = requests_of(json!({
            "initContainers": [sidecar, container(json!({"cpu": "1"}), json!({}))],
            "containers": [container(json!({"cpu": "200m"}), json!({}))],
        }));
        assert_eq!(
            requests.fit.milli_cpu, 1100,
            "init 1 + sidecar 0.1 beats 0.3"
        );
    }

    #[test]
    fn overhead_is_added() {
        let requests = requests_of(json!({
            "overhead": {"cpu": "50m", "memory": "1Mi"},
            "containers": [container(json!({"cpu": "100m", "memory": "1Mi"}), json!({}))],
        }));
        assert_eq!(requests.fit, resources(150, 2 << 20));
    }

    #[test]
    fn a_pod_reads_its_selector_tolerations_and_controller() {
        let pod = json!({
            "metadata": {"ownerReferences": [
                {"uid": "other", "controller": false}, {"uid": "rs-1", "controller": true}]},
            "spec": {"containers": [{"name": "c"}], "nodeSelector": {"disk": "ssd"},
                     "tolerations": [{"key": "k", "operator": "Exists"}]},
        });
        let info = PodInfo::of(&pod);
        assert_eq!(info.owner.as_deref(), Some("rs-1"));
        assert_eq!(info.node_selector["disk"], "ssd");
        assert_eq!(info.tolerations[0].key.as_deref(), Some("k"));
    }
}
