//! The scheduler: binds pending pods to a node.
//!
//! For now a cluster has one node (the one `up` starts), so every unbound pod goes to it; the
//! binding goes through `pods/{name}/binding` semantics (`spec.nodeName`), which stays the contract.

use serde_json::{Value, json};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

use crate::api::resources::PODS;
use crate::api::selectors::FieldSelector;
use crate::api::watch::follow;
use crate::api::{Api, ApiError, ListOptions, Part};
use crate::events::{EventType, Recorder};

/// Binds every pod without `spec.nodeName` to `node` until `shutdown`.
pub async fn run(api: Arc<Api>, node: String, shutdown: CancellationToken) {
    let recorder = Recorder::new(api.clone(), "default-scheduler", "");
    let options = ListOptions {
        fields: FieldSelector::parse("spec.nodeName=", "Pod").expect("static selector"),
        ..Default::default()
    };
    follow(&api, &PODS, options, &shutdown, |event| {
        if matches!(event.kind, "ADDED" | "MODIFIED") {
            bind(&api, &recorder, &event.object, &node);
        }
    })
    .await;
}

fn bind(api: &Api, recorder: &Recorder, pod: &Value, node: &str) {
    if pod["metadata"]["deletionTimestamp"].is_string() {
        return;
    }
    let (namespace, name) = (
        pod["metadata"]["namespace"].as_str(),
        pod["metadata"]["name"].as_str().unwrap_or_default(),
    );
    let mut bound = pod.clone();
    bound["spec"]["nodeName"] = json!(node);
    match api.update(&PODS, namespace, name, bound, Part::Main) {
        Ok(stored) => recorder.record(
            &stored,
            None,
            EventType::Normal,
            "Scheduled",
            &format!(
                "Successfully assigned {}/{name} to {node}",
                namespace.unwrap_or_default()
            ),
        ),
        Err(ApiError::Conflict { .. } | ApiError::NotFound { .. }) => {}
        Err(error) => tracing::warn!(%error, pod = name, "binding failed"),
    }
}
