//! The node agent: registers the Node, heartbeats, and keeps a worker per pod bound here.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::eviction::{self, NodePods, PodOnDisk};
use super::logs::LogLine;
use super::pod_worker::{self, PodHandle, Stop};
use super::{NodeContext, heartbeat};
use crate::api::kinds::PODS;
use crate::api::logs::{LogOptions, PodLogs};
use crate::api::{ApiError, ApiResult};
use crate::client::control_plane::ControlPlane;

/// A running node agent.
pub struct Agent {
    node: Arc<NodeContext>,
    pods: Mutex<HashMap<String, PodHandle>>,
}

/// Waits between attempts to reach the API server, doubling up to the cap.
const RESYNC_DELAY: (Duration, Duration) = (Duration::from_millis(200), Duration::from_secs(2));

impl Agent {
    /// Registers the node, then runs its heartbeats and pod loop until `shutdown`.
    ///
    /// # Errors
    /// When the Node object cannot be written.
    pub async fn start(
        node: Arc<NodeContext>,
        shutdown: CancellationToken,
    ) -> ApiResult<Arc<Agent>> {
        heartbeat::register(&node).await?;
        let agent = Arc::new(Agent {
            node,
            pods: Mutex::new(HashMap::new()),
        });
        if let ControlPlane::InProcess(api) = &agent.node.plane {
            api.register_log_source(&agent.node.config.node_name, agent.clone());
        }
        tokio::spawn(heartbeat::run(agent.node.clone(), shutdown.clone()));
        let pods: Arc<dyn NodePods> = agent.clone();
        tokio::spawn(eviction::run(agent.node.clone(), pods, shutdown.clone()));
        tokio::spawn(agent.clone().sync_pods(shutdown));
        Ok(agent)
    }

    fn name(&self) -> &str {
        &self.node.config.node_name
    }

    /// Keeps the pods bound to this node in step with the API: list, reconcile, watch; and
    /// again whenever the watch ends or the API server cannot be reached. Running pods are
    /// left alone meanwhile.
    async fn sync_pods(self: Arc<Self>, shutdown: CancellationToken) {
        let selector = format!("spec.nodeName={}", self.name());
        let mut delay = RESYNC_DELAY.0;
        while !shutdown.is_cancelled() {
            match self.list_and_watch(&selector, &shutdown).await {
                Ok(()) => delay = RESYNC_DELAY.0,
                Err(error) => {
                    tracing::warn!(%error, "pod sync with the API server failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = shutdown.cancelled() => {}
                    }
                    delay = (delay * 2).min(RESYNC_DELAY.1);
                }
            }
        }
        let handles: Vec<PodHandle> = self
            .pods
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .map(|(_, h)| h)
            .collect();
        for handle in &handles {
            handle.stop(Stop::Shutdown);
        }
        for handle in handles {
            handle.finished.cancelled().await;
        }
    }

    async fn list_and_watch(&self, selector: &str, shutdown: &CancellationToken) -> ApiResult<()> {
        let plane = &self.node.plane;
        let (pods, version) = plane.list(&PODS, selector).await?;
        self.resync(&pods);
        let mut events = plane.watch(&PODS, selector, &version, shutdown).await?;
        loop {
            let event = tokio::select! {
                event = events.next() => event,
                _ = shutdown.cancelled() => return Ok(()),
            };
            match event {
                Some(Ok(event)) => self.apply(event.kind, &event.object),
                Some(Err(error)) => return Err(error),
                None => return Ok(()),
            }
        }
    }

    /// Matches the running pods to a fresh list: pods that vanished meanwhile stop, new ones
    /// start, deleted ones finish their deletion.
    fn resync(&self, pods: &[Value]) {
        let listed: HashSet<&str> = pods
            .iter()
            .filter_map(|pod| pod["metadata"]["uid"].as_str())
            .collect();
        self.pods
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|uid, handle| {
                let keep = listed.contains(uid.as_str());
                if !keep {
                    handle.stop(Stop::Gone);
                }
                keep
            });
        let handles = self.pods.lock().unwrap_or_else(|p| p.into_inner());
        for pod in pods {
            if let Some(handle) = pod["metadata"]["uid"].as_str().and_then(|u| handles.get(u)) {
                handle.reconcile_status(&pod["status"]);
            }
        }
        drop(handles);
        for pod in pods {
            self.apply("ADDED", pod);
        }
    }

    fn apply(&self, kind: &str, pod: &Value) {
        let uid = pod["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let deleting = pod["metadata"]["deletionTimestamp"].is_string();
        let mut pods = self.pods.lock().unwrap_or_else(|p| p.into_inner());
        pods.retain(|_, handle| !handle.finished.is_cancelled());
        match (kind, pods.get(&uid)) {
            ("DELETED", Some(handle)) => {
                handle.stop(Stop::Gone);
                pods.remove(&uid);
            }
            ("ADDED" | "MODIFIED", Some(handle)) if deleting => handle.stop(Stop::Delete),
            ("ADDED" | "MODIFIED", None) if deleting => self.finish_deletion(pod),
            ("ADDED" | "MODIFIED", None) => match pod_worker::spawn(self.node.clone(), pod.clone())
            {
                Ok(handle) => {
                    pods.insert(uid, handle);
                }
                Err(error) => tracing::warn!(%error, "cannot start pod"),
            },
            _ => {}
        }
    }

    /// A pod marked for deletion that no worker runs (e.g. deleted while the node was down).
    fn finish_deletion(&self, pod: &Value) {
        let node = self.node.clone();
        let meta = &pod["metadata"];
        let namespace = meta["namespace"].as_str().map(str::to_string);
        let name = meta["name"].as_str().unwrap_or_default().to_string();
        let uid = meta["uid"].as_str().unwrap_or_default().to_string();
        tokio::spawn(async move {
            node.remove_pod(namespace.as_deref(), &name, &uid, true)
                .await
        });
    }
}

impl NodePods for Agent {
    fn on_disk(&self) -> Vec<PodOnDisk> {
        let pods = self.pods.lock().unwrap_or_else(|p| p.into_inner());
        pods.iter()
            .filter_map(|(uid, handle)| {
                let (pod, share) = handle.disk_view()?;
                Some(PodOnDisk {
                    uid: uid.clone(),
                    pod,
                    share,
                })
            })
            .collect()
    }

    fn evict(&self, uid: &str, message: String) {
        let pods = self.pods.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(handle) = pods.get(uid) {
            tracing::info!(pod = uid, %message, "evicting pod");
            handle.evict(message);
        }
    }
}

impl PodLogs for Agent {
    fn open(
        &self,
        pod: &Value,
        container: &str,
        options: &LogOptions,
    ) -> ApiResult<mpsc::Receiver<Bytes>> {
        let uid = pod["metadata"]["uid"].as_str().unwrap_or_default();
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        let pair = self
            .pods
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(uid)
            .and_then(|h| h.logs(container));
        let waiting = || {
            ApiError::BadRequest(format!(
                "container \"{container}\" in pod \"{name}\" is waiting to start: ContainerCreating"
            ))
        };
        let pair = pair.ok_or_else(waiting)?;
        let log = if options.previous {
            pair.previous.ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "previous terminated container \"{container}\" in pod \"{name}\" not found"
                ))
            })?
        } else {
            pair.current
        };
        let since = options.since_seconds.and_then(|s| since(Utc::now(), s));
        let (lines, mut cursor) = log.snapshot(options.tail_lines, since);
        let (tx, rx) = mpsc::channel(64);
        let (follow, timestamps) = (options.follow, options.timestamps);
        tokio::spawn(async move {
            if tx.send(render(&lines, timestamps)).await.is_err() || !follow {
                return;
            }
            loop {
                let next = tokio::select! {
                    next = log.next_lines(cursor) => next,
                    _ = tx.closed() => return,
                };
                let Some((lines, next_cursor)) = next else {
                    return;
                };
                cursor = next_cursor;
                if !lines.is_empty() && tx.send(render(&lines, timestamps)).await.is_err() {
                    return;
                }
            }
        });
        Ok(rx)
    }
}

/// The oldest time `sinceSeconds` lets through, `now` minus `seconds`; `None` (no bound) when
/// that lies before any time a clock can show, so a huge value means "everything", never a
/// panic. A negative value counts as zero.
fn since(now: DateTime<Utc>, seconds: i64) -> Option<DateTime<Utc>> {
    let back = chrono::TimeDelta::try_seconds(seconds.max(0))?;
    now.checked_sub_signed(back)
}

fn render(lines: &[LogLine], timestamps: bool) -> Bytes {
    let mut out = String::new();
    for line in lines {
        if timestamps {
            out.push_str(&line.time.to_rfc3339_opts(SecondsFormat::Nanos, true));
            out.push(' ');
        }
        out.push_str(&line.text);
        out.push('\n');
    }
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_seconds_beyond_any_clock_means_every_line_instead_of_a_panic() {
        let now = Utc::now();
        assert_eq!(since(now, i64::MAX), None);
        assert_eq!(since(now, i64::MAX / 1000), None);
        assert_eq!(since(now, 10), Some(now - chrono::TimeDelta::seconds(10)));
        assert_eq!(since(now, -5), Some(now));
    }
}
