//! The `pods/{name}/log` subresource: which container, and who serves its lines — the node
//! in this process, or the node's own endpoint over HTTPS (`kubelet_client`).

use bytes::Bytes;
use futures::future::BoxFuture;
use serde_json::Value;
use tokio::sync::mpsc;

use super::Api;
use super::error::{ApiError, ApiResult, Cause};
use super::kinds::{NODES, PODS};
use super::routes::{flag, param};

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
    /// The options of a `pods/log` request's query (`container`, `follow`, `tailLines`,
    /// `sinceSeconds`, `previous`, `timestamps`).
    ///
    /// # Errors
    /// `BadRequest` for a number that does not parse, `Invalid` for a negative `tailLines`.
    pub fn from_query(pod: &str, query: &[(String, String)]) -> ApiResult<LogOptions> {
        let number = |name: &str| -> ApiResult<Option<i64>> {
            param(query, name)
                .map(|v| {
                    v.parse::<i64>()
                        .map_err(|_| ApiError::BadRequest(format!("{name}: invalid value {v:?}")))
                })
                .transpose()
        };
        let tail_lines = number("tailLines")?;
        if let Some(tail) = tail_lines.filter(|t| *t < 0) {
            let cause = Cause::invalid("tailLines", tail, "must be greater than or equal to 0");
            return Err(ApiError::Invalid {
                kind: "PodLogOptions".into(),
                name: pod.into(),
                causes: vec![cause],
            });
        }
        Ok(LogOptions {
            container: param(query, "container").map(str::to_string),
            follow: flag(query, "follow"),
            tail_lines: tail_lines.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            since_seconds: number("sinceSeconds")?,
            previous: flag(query, "previous"),
            timestamps: flag(query, "timestamps"),
        })
    }

    /// The query [`LogOptions::from_query`] reads back (the container goes in the path).
    pub fn to_query(&self) -> String {
        let mut query = Vec::new();
        for (name, set) in [
            ("follow", self.follow),
            ("previous", self.previous),
            ("timestamps", self.timestamps),
        ] {
            if set {
                query.push(format!("{name}=true"));
            }
        }
        if let Some(tail) = self.tail_lines {
            query.push(format!("tailLines={tail}"));
        }
        if let Some(since) = self.since_seconds {
            query.push(format!("sinceSeconds={since}"));
        }
        query.join("&")
    }

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

/// A node's log reader: the node in this process, or the client of a node's endpoint.
pub trait PodLogs: Send + Sync {
    /// Streams the log of `container` of `pod` as chunks of text, ending when the log is done
    /// (at once unless `follow`).
    ///
    /// # Errors
    /// `BadRequest` when the container has not started (or has no previous instance).
    fn open<'a>(
        &'a self,
        pod: &'a Value,
        container: &'a str,
        options: &'a LogOptions,
    ) -> BoxFuture<'a, ApiResult<mpsc::Receiver<Bytes>>>;
}

impl Api {
    /// Opens the log of a pod's container, choosing the only container when none is named:
    /// from the node in this process when the pod runs there, else from the pod's node over
    /// HTTPS.
    pub async fn pod_logs(
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
        let not_on_a_node = || {
            ApiError::BadRequest(format!(
                "container \"{container}\" in pod \"{name}\" is waiting to start: the pod is not running on a node"
            ))
        };
        if node.is_empty() {
            return Err(not_on_a_node());
        }
        if let Some(local) = self.log_source(node) {
            return local.open(&pod, &container, options).await;
        }
        let node = match self.get(&NODES, None, node) {
            Ok(node) => node,
            Err(ApiError::NotFound { .. }) => return Err(not_on_a_node()),
            Err(error) => return Err(error),
        };
        let client = self.kubelet_client().ok_or_else(not_on_a_node)?;
        client
            .container_logs(&node, &pod, &container, options)
            .await
    }
}
