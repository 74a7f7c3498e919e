//! Pod status writes of a node in the API server's process, batched: what the pod workers
//! have queued when the writer comes round goes to the store in one write, as the kubelet's
//! single status manager loop would send it.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::api::kinds::PODS;
use crate::api::{Api, ApiError, Part};

/// Most statuses one write takes.
const BATCH_LIMIT: usize = 512;
/// Rounds a status whose pod changed meanwhile (a conflict) is tried again in.
const CONFLICT_ROUNDS: usize = 5;

/// What became of a status write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    Yes,
    /// This incarnation of the pod no longer exists.
    Gone,
    /// The API refused it (logged); the next change tries again.
    Refused,
    Unreachable,
}

struct Request {
    namespace: String,
    name: String,
    uid: String,
    status: Value,
    reply: oneshot::Sender<Written>,
}

/// The queue of a node's status writes.
#[derive(Clone)]
pub struct StatusBatch {
    requests: mpsc::UnboundedSender<Request>,
}

impl StatusBatch {
    /// Starts the writer; it ends when the last `StatusBatch` is dropped.
    pub fn start(api: Arc<Api>) -> Self {
        let (requests, mut queue) = mpsc::unbounded_channel::<Request>();
        tokio::spawn(async move {
            while let Some(first) = queue.recv().await {
                let mut batch = vec![first];
                while batch.len() < BATCH_LIMIT {
                    match queue.try_recv() {
                        Ok(request) => batch.push(request),
                        Err(_) => break,
                    }
                }
                write(&api, batch);
            }
        });
        Self { requests }
    }

    /// Sets the status of pod `namespace/name` if it is still incarnation `uid`.
    pub async fn put(&self, namespace: &str, name: &str, uid: &str, status: &Value) -> Written {
        let (reply, answer) = oneshot::channel();
        let request = Request {
            namespace: namespace.into(),
            name: name.into(),
            uid: uid.into(),
            status: status.clone(),
            reply,
        };
        if self.requests.send(request).is_err() {
            return Written::Unreachable;
        }
        answer.await.unwrap_or(Written::Unreachable)
    }
}

/// Writes a batch, namespace by namespace, retrying the statuses that met a conflict.
fn write(api: &Api, mut batch: Vec<Request>) {
    for _ in 0..CONFLICT_ROUNDS {
        if batch.is_empty() {
            return;
        }
        let mut conflicted = Vec::new();
        batch.sort_by(|a, b| a.namespace.cmp(&b.namespace));
        while !batch.is_empty() {
            let namespace = batch[0].namespace.clone();
            let split = batch.partition_point(|r| r.namespace == namespace);
            let rest = batch.split_off(split);
            conflicted.extend(write_namespace(api, &namespace, batch));
            batch = rest;
        }
        batch = conflicted;
    }
    for request in batch {
        let _ = request.reply.send(Written::Unreachable);
    }
}

/// Writes one namespace's statuses; returns the requests to try again.
fn write_namespace(api: &Api, namespace: &str, requests: Vec<Request>) -> Vec<Request> {
    let mut pending = Vec::new();
    let mut objects = Vec::new();
    for request in requests {
        match api.get(&PODS, Some(namespace), &request.name) {
            Ok(mut pod) if pod["metadata"]["uid"] == request.uid.as_str() => {
                pod["status"] = request.status.clone();
                objects.push((request.name.clone(), pod));
                pending.push(request);
            }
            _ => {
                let _ = request.reply.send(Written::Gone);
            }
        }
    }
    let outcomes = match api.update_many(&PODS, Some(namespace), objects, Part::Status) {
        Ok(outcomes) => outcomes,
        Err(error) => {
            tracing::warn!(%error, "pod status batch failed");
            let message = error.to_string();
            pending
                .iter()
                .map(|_| Err(ApiError::Unavailable(message.clone())))
                .collect()
        }
    };
    let mut again = Vec::new();
    for (request, outcome) in pending.into_iter().zip(outcomes) {
        let written = match outcome {
            Ok(_) => Written::Yes,
            Err(ApiError::Conflict { .. }) => {
                again.push(request);
                continue;
            }
            Err(ApiError::NotFound { .. }) => Written::Gone,
            Err(error) => {
                tracing::warn!(%error, pod = request.name, "status update failed");
                Written::Refused
            }
        };
        let _ = request.reply.send(written);
    }
    again
}
