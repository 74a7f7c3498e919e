//! A node's line to the API: the `Api` itself in process (`up`), or HTTPS (`agent --server`).
//!
//! Both go through the API server's one write path; the node code is written once against
//! this type and cannot tell them apart except by latency and by `ApiError::Unavailable`.

use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::api::kinds::Resource;
use crate::api::list_options::parse_resource_version;
use crate::api::objects::take_items;
use crate::api::selectors::FieldSelector;
use crate::api::watch::WatchEvent;
use crate::api::{Api, ApiError, ApiResult, DeleteOptions, ListOptions, Part};
use crate::client::{Client, ClientError, DeleteParams, ListParams, WatchEventType};

/// A stream of watch events; it ends when the watch does (the caller re-lists).
pub type EventStream = Pin<Box<dyn Stream<Item = ApiResult<WatchEvent>> + Send>>;

/// Where the API is.
#[derive(Clone)]
pub enum ControlPlane {
    InProcess(Arc<Api>),
    Remote(Box<Client>),
}

impl From<Arc<Api>> for ControlPlane {
    fn from(api: Arc<Api>) -> Self {
        ControlPlane::InProcess(api)
    }
}

impl ControlPlane {
    /// The component imported under `name` into the control plane's image store, for a
    /// joined node that lacks it; `None` when there is none, or in process, where the node
    /// shares the control plane's store.
    pub async fn fetch_image(&self, name: &str) -> ApiResult<Option<bytes::Bytes>> {
        let ControlPlane::Remote(client) = self else {
            return Ok(None);
        };
        let path = format!("{}/{name}", crate::api::images::IMAGES_PATH);
        match client
            .send(http::Method::GET, &path, None, Default::default())
            .await
        {
            Ok(component) => Ok(Some(component)),
            Err(ClientError::Api(status)) if status.code == 404 => Ok(None),
            Err(error) => Err(ApiError::Unavailable(error.to_string())),
        }
    }

    pub async fn get(
        &self,
        resource: &'static Resource,
        namespace: Option<&str>,
        name: &str,
    ) -> ApiResult<Value> {
        match self {
            ControlPlane::InProcess(api) => api.get(resource, namespace, name),
            ControlPlane::Remote(client) => client
                .get(&resource.path(namespace, Some(name)))
                .await
                .map_err(|e| api_error(resource, name, e)),
        }
    }

    pub async fn create(
        &self,
        resource: &'static Resource,
        namespace: Option<&str>,
        object: Value,
    ) -> ApiResult<Value> {
        match self {
            ControlPlane::InProcess(api) => api.create(resource, namespace, object),
            ControlPlane::Remote(client) => {
                let name = object["metadata"]["name"].as_str().unwrap_or_default();
                client
                    .create(&resource.path(namespace, None), &object)
                    .await
                    .map_err(|e| api_error(resource, name, e))
            }
        }
    }

    /// Replaces the object, or only its status with `Part::Status`.
    pub async fn update(
        &self,
        resource: &'static Resource,
        namespace: Option<&str>,
        name: &str,
        object: Value,
        part: Part,
    ) -> ApiResult<Value> {
        match self {
            ControlPlane::InProcess(api) => api.update(resource, namespace, name, object, part),
            ControlPlane::Remote(client) => {
                let mut path = resource.path(namespace, Some(name));
                if part == Part::Status {
                    path.push_str("/status");
                }
                client
                    .replace(&path, &object)
                    .await
                    .map_err(|e| api_error(resource, name, e))
            }
        }
    }

    pub async fn delete(
        &self,
        resource: &'static Resource,
        namespace: Option<&str>,
        name: &str,
        options: &DeleteOptions,
    ) -> ApiResult<Value> {
        match self {
            ControlPlane::InProcess(api) => api.delete(resource, namespace, name, options),
            ControlPlane::Remote(client) => {
                let params = DeleteParams {
                    grace_period_seconds: options.grace_period_seconds,
                    precondition_uid: options.precondition_uid.clone(),
                    ..Default::default()
                };
                client
                    .delete(&resource.path(namespace, Some(name)), &params)
                    .await
                    .map_err(|e| api_error(resource, name, e))
            }
        }
    }

    /// The objects (of every namespace) matching a field selector, and the list's
    /// resourceVersion to watch from.
    pub async fn list(
        &self,
        resource: &'static Resource,
        fields: &str,
    ) -> ApiResult<(Vec<Value>, String)> {
        let mut list = match self {
            ControlPlane::InProcess(api) => {
                api.list(resource, None, &options(resource, fields)?)?
            }
            ControlPlane::Remote(client) => client
                .list(&resource.path(None, None), &ListParams::fields(fields))
                .await
                .map_err(|e| api_error(resource, "", e))?,
        };
        let version = list["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        Ok((take_items(&mut list), version))
    }

    /// Watches objects matching a field selector after `resource_version` (from a `list`).
    pub async fn watch(
        &self,
        resource: &'static Resource,
        fields: &str,
        resource_version: &str,
        shutdown: &CancellationToken,
    ) -> ApiResult<EventStream> {
        match self {
            ControlPlane::InProcess(api) => {
                let mut options = options(resource, fields)?;
                options.resource_version = parse_resource_version(Some(resource_version))?;
                let events = api.watch(resource, None, options, None, shutdown.child_token())?;
                Ok(Box::pin(futures::stream::unfold(
                    events,
                    |mut events| async move { events.recv().await.map(|e| (Ok(e), events)) },
                )))
            }
            ControlPlane::Remote(client) => {
                let events = client
                    .watch(
                        &resource.path(None, None),
                        &ListParams::fields(fields),
                        Some(resource_version),
                    )
                    .await
                    .map_err(|e| api_error(resource, "", e))?;
                Ok(Box::pin(events.filter_map(move |event| {
                    futures::future::ready(match event {
                        Ok(event) => watch_event(event.event_type, event.object).map(Ok),
                        Err(error) => Some(Err(api_error(resource, "", error))),
                    })
                })))
            }
        }
    }
}

fn options(resource: &Resource, fields: &str) -> ApiResult<ListOptions> {
    Ok(ListOptions {
        fields: FieldSelector::parse(fields, resource)?,
        ..Default::default()
    })
}

fn watch_event(kind: WatchEventType, object: Value) -> Option<WatchEvent> {
    let kind = match kind {
        WatchEventType::Added => "ADDED",
        WatchEventType::Modified => "MODIFIED",
        WatchEventType::Deleted => "DELETED",
        WatchEventType::Bookmark => return None,
    };
    Some(WatchEvent { kind, object })
}

/// The server's answer as the `ApiError` the in-process API would have returned; a transport
/// failure is `Unavailable`.
fn api_error(resource: &Resource, name: &str, error: ClientError) -> ApiError {
    let status = match error {
        ClientError::Api(status) => status,
        other => return ApiError::Unavailable(other.to_string()),
    };
    let (resource, name) = (resource.qualified(), name.to_string());
    match (status.code, status.reason.as_str()) {
        (404, _) => ApiError::NotFound { resource, name },
        (409, "AlreadyExists") => ApiError::AlreadyExists { resource, name },
        (409, _) => ApiError::Conflict { resource, name },
        (410, _) => ApiError::Gone {
            requested: 0,
            oldest: 0,
        },
        (400, _) => ApiError::BadRequest(status.message),
        (401, _) => ApiError::Unauthorized,
        (403, _) => ApiError::Forbidden(status.message),
        (code, _) if code >= 500 => ApiError::Unavailable(status.message),
        _ => ApiError::Internal(status.message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Status;

    fn status(code: u16, reason: &str) -> ClientError {
        ClientError::Api(Box::new(Status {
            code,
            reason: reason.into(),
            message: "m".into(),
            ..Default::default()
        }))
    }

    #[test]
    fn server_answers_map_onto_the_errors_of_the_in_process_api() {
        let pods = &crate::api::kinds::PODS;
        assert!(matches!(
            api_error(pods, "p", status(404, "NotFound")),
            ApiError::NotFound { .. }
        ));
        assert!(matches!(
            api_error(pods, "p", status(409, "AlreadyExists")),
            ApiError::AlreadyExists { .. }
        ));
        assert!(matches!(
            api_error(pods, "p", status(409, "Conflict")),
            ApiError::Conflict { .. }
        ));
        assert_eq!(api_error(pods, "p", status(410, "Expired")).code(), 410);
        assert_eq!(
            api_error(pods, "p", status(503, "ServiceUnavailable")).code(),
            503
        );
        let refused = ClientError::ConnectionRefused {
            server: "https://127.0.0.1:1".into(),
        };
        assert!(matches!(
            api_error(pods, "p", refused),
            ApiError::Unavailable(_)
        ));
    }
}
