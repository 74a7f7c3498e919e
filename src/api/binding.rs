//! The `pods/{name}/binding` subresource: the one way a pod gets its node, for HTTP clients and
//! the in-process scheduler alike.

use serde_json::{Value, json};

use super::Api;
use super::error::{ApiError, ApiResult, Cause};
use super::kinds::PODS;
use super::objects::{Part, now};

/// Binds the pod to the node a `Binding` body names in `target.name`.
///
/// # Errors
/// 422 without a target; otherwise as `Api::bind_pod`.
pub fn bind(api: &Api, namespace: Option<&str>, name: &str, binding: &Value) -> ApiResult<Value> {
    let node = binding
        .pointer("/target/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::Invalid {
            kind: "Binding".into(),
            name: name.into(),
            causes: vec![Cause::required("target.name")],
        })?;
    api.bind_pod(namespace, name, node)
}

impl Api {
    /// Sets the pod's `spec.nodeName`, once. As Kubernetes' binding does, a `PodScheduled`
    /// condition the scheduler had set to `False` turns `True` (a second, status, write; a pod
    /// bound at its first attempt has none, and its node agent reports the condition).
    /// Returns the stored pod.
    ///
    /// # Errors
    /// 404 when the pod is gone, 409 when it is already bound (or changed meanwhile).
    pub fn bind_pod(&self, namespace: Option<&str>, name: &str, node: &str) -> ApiResult<Value> {
        let mut pod = self.get(&PODS, namespace, name)?;
        if pod
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty())
        {
            return Err(ApiError::Conflict {
                resource: "pods".into(),
                name: name.into(),
            });
        }
        pod["spec"]["nodeName"] = json!(node);
        let mut bound = self.update(&PODS, namespace, name, pod, Part::Main)?;
        let Some(conditions) = bound
            .pointer_mut("/status/conditions")
            .and_then(Value::as_array_mut)
        else {
            return Ok(bound);
        };
        let Some(scheduled) = conditions
            .iter_mut()
            .find(|c| c["type"] == "PodScheduled" && c["status"] != "True")
        else {
            return Ok(bound);
        };
        *scheduled = json!({"type": "PodScheduled", "status": "True", "lastTransitionTime": now()});
        self.update(&PODS, namespace, name, bound, Part::Status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn api_with_pod() -> (tempfile::TempDir, Arc<Api>) {
        let (dir, api) = Api::scratch();
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "c.wasm"}]}});
        api.create(&PODS, Some("default"), pod).unwrap();
        (dir, api)
    }

    #[test]
    fn a_pod_is_bound_once() {
        let (_dir, api) = api_with_pod();
        let binding = json!({"target": {"kind": "Node", "name": "n1"}});
        let bound = bind(&api, Some("default"), "p", &binding).unwrap();
        assert_eq!(bound["spec"]["nodeName"], "n1");
        assert!(matches!(
            api.bind_pod(Some("default"), "p", "n2"),
            Err(ApiError::Conflict { .. })
        ));
        assert!(matches!(
            bind(&api, Some("default"), "p", &json!({})),
            Err(ApiError::Invalid { .. })
        ));
    }

    #[test]
    fn binding_turns_an_unschedulable_condition_true() {
        let (_dir, api) = api_with_pod();
        let mut pod = api.get(&PODS, Some("default"), "p").unwrap();
        pod["status"]["conditions"] = json!([{"type": "PodScheduled", "status": "False",
            "reason": "Unschedulable", "message": "0/1 nodes are available: 1 Too many pods."}]);
        api.update(&PODS, Some("default"), "p", pod, Part::Status)
            .unwrap();
        let bound = api.bind_pod(Some("default"), "p", "n1").unwrap();
        assert_eq!(bound["spec"]["nodeName"], "n1");
        let condition = &bound["status"]["conditions"][0];
        assert_eq!(condition["status"], "True");
        assert!(condition["reason"].is_null());
    }
}
