//! The namespace controller: empties a terminating namespace, then removes it.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::api::kinds::NAMESPACES;
use crate::api::watch::follow;
use crate::api::{Api, ApiError, DeleteOptions, ListOptions, Part};

/// How often a namespace still holding objects is looked at again.
const RECHECK: Duration = Duration::from_millis(200);

pub async fn run(api: Arc<Api>, shutdown: CancellationToken) {
    follow(
        &api,
        &NAMESPACES,
        ListOptions::default(),
        &shutdown,
        |event| {
            if event.kind != "DELETED" && event.object["metadata"]["deletionTimestamp"].is_string()
            {
                let name = event.object["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                tokio::spawn(finalize(api.clone(), name, shutdown.clone()));
            }
        },
    )
    .await;
}

/// Deletes everything in the namespace until it is empty, then the namespace itself.
///
/// Idempotent: several runs for one namespace only repeat deletes that answer NotFound.
async fn finalize(api: Arc<Api>, namespace: String, shutdown: CancellationToken) {
    loop {
        match delete_contents(&api, &namespace) {
            Ok(0) => break,
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, namespace, "emptying namespace failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(RECHECK) => {}
            _ = shutdown.cancelled() => return,
        }
    }
    let Ok(mut object) = api.get(&NAMESPACES, None, &namespace) else {
        return;
    };
    if let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) {
        spec.remove("finalizers");
    }
    if let Err(error) = api.update(&NAMESPACES, None, &namespace, object, Part::Main) {
        tracing::warn!(%error, namespace, "clearing namespace finalizers failed");
    }
    match api.delete(&NAMESPACES, None, &namespace, &DeleteOptions::default()) {
        Ok(_) | Err(ApiError::NotFound { .. }) => {}
        Err(error) => tracing::warn!(%error, namespace, "removing namespace failed"),
    }
}

/// Asks every object in the namespace to go; returns how many are still there.
fn delete_contents(api: &Api, namespace: &str) -> Result<usize, ApiError> {
    let mut remaining = 0;
    for resource in api.registry().all().into_iter().filter(|r| r.namespaced) {
        let list = api.list(resource, Some(namespace), &ListOptions::default())?;
        for item in list["items"].as_array().into_iter().flatten() {
            remaining += 1;
            let name = item["metadata"]["name"].as_str().unwrap_or_default();
            if item["metadata"]["deletionTimestamp"].is_string() {
                continue;
            }
            match api.delete(resource, Some(namespace), name, &DeleteOptions::default()) {
                Ok(_) | Err(ApiError::NotFound { .. }) => {}
                Err(error) => return Err(error),
            }
        }
    }
    Ok(remaining)
}
