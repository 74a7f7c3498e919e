//! The `pods/{name}/eviction` subresource (`policy/v1` Eviction), which `kubectl drain` uses.
//!
//! With no PodDisruptionBudgets to consult, an eviction is a graceful delete of the pod
//! that honours the Eviction's `deleteOptions`.

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use k8s_openapi::api::policy::v1::Eviction;
use serde_json::{Value, json};

use super::Api;
use super::error::{ApiError, ApiResult};
use super::kinds::PODS;
use super::objects::DeleteOptions;
use super::server::{self, Body, Context};

/// `POST` of `pods/{name}/eviction`: 201 with a `Status` of Success once the pod is
/// being deleted.
pub async fn serve(
    request: Request<Incoming>,
    context: &Context,
    namespace: Option<&str>,
    name: &str,
) -> ApiResult<Response<Body>> {
    if request.method() != Method::POST {
        return Err(ApiError::MethodNotAllowed);
    }
    let body = server::read_object(request).await?;
    evict(&context.api, namespace.unwrap_or_default(), name, &body)?;
    Ok(server::json(
        StatusCode::CREATED,
        &json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Success", "code": 201,
        }),
    ))
}

/// Evicts pod `name` as the Eviction `body` asks.
///
/// # Errors
/// 400 for a body that is not an Eviction of this pod, 404 when the pod does not exist,
/// 409 when a precondition of its `deleteOptions` fails.
pub fn evict(api: &Api, namespace: &str, name: &str, body: &Value) -> ApiResult<()> {
    let options = read_eviction(namespace, name, body)?;
    api.delete(&PODS, Some(namespace), name, &options)?;
    Ok(())
}

/// Checks that `body` is an Eviction of pod `namespace/name` and reads its deleteOptions.
fn read_eviction(namespace: &str, name: &str, body: &Value) -> ApiResult<DeleteOptions> {
    let api_version = body["apiVersion"].as_str().unwrap_or_default();
    if !matches!(api_version, "" | "policy/v1" | "policy/v1beta1") {
        return Err(invalid("apiVersion", api_version, "must be policy/v1"));
    }
    let kind = body["kind"].as_str().unwrap_or_default();
    if !matches!(kind, "" | "Eviction") {
        return Err(invalid("kind", kind, "must be Eviction"));
    }
    let eviction: Eviction = serde_path_to_error::deserialize(body).map_err(|error| {
        ApiError::BadRequest(format!(
            "Eviction in version \"v1\" cannot be handled as a Eviction: {}: {}",
            error.path(),
            error.inner()
        ))
    })?;
    let body_name = eviction.metadata.name.as_deref().unwrap_or_default();
    if body_name != name {
        return Err(invalid(
            "metadata.name",
            body_name,
            "name in URL does not match name in Eviction object",
        ));
    }
    let body_namespace = eviction.metadata.namespace.as_deref().unwrap_or(namespace);
    if body_namespace != namespace {
        return Err(invalid(
            "metadata.namespace",
            body_namespace,
            "namespace in URL does not match namespace in Eviction object",
        ));
    }
    let delete_options = body.get("deleteOptions").unwrap_or(&Value::Null);
    // Nothing here knows how to evict without evicting: refuse rather than delete the pod
    // of a `kubectl drain --dry-run=server`.
    if let Some(dry_run) = delete_options["dryRun"]
        .as_array()
        .filter(|d| !d.is_empty())
    {
        let value = Value::Array(dry_run.clone()).to_string();
        return Err(invalid(
            "deleteOptions.dryRun",
            &value,
            "dry run is not supported",
        ));
    }
    DeleteOptions::from_body(delete_options)
}

fn invalid(field: &str, value: &str, why: &str) -> ApiError {
    ApiError::BadRequest(format!("{field}: Invalid value: {value:?}: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eviction(name: &str, delete_options: Value) -> Value {
        json!({
            "apiVersion": "policy/v1", "kind": "Eviction",
            "metadata": {"name": name, "namespace": "default"},
            "deleteOptions": delete_options,
        })
    }

    #[test]
    fn delete_options_of_the_eviction_are_honoured() {
        let body = eviction(
            "web",
            json!({"gracePeriodSeconds": 5, "preconditions": {"uid": "u1"}}),
        );
        let options = read_eviction("default", "web", &body).unwrap();
        assert_eq!(options.grace_period_seconds, Some(5));
        assert_eq!(options.precondition_uid.as_deref(), Some("u1"));
        let bare = json!({"metadata": {"name": "web"}});
        assert_eq!(
            read_eviction("default", "web", &bare)
                .unwrap()
                .grace_period_seconds,
            None
        );
    }

    #[test]
    fn malformed_evictions_name_the_field() {
        let cases = [
            (eviction("other", Value::Null), "metadata.name"),
            (
                json!({"metadata": {"name": "web", "namespace": "team"}}),
                "metadata.namespace",
            ),
            (json!({"kind": "Pod", "metadata": {"name": "web"}}), "kind"),
            (
                eviction("web", json!({"gracePeriodSeconds": "soon"})),
                "deleteOptions.gracePeriodSeconds",
            ),
            (
                eviction("web", json!({"dryRun": ["All"]})),
                "deleteOptions.dryRun",
            ),
        ];
        for (body, field) in cases {
            let error = read_eviction("default", "web", &body).unwrap_err();
            assert_eq!(error.code(), 400, "{body}");
            assert!(error.to_string().contains(field), "{error} for {body}");
        }
    }
}
