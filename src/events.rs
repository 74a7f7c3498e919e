//! Recording Kubernetes Events: the answers to "why?" that `describe` shows.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures::FutureExt;

use crate::api::kinds::EVENTS;
use crate::api::objects::now;
use crate::api::{Api, ApiError, ApiResult, Part};
use crate::client::control_plane::ControlPlane;

/// The reason of the Warning written when a reconcile panics.
pub const RECONCILE_PANICKED: &str = "ReconcilePanicked";

/// `Normal` or `Warning`, as Event.type spells them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

type EventKey = (String, String, String);

/// Writes events for one component (`kubelet`, `default-scheduler`) on one host; repeats of
/// the same reason and message about the same object bump `count` instead of piling up.
#[derive(Clone)]
pub struct Recorder {
    plane: ControlPlane,
    /// In process, new events are handed to a writer thread that stores whatever has
    /// queued up in one write: a burst of pods makes a burst of events.
    batch: Option<mpsc::Sender<Value>>,
    component: String,
    host: String,
    /// (object uid, reason, message) → name of the event already written for it.
    seen: Arc<Mutex<HashMap<EventKey, String>>>,
}

impl Recorder {
    pub fn new(plane: impl Into<ControlPlane>, component: &str, host: &str) -> Self {
        let plane = plane.into();
        let batch = match &plane {
            ControlPlane::InProcess(api) => Some(start_batch_writer(api.clone(), component)),
            ControlPlane::Remote(_) => None,
        };
        Self {
            plane,
            batch,
            component: component.into(),
            host: host.into(),
            seen: Arc::default(),
        }
    }

    /// Reports that reconciling `object` panicked, so `describe` shows why it is stuck (the
    /// controller retries it with back-off).
    pub fn reconcile_panicked(&self, object: &Value, message: &str) {
        self.record(
            object,
            None,
            EventType::Warning,
            RECONCILE_PANICKED,
            &format!(
                "{} failed on this object: {message}; retrying with back-off",
                self.component
            ),
        );
    }

    /// Records an event about `object` (a stored object), optionally about one of its parts
    /// (`spec.containers{web}`). Failures are logged, never returned: an event is advisory.
    /// Written in the background: in process in batches, over the network one by one.
    pub fn record(
        &self,
        object: &Value,
        field_path: Option<&str>,
        kind: EventType,
        reason: &str,
        message: &str,
    ) {
        let meta = &object["metadata"];
        let namespace = meta["namespace"].as_str().unwrap_or("default").to_string();
        let uid = meta["uid"].as_str().unwrap_or_default().to_string();
        let dedupe_key = (uid.clone(), reason.to_string(), message.to_string());
        let timestamp = now();
        let event = json!({
            "apiVersion": EVENTS.api_version(),
            "kind": EVENTS.kind,
            "metadata": {"namespace": namespace},
            "involvedObject": {
                "apiVersion": object["apiVersion"], "kind": object["kind"], "name": meta["name"],
                "namespace": meta["namespace"], "uid": uid, "fieldPath": field_path,
                "resourceVersion": meta["resourceVersion"],
            },
            "reason": reason,
            "message": message,
            "type": match kind { EventType::Normal => "Normal", EventType::Warning => "Warning" },
            "source": {"component": self.component, "host": self.host},
            "reportingComponent": self.component,
            "reportingInstance": self.host,
            "firstTimestamp": timestamp,
            "lastTimestamp": timestamp,
            "count": 1,
        });
        let object_name = meta["name"].as_str().unwrap_or("object").to_string();
        let this = self.clone();
        let write = async move { this.write(dedupe_key, &object_name, event).await };
        match self.plane {
            // Nothing in-process waits: the future is complete after its first poll.
            ControlPlane::InProcess(_) => drop(write.now_or_never()),
            ControlPlane::Remote(_) => drop(tokio::spawn(write)),
        }
    }

    /// Bumps the event already written for `key`, or writes `event` as a new one.
    async fn write(&self, key: EventKey, object_name: &str, mut event: Value) {
        let namespace = event["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_string();
        let existing = self
            .seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .cloned();
        if let Some(name) = existing
            && self.bump(&namespace, &name).await.is_ok()
        {
            return;
        }
        let name = format!("{object_name}.{}", hex::encode(rand::random::<[u8; 8]>()));
        event["metadata"]["name"] = json!(name);
        let created = match &self.batch {
            Some(batch) => batch
                .send(event)
                .map_err(|_| ApiError::Unavailable("stopped".into())),
            None => self
                .plane
                .create(&EVENTS, Some(&namespace), event)
                .await
                .map(drop),
        };
        match created {
            Ok(_) => {
                let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
                if seen.len() > 4096 {
                    seen.clear();
                }
                seen.insert(key, name);
            }
            Err(error) => tracing::debug!(%error, reason = key.1, "event not recorded"),
        }
    }

    /// Counts one more occurrence of an event already written; an error if it is gone.
    async fn bump(&self, namespace: &str, name: &str) -> ApiResult<Value> {
        let mut event = self.plane.get(&EVENTS, Some(namespace), name).await?;
        let count = event["count"].as_i64().unwrap_or(1);
        event["count"] = json!(count + 1);
        event["lastTimestamp"] = json!(now());
        self.plane
            .update(&EVENTS, Some(namespace), name, event, Part::Main)
            .await
    }
}

/// Most events one batch write takes.
const BATCH_LIMIT: usize = 512;
/// How long the writer gathers events after the first of a batch. A pod's start records
/// several (Pulled, Started) within milliseconds, and each store write is a sync on the path
/// of the writes that make the pod Running: gathered, they are one write, after them.
const GATHER: Duration = Duration::from_millis(10);

/// Starts the thread that writes queued events, each burst in one store write; it ends when
/// the last `Recorder` sharing it is dropped.
fn start_batch_writer(api: Arc<Api>, component: &str) -> mpsc::Sender<Value> {
    let (tx, rx) = mpsc::channel::<Value>();
    let spawned = std::thread::Builder::new()
        .name(format!("events-{component}"))
        .spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut by_namespace: HashMap<String, Vec<Value>> = HashMap::new();
                for event in gather(first, &rx) {
                    let namespace = event["metadata"]["namespace"]
                        .as_str()
                        .unwrap_or("default")
                        .to_string();
                    by_namespace.entry(namespace).or_default().push(event);
                }
                for (namespace, events) in by_namespace {
                    if let Err(error) = api.create_many(&EVENTS, Some(&namespace), events) {
                        tracing::debug!(%error, "events not recorded");
                    }
                }
            }
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "cannot start the event writer; events are dropped");
    }
    tx
}

/// `first` and what arrives within [`GATHER`] of it, at most [`BATCH_LIMIT`] events.
fn gather(first: Value, rx: &mpsc::Receiver<Value>) -> Vec<Value> {
    let mut events = vec![first];
    let until = Instant::now() + GATHER;
    while events.len() < BATCH_LIMIT {
        match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok(event) => events.push(event),
            Err(_) => break,
        }
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_gathers_what_is_queued_and_leaves_what_comes_after_it_to_the_next() {
        let (tx, rx) = mpsc::channel();
        let (gathered, was_gathered) = mpsc::channel();
        let sender = std::thread::spawn(move || {
            tx.send(json!(1)).unwrap();
            tx.send(json!(2)).unwrap();
            was_gathered.recv().unwrap();
            tx.send(json!(3)).unwrap();
        });
        let first = rx.recv().unwrap();
        assert_eq!(gather(first, &rx), [json!(1), json!(2)]);
        gathered.send(()).unwrap();
        let next = rx.recv().unwrap();
        assert_eq!(gather(next, &rx), [json!(3)]);
        sender.join().unwrap();
    }

    #[test]
    fn a_batch_holds_at_most_the_limit() {
        let (tx, rx) = mpsc::channel();
        for n in 0..BATCH_LIMIT + 5 {
            tx.send(json!(n)).unwrap();
        }
        let first = rx.recv().unwrap();
        assert_eq!(gather(first, &rx).len(), BATCH_LIMIT);
        assert_eq!(rx.try_iter().count(), 5);
    }
}
