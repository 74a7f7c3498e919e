//! The `scale` subresource: an autoscaling/v1 `Scale` view of a workload's `spec.replicas`,
//! which is what `kubectl scale` and autoscalers read and write.

use http::{Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector as K8sLabelSelector;
use serde_json::{Value, json};

use super::Api;
use super::error::{ApiError, ApiResult, Cause};
use super::kinds::Resource;
use super::objects::Part;
use super::patch::{self, PatchType};
use super::selectors::LabelSelector;
use super::server::{self, Body, Context};
use super::types::Types;
use super::write::WriteOptions;

/// `GET`, `PUT` and `PATCH` of `{resource}/{name}/scale`, for the kinds that serve it (their
/// `spec.replicas`, `spec.selector` and `status.replicas` have the ReplicaSet shape).
pub async fn serve(
    request: Request<Incoming>,
    context: &Context,
    resource: &'static Resource,
    namespace: Option<&str>,
    name: &str,
) -> ApiResult<Response<Body>> {
    let api = &context.api;
    let scale = match *request.method() {
        Method::GET => get(api, resource, namespace, name)?,
        Method::PUT => {
            let body = server::read_object(request).await?;
            update(api, resource, namespace, name, &body)?
        }
        Method::PATCH => {
            let (patch_type, body) = read_patch(request).await?;
            patch(api, resource, namespace, name, &body, patch_type)?
        }
        _ => return Err(ApiError::MethodNotAllowed),
    };
    Ok(server::json(StatusCode::OK, &scale))
}

/// The body of a PATCH and the patch type its `Content-Type` names.
async fn read_patch(mut request: Request<Incoming>) -> ApiResult<(PatchType, Value)> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let patch_type = PatchType::from_content_type(content_type.unwrap_or(""))?;
    request.headers_mut().insert(
        header::CONTENT_TYPE,
        "application/json".parse().expect("static"),
    );
    Ok((patch_type, server::read_object(request).await?))
}

/// The Scale of the object.
///
/// # Errors
/// 404 when the object does not exist.
pub fn get(
    api: &Api,
    resource: &Resource,
    namespace: Option<&str>,
    name: &str,
) -> ApiResult<Value> {
    Ok(scale_of(resource, &api.get(resource, namespace, name)?))
}

/// Sets `spec.replicas` from a Scale; its `metadata.resourceVersion`, when given, must be the
/// object's.
///
/// # Errors
/// 400 for a body that is not a Scale, 422 for negative replicas, 409 for a stale
/// resourceVersion, 404 when the object does not exist.
pub fn update(
    api: &Api,
    resource: &Resource,
    namespace: Option<&str>,
    name: &str,
    body: &Value,
) -> ApiResult<Value> {
    let scale: Scale = serde_path_to_error::deserialize(body).map_err(|error| {
        ApiError::BadRequest(format!(
            "Scale in version \"v1\" cannot be handled as a Scale: {}: {}",
            error.path(),
            error.inner()
        ))
    })?;
    let replicas = scale.spec.and_then(|s| s.replicas).unwrap_or(0);
    if replicas < 0 {
        return Err(ApiError::Invalid {
            kind: "Scale".into(),
            name: name.into(),
            causes: vec![Cause::invalid(
                "spec.replicas",
                replicas,
                "must be greater than or equal to 0",
            )],
        });
    }
    let expected = scale.metadata.resource_version.filter(|rv| !rv.is_empty());
    let pinned = expected.is_some();
    let paths = resource.strategy.scale_paths();
    let target = (resource, namespace, name, Part::Main);
    let updated = api.update_retrying(target, pinned, &WriteOptions::default(), |object| {
        if let Some(expected) = &expected {
            object["metadata"]["resourceVersion"] = json!(expected);
        }
        set(object, &paths.spec_replicas, json!(replicas));
        Ok(())
    })?;
    Ok(scale_of(resource, &updated.object))
}

/// Applies a merge patch to the Scale, then updates as `update` does (checking the version
/// only when the patch names one).
///
/// # Errors
/// As `update`.
pub fn patch(
    api: &Api,
    resource: &Resource,
    namespace: Option<&str>,
    name: &str,
    body: &Value,
    patch_type: PatchType,
) -> ApiResult<Value> {
    let mut scale = get(api, resource, namespace, name)?;
    if body.pointer("/metadata/resourceVersion").is_none() {
        scale["metadata"]
            .as_object_mut()
            .map(|m| m.remove("resourceVersion"));
    }
    let message = Types::get().message("k8s.io.api.autoscaling.v1.Scale");
    patch::apply(&mut scale, body, patch_type, message)?;
    update(api, resource, namespace, name, &scale)
}

/// Writes `value` at `pointer`, making the objects on the way.
fn set(object: &mut Value, pointer: &str, value: Value) {
    let mut slot = object;
    for key in pointer.trim_start_matches('/').split('/') {
        if !slot.is_object() {
            *slot = json!({});
        }
        slot = &mut slot[key];
    }
    *slot = value;
}

fn scale_of(resource: &Resource, object: &Value) -> Value {
    let paths = resource.strategy.scale_paths();
    let count = |pointer: &str| object.pointer(pointer).and_then(Value::as_i64).unwrap_or(0);
    let selector = match paths
        .label_selector
        .and_then(|p| object.pointer(&p).cloned())
    {
        Some(Value::String(text)) => text,
        Some(selector) => serde_json::from_value::<K8sLabelSelector>(selector)
            .ok()
            .and_then(|s| LabelSelector::from_k8s(&s).ok())
            .map(|s| s.to_string())
            .unwrap_or_default(),
        None => String::new(),
    };
    let metadata = &object["metadata"];
    let mut kept = serde_json::Map::new();
    for field in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(value) = metadata.get(field) {
            kept.insert(field.into(), value.clone());
        }
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": kept,
        "spec": {"replicas": count(&paths.spec_replicas)},
        "status": {"replicas": count(&paths.status_replicas), "selector": selector},
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::kinds::{PODS, REPLICA_SETS};
    use std::sync::Arc;

    fn api_with_replica_set() -> (tempfile::TempDir, Arc<Api>) {
        let (dir, api) = Api::scratch();
        let rs = json!({"metadata": {"name": "web"}, "spec": {"replicas": 2,
            "selector": {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "Exists"}]},
            "template": {"metadata": {"labels": {"app": "web", "tier": "a"}},
                         "spec": {"containers": [{"name": "c", "image": "c.wasm"}]}}}});
        api.create(&REPLICA_SETS, Some("default"), rs).unwrap();
        (dir, api)
    }

    #[test]
    fn scale_reports_replicas_and_the_selector_as_text() {
        let (_dir, api) = api_with_replica_set();
        let scale = get(&api, &REPLICA_SETS, Some("default"), "web").unwrap();
        assert_eq!(scale["kind"], "Scale");
        assert_eq!(scale["spec"]["replicas"], 2);
        assert_eq!(
            scale["status"],
            json!({"replicas": 0, "selector": "app=web,tier"})
        );
    }

    #[test]
    fn patching_the_scale_sets_spec_replicas_and_bumps_the_generation() {
        let (_dir, api) = api_with_replica_set();
        let body = json!({"spec": {"replicas": 5}});
        let scale = patch(
            &api,
            &REPLICA_SETS,
            Some("default"),
            "web",
            &body,
            PatchType::Merge,
        )
        .unwrap();
        assert_eq!(scale["spec"]["replicas"], 5);
        let rs = api.get(&REPLICA_SETS, Some("default"), "web").unwrap();
        assert_eq!(rs["spec"]["replicas"], 5);
        assert_eq!(rs["metadata"]["generation"], 2);
    }

    #[test]
    fn a_stale_resource_version_or_negative_replicas_is_refused() {
        let (_dir, api) = api_with_replica_set();
        let stale =
            json!({"metadata": {"name": "web", "resourceVersion": "1"}, "spec": {"replicas": 3}});
        assert_eq!(
            update(&api, &REPLICA_SETS, Some("default"), "web", &stale)
                .unwrap_err()
                .code(),
            409
        );
        let negative = json!({"metadata": {"name": "web"}, "spec": {"replicas": -1}});
        let error = update(&api, &REPLICA_SETS, Some("default"), "web", &negative).unwrap_err();
        assert_eq!(error.code(), 422);
        assert!(error.to_string().contains("spec.replicas"), "{error}");
        assert!(!PODS.serves(crate::api::kinds::Subresource::Scale));
    }
}
