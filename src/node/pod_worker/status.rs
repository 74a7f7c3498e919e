//! A pod's status on its way to the API: written when it changes, coalesced, retried while
//! the API is away, and only for the incarnation of the pod this worker runs.

use std::sync::Arc;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{FIRST_STATUS_WAIT, STATUS_RETRY, Worker};
use crate::api::kinds::PODS;
use crate::api::{ApiError, Part};
use crate::node::pod_status;
use crate::node::status_batch::Written;

impl Worker {
    /// Writes the pod's status whenever it changes, coalescing bursts; once more at the end.
    /// While the API is unreachable the latest status is retried every second, so a node
    /// that loses its control plane reports what happened meanwhile as soon as it returns.
    /// The first status waits up to [`FIRST_STATUS_WAIT`] while the pod is starting, as the
    /// kubelet's status manager writes what its last sync found rather than every step of it.
    pub(super) async fn write_status(self: Arc<Self>, done: CancellationToken) {
        let mut unsent = false;
        let mut holding = false;
        let first_by = tokio::time::Instant::now() + FIRST_STATUS_WAIT;
        loop {
            let finishing = tokio::select! {
                _ = self.shared.changed.notified() => false,
                _ = done.cancelled() => true,
                _ = tokio::time::sleep(STATUS_RETRY), if unsent => false,
                _ = tokio::time::sleep_until(first_by), if holding => false,
            };
            let status = {
                let record = self.shared.record.lock().unwrap_or_else(|p| p.into_inner());
                holding = !finishing
                    && pod_status::is_starting(&record)
                    && tokio::time::Instant::now() < first_by;
                if holding {
                    continue;
                }
                pod_status::status_json(&record)
            };
            unsent = false;
            if !self.is_written(&status) {
                match self.put_status(&status).await {
                    Written::Yes => {
                        *self
                            .shared
                            .written
                            .lock()
                            .unwrap_or_else(|p| p.into_inner()) = Some(status);
                    }
                    Written::Gone => return,
                    Written::Refused => {}
                    Written::Unreachable => unsent = true,
                }
            }
            if finishing {
                return;
            }
        }
    }

    fn is_written(&self, status: &Value) -> bool {
        self.shared
            .written
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            == Some(status)
    }

    /// Replaces the stored status of this incarnation of the pod.
    async fn put_status(&self, status: &Value) -> Written {
        if let Some(batch) = &self.node.status_batch {
            return batch
                .put(self.namespace(), self.name(), &self.uid, status)
                .await;
        }
        let plane = &self.node.plane;
        for _ in 0..5 {
            let mut current = match plane.get(&PODS, Some(self.namespace()), self.name()).await {
                Ok(current) => current,
                Err(ApiError::Unavailable(_)) => return Written::Unreachable,
                Err(_) => return Written::Gone,
            };
            if current["metadata"]["uid"].as_str() != Some(&self.uid) {
                return Written::Gone;
            }
            current["status"] = status.clone();
            let update = plane
                .update(
                    &PODS,
                    Some(self.namespace()),
                    self.name(),
                    current,
                    Part::Status,
                )
                .await;
            match update {
                Ok(_) => return Written::Yes,
                Err(ApiError::Conflict { .. }) => continue,
                Err(ApiError::Unavailable(_)) => return Written::Unreachable,
                Err(error) => {
                    tracing::warn!(%error, pod = self.name(), "status update failed");
                    return Written::Refused;
                }
            }
        }
        Written::Unreachable
    }
}
