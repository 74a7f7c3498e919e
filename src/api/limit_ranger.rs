//! LimitRanger, the admission step Kubernetes runs on a new pod: containers get the `default`
//! limits and `defaultRequest` requests of their namespace's LimitRanges (type `Container`)
//! for the resources they leave unset, and the pod says so in its
//! `kubernetes.io/limit-ranger` annotation. It runs before the pod's own defaults, so the QoS
//! class reflects what was filled in.

use serde_json::{Map, Value, json};

use super::Api;
use super::error::{ApiError, ApiResult};
use super::kinds::LIMIT_RANGES;

const ANNOTATION: &str = "kubernetes.io/limit-ranger";

impl Api {
    /// Fills the defaults of `namespace`'s LimitRanges into the pod `pod` (as sent).
    ///
    /// # Errors
    /// When the store cannot list the LimitRanges.
    pub(super) fn apply_limit_ranges(&self, namespace: &str, pod: &mut Value) -> ApiResult<()> {
        let listing = self
            .store
            .list(&LIMIT_RANGES.key(Some(namespace), None))
            .map_err(|e| ApiError::from_store(e, LIMIT_RANGES.plural, ""))?;
        let items: Vec<Value> = listing
            .entries
            .into_iter()
            .flat_map(|entry| match entry.value.pointer("/spec/limits") {
                Some(Value::Array(items)) => items.clone(),
                _ => Vec::new(),
            })
            .filter(|item| item["type"] == "Container")
            .collect();
        apply(&items, pod);
        Ok(())
    }
}

/// Fills `items`' defaults into every container of `pod` (a pod whose shape is wrong is left
/// for validation to refuse).
fn apply(items: &[Value], pod: &mut Value) {
    let mut said = Vec::new();
    for (list, kind) in [
        ("initContainers", "init container"),
        ("containers", "container"),
    ] {
        let Some(containers) = pod
            .pointer_mut(&format!("/spec/{list}"))
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        for container in containers.iter_mut().filter(|c| c.is_object()) {
            said.extend(fill_container(items, container, kind));
        }
    }
    if said.is_empty() {
        return;
    }
    let metadata = &mut pod["metadata"];
    if !metadata["annotations"].is_object() {
        metadata["annotations"] = json!({});
    }
    metadata["annotations"][ANNOTATION] =
        json!(format!("LimitRanger plugin set: {}", said.join("; ")));
}

/// Fills one container (`kind` is `container` or `init container`); returns what was set, as
/// the annotation says it (`cpu, memory request for container web`).
fn fill_container(items: &[Value], container: &mut Value, kind: &str) -> Vec<String> {
    let name = container["name"].as_str().unwrap_or_default().to_string();
    if !container["resources"].is_object() {
        container["resources"] = json!({});
    }
    let resources = container["resources"]
        .as_object_mut()
        .expect("made an object");
    let mut limits = take_map(resources, "limits");
    let mut requests = take_map(resources, "requests");
    let (mut set_limits, mut set_requests) = (Vec::new(), Vec::new());
    for item in items {
        for (resource, value) in item["default"].as_object().into_iter().flatten() {
            if !limits.contains_key(resource) {
                limits.insert(resource.clone(), value.clone());
                set_limits.push(resource.clone());
            }
        }
        for (resource, value) in item["defaultRequest"].as_object().into_iter().flatten() {
            if !requests.contains_key(resource) {
                // A container that names its limit and not its request requests its limit,
                // as Kubernetes' pod defaults have it.
                let own_limit = limits
                    .get(resource)
                    .filter(|_| !set_limits.contains(resource));
                requests.insert(resource.clone(), own_limit.unwrap_or(value).clone());
                set_requests.push(resource.clone());
            }
        }
    }
    for (key, map) in [("limits", limits), ("requests", requests)] {
        if !map.is_empty() {
            resources.insert(key.into(), Value::Object(map));
        }
    }
    let mut said = Vec::new();
    for (what, mut set) in [("request", set_requests), ("limit", set_limits)] {
        if !set.is_empty() {
            set.sort();
            said.push(format!("{} {what} for {kind} {name}", set.join(", ")));
        }
    }
    said
}

fn take_map(resources: &mut Map<String, Value>, key: &str) -> Map<String, Value> {
    match resources.remove(key) {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(containers: Value) -> Value {
        json!({"metadata": {"name": "p"}, "spec": {"containers": containers}})
    }

    fn items() -> Vec<Value> {
        vec![json!({"type": "Container",
            "default": {"memory": "256Mi", "cpu": "500m"},
            "defaultRequest": {"memory": "128Mi", "cpu": "100m"}})]
    }

    #[test]
    fn containers_get_the_defaults_they_leave_unset_and_the_pod_says_so() {
        let mut pod = pod(json!([
            {"name": "web"},
            {"name": "side", "resources": {"limits": {"memory": "1Gi"}}},
        ]));
        apply(&items(), &mut pod);
        let web = &pod["spec"]["containers"][0]["resources"];
        assert_eq!(web["limits"], json!({"cpu": "500m", "memory": "256Mi"}));
        assert_eq!(web["requests"], json!({"cpu": "100m", "memory": "128Mi"}));
        let side = &pod["spec"]["containers"][1]["resources"];
        assert_eq!(
            side["limits"]["memory"], "1Gi",
            "a limit the container names stays"
        );
        assert_eq!(side["requests"]["memory"], "1Gi", "and is what it requests");
        assert_eq!(
            pod["metadata"]["annotations"][ANNOTATION],
            "LimitRanger plugin set: cpu, memory request for container web; cpu, memory limit for container web; \
             cpu, memory request for container side; cpu limit for container side"
        );
    }

    #[test]
    fn a_pod_without_defaults_to_take_is_left_as_it_was() {
        let mut pod = pod(json!([{"name": "c", "resources": {
            "limits": {"memory": "1Gi", "cpu": "1"}, "requests": {"memory": "1Gi", "cpu": "1"}}}]));
        let before = pod.clone();
        apply(&items(), &mut pod);
        assert_eq!(pod, before);
        let mut malformed = json!({"spec": {"containers": "nope"}});
        apply(&items(), &mut malformed);
        assert_eq!(malformed, json!({"spec": {"containers": "nope"}}));
    }
}
