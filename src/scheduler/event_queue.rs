//! The scheduler's events, written behind its decisions as client-go's event broadcaster does:
//! a binding never waits for its `Scheduled` event, and a full queue drops events.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::events::{EventType, Recorder};

/// Events waiting to be written; beyond this many they are dropped (client-go's
/// `maxQueuedEvents`): an event is advisory, a binding is not.
const CAPACITY: usize = 1000;

struct Pending {
    object: Arc<Value>,
    kind: EventType,
    reason: &'static str,
    message: String,
}

/// Queues events for a writer task.
pub struct EventQueue {
    sender: mpsc::Sender<Pending>,
}

impl EventQueue {
    /// The queue, and the task that writes its events through `recorder` until `shutdown`.
    pub fn new(
        recorder: Recorder,
        shutdown: CancellationToken,
    ) -> (EventQueue, impl Future<Output = ()>) {
        Self::with_capacity(recorder, CAPACITY, shutdown)
    }

    fn with_capacity(
        recorder: Recorder,
        capacity: usize,
        shutdown: CancellationToken,
    ) -> (EventQueue, impl Future<Output = ()>) {
        let (sender, receiver) = mpsc::channel(capacity);
        (EventQueue { sender }, write(recorder, receiver, shutdown))
    }

    /// Queues an event about `object`; drops it when the queue is full.
    pub fn record(
        &self,
        object: Arc<Value>,
        kind: EventType,
        reason: &'static str,
        message: String,
    ) {
        let event = Pending {
            object,
            kind,
            reason,
            message,
        };
        if self.sender.try_send(event).is_err() {
            tracing::debug!(reason, "scheduler event queue full; event dropped");
        }
    }
}

/// Writes queued events one after the other, on a blocking thread since the store commits each.
async fn write(
    recorder: Recorder,
    mut receiver: mpsc::Receiver<Pending>,
    shutdown: CancellationToken,
) {
    loop {
        let event = tokio::select! {
            event = receiver.recv() => event,
            _ = shutdown.cancelled() => None,
        };
        let Some(event) = event else { return };
        let recorder = recorder.clone();
        let written = tokio::task::spawn_blocking(move || {
            let Pending {
                object,
                kind,
                reason,
                message,
            } = event;
            recorder.record(&object, None, kind, reason, &message);
        });
        let _ = written.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::kinds::EVENTS;
    use crate::api::{Api, ListOptions};
    use serde_json::json;
    use std::time::Duration;

    #[tokio::test]
    async fn queued_events_are_all_written_and_a_full_queue_drops_the_rest() {
        let (_dir, api) = Api::scratch();
        let shutdown = CancellationToken::new();
        let recorder = Recorder::new(api.clone(), "test", "");
        let (queue, writer) = EventQueue::with_capacity(recorder, 3, shutdown.clone());
        let pod = Arc::new(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "default", "uid": "u"}}));
        for i in 0..5 {
            queue.record(
                pod.clone(),
                EventType::Normal,
                "Scheduled",
                format!("event {i}"),
            );
        }
        let writer = tokio::spawn(writer);
        let written = || {
            let list = api
                .list(&EVENTS, Some("default"), &ListOptions::default())
                .unwrap();
            list["items"].as_array().unwrap().len()
        };
        tokio::time::timeout(Duration::from_secs(30), async {
            while written() < 3 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("every queued event written");
        shutdown.cancel();
        writer.await.unwrap();
        assert_eq!(written(), 3, "the 2 beyond capacity were dropped");
    }
}
