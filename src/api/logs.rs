//! The `pods/{name}/log` subresource: which container, and who serves its lines.

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::mpsc;

use super::Api;
use super::error::{ApiError, ApiResult, Cause};
use super::kinds::PODS;

/// The query of a log request.
#[derive(Clone, Debug, Default)]
pub struct LogOptions {
    pub container: Option<String>,
    pub follow: bool,
    pub tail_lines: Option<usize>,
    pub since_seconds: Option<i64>,
    pub previous: bool,
    pub timestamps: bool,
}

impl LogOptions {
    /// Kubernetes' `ValidatePodLogOptions`.
    ///
    /// # Errors
    /// `Invalid` (a `PodLogOptions` of pod `name`) naming each bad field.
    pub fn validate(&self, name: &str) -> ApiResult<()> {
        let mut causes = Vec::new();
        if let Some(since) = self.since_seconds.filter(|s| *s < 1) {
            causes.push(Cause::invalid(
                "sinceSeconds",
                since,
                "must be greater than 0",
            ));
        }
        if causes.is_empty() {
            return Ok(());
        }
        Err(ApiError::Invalid {
            kind: "PodLogOptions".into(),
            name: name.into(),
            causes,
        })
    }
}

/// A node's log reader.
pub trait PodLogs: Send + Sync {
    /// Streams the log of `container` of `pod` as chunks of text, ending when the log is done
    /// (at once unless `follow`).
    ///
    /// # Errors
    /// `BadRequest` when the container has not started (or has no previous instance).
    fn open(
        &self,
        pod: &Value,
        container: &str,
        options: &LogOptions,
    ) -> ApiResult<mpsc::Receiver<Bytes>>;
}

impl Api {
    /// Opens the log of a pod's container, choosing the only container when none is named.
    pub fn pod_logs(
        &self,
        namespace: &str,
        name: &str,
        options: &LogOptions,
    ) -> ApiResult<mpsc::Receiver<Bytes>> {
        options.validate(name)?;
        let pod = self.get(&PODS, Some(namespace), name)?;
        let containers: Vec<&str> = ["initContainers", "containers"]
            .iter()
            .filter_map(|list| pod["spec"][list].as_array())
            .flatten()
            .filter_map(|c| c["name"].as_str())
            .collect();
        let app: Vec<&str> = pod["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str())
            .collect();
        let container = match options.container.as_deref() {
            Some(c) if containers.contains(&c) => c.to_string(),
            Some(c) => {
                return Err(ApiError::BadRequest(format!(
                    "container {c} is not valid for pod {name}"
                )));
            }
            None if app.len() == 1 => app[0].to_string(),
            None => {
                return Err(ApiError::BadRequest(format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    app.join(" ")
                )));
            }
        };
        let node = pod["spec"]["nodeName"].as_str().unwrap_or_default();
        let source = self.log_source(node).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "container \"{container}\" in pod \"{name}\" is waiting to start: the pod is not running on a node"
            ))
        })?;
        source.open(&pod, &container, options)
    }
}
