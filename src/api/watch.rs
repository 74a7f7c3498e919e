//! Watch streams: store events filtered by namespace and selectors, as `ADDED`/`MODIFIED`/`DELETED`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use super::Api;
use super::error::{ApiError, ApiResult};
use super::kinds::Resource;
use super::objects::ListOptions;
use crate::store::{self, EventKind, Revision, Store, Watch};

/// How many events a watcher may have unread before the producer waits for it.
const WATCH_BUFFER: usize = 256;

/// One watch event as it goes on the wire: `{"type": .., "object": ..}`.
#[derive(Clone, Debug, PartialEq)]
pub struct WatchEvent {
    pub kind: &'static str,
    pub object: Value,
}

impl WatchEvent {
    pub fn to_json(&self) -> Value {
        json!({"type": self.kind, "object": self.object})
    }
}

impl Api {
    /// Opens a watch. With no `resource_version` the stream starts with an `ADDED` event for each
    /// existing object; otherwise with the changes after that version. The stream ends after
    /// `timeout`, when `shutdown` fires, or when the receiver is dropped.
    ///
    /// # Errors
    /// `Gone` (410) when the requested version is older than the kept history.
    pub fn watch(
        &self,
        resource: &'static Resource,
        namespace: Option<&str>,
        options: ListOptions,
        timeout: Option<Duration>,
        shutdown: CancellationToken,
    ) -> ApiResult<mpsc::Receiver<WatchEvent>> {
        let prefix = resource.key(namespace, None);
        let (initial, after) = match options.resource_version {
            Some(revision) => (Vec::new(), revision),
            None => {
                let listing = self
                    .store
                    .list(&prefix)
                    .map_err(|e| ApiError::from_store(e, resource.plural, ""))?;
                let added = listing
                    .entries
                    .into_iter()
                    .filter(|entry| options.matches(&entry.value))
                    .map(|entry| WatchEvent {
                        kind: "ADDED",
                        object: entry.value,
                    })
                    .collect();
                (added, listing.revision)
            }
        };
        let watch = self
            .store
            .watch(&prefix, after)
            .map_err(|e| ApiError::from_store(e, resource.plural, ""))?;
        let (tx, rx) = mpsc::channel(WATCH_BUFFER);
        let stream = Stream {
            tx,
            options,
            prefix,
            resource,
            last: after,
            store: self.store.clone(),
        };
        tokio::spawn(stream.run(initial, watch, timeout, shutdown));
        Ok(rx)
    }
}

/// One watch on its way to its receiver.
struct Stream {
    tx: mpsc::Sender<WatchEvent>,
    options: ListOptions,
    prefix: String,
    resource: &'static Resource,
    /// The revision of the last event delivered.
    last: Revision,
    store: Arc<dyn Store>,
}

/// The receiver has gone, or was told in an `ERROR` event why its watch ends.
struct Ended;

impl Stream {
    async fn run(
        mut self,
        initial: Vec<WatchEvent>,
        watch: Watch,
        timeout: Option<Duration>,
        shutdown: CancellationToken,
    ) {
        let receiver = self.tx.clone();
        tokio::select! {
            _ = self.deliver(initial, watch) => {}
            _ = receiver.closed() => {}
            _ = tokio::time::sleep(timeout.unwrap_or(Duration::MAX / 4)) => {}
            _ = shutdown.cancelled() => {}
        }
    }

    /// The initial objects, the history a page at a time, then the live feed. The live feed
    /// buffers what happens meanwhile up to its capacity; a watcher further behind has lost
    /// events and is ended with 410, as kube-apiserver's watch cache ends it.
    async fn deliver(&mut self, initial: Vec<WatchEvent>, watch: Watch) -> Result<(), Ended> {
        for event in initial {
            self.send(event).await?;
        }
        let Watch {
            mut backlog,
            mut live,
        } = watch;
        loop {
            let page = match backlog.next_page() {
                Ok(page) if page.is_empty() => break,
                Ok(page) => page,
                Err(error) => return self.fail(error).await,
            };
            for event in page {
                self.forward(event).await?;
            }
        }
        loop {
            match live.recv().await {
                Ok(event) => self.forward(event).await?,
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let gone = store::Error::Compacted {
                        requested: self.last,
                        oldest: self.store.current_revision(),
                    };
                    return self.fail(gone).await;
                }
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            }
        }
    }

    async fn forward(&mut self, event: store::Event) -> Result<(), Ended> {
        if event.entry.revision <= self.last || !event.entry.key.starts_with(&self.prefix) {
            return Ok(());
        }
        self.last = event.entry.revision;
        match translate(
            &self.options,
            event.kind,
            event.entry.value,
            event.prev.as_ref(),
        ) {
            Some(out) => self.send(out).await,
            None => Ok(()),
        }
    }

    async fn send(&self, event: WatchEvent) -> Result<(), Ended> {
        self.tx.send(event).await.map_err(|_| Ended)
    }

    /// Ends the watch with an `ERROR` event carrying the error's `Status`.
    async fn fail(&self, error: store::Error) -> Result<(), Ended> {
        let status = ApiError::from_store(error, self.resource.plural, "").to_status();
        let _ = self
            .send(WatchEvent {
                kind: "ERROR",
                object: status,
            })
            .await;
        Err(Ended)
    }
}

/// Calls `handle` for every event of a watch that is re-opened (from the current state) whenever
/// it ends, until `shutdown`. For in-process components; `handle` must be idempotent, since a
/// re-opened watch replays the current objects as `ADDED`. `ERROR` events are not handed on.
pub async fn follow(
    api: &Api,
    resource: &'static Resource,
    options: ListOptions,
    shutdown: &CancellationToken,
    mut handle: impl FnMut(WatchEvent),
) {
    while !shutdown.is_cancelled() {
        let mut events = match api.watch(
            resource,
            None,
            options.clone(),
            None,
            shutdown.child_token(),
        ) {
            Ok(events) => events,
            Err(error) => {
                tracing::warn!(%error, resource = resource.plural, "watch failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    _ = shutdown.cancelled() => return,
                }
            }
        };
        while let Some(event) = events.recv().await {
            if event.kind == "ERROR" {
                // Fell behind or lost the history it needed: re-open from the current state.
                tracing::debug!(resource = resource.plural, status = %event.object, "watch ended; re-opening");
                break;
            }
            handle(event);
        }
    }
}

/// What a watcher with `options` sees of a change: objects entering the selection are `ADDED`,
/// leaving it `DELETED`.
fn translate(
    options: &ListOptions,
    kind: EventKind,
    object: Value,
    prev: Option<&Value>,
) -> Option<WatchEvent> {
    let was = prev.is_some_and(|p| options.matches(p));
    let is = kind == EventKind::Put && options.matches(&object);
    let kind = match (was, is) {
        (false, true) => "ADDED",
        (true, true) => "MODIFIED",
        (true, false) => "DELETED",
        (false, false) => return None,
    };
    Some(WatchEvent { kind, object })
}

/// Parses `?resourceVersion=`: empty and `0` mean "from the current state".
pub fn parse_resource_version(text: Option<&str>) -> ApiResult<Option<Revision>> {
    match text {
        None | Some("") | Some("0") => Ok(None),
        Some(text) => text
            .parse()
            .map(Some)
            .map_err(|_| ApiError::BadRequest(format!("invalid resourceVersion: {text:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::kinds::{LEASES, PODS};
    use crate::api::selectors::FieldSelector;
    use std::sync::Mutex;

    /// More changes than the store's live feed buffers (8,192) and a watcher's channel together.
    fn burst_of_leases(api: &Api, count: usize) {
        let leases = (0..count)
            .map(|i| json!({"metadata": {"name": format!("l{i}")}, "spec": {}}))
            .collect();
        api.create_many(&LEASES, Some("default"), leases).unwrap();
    }

    #[tokio::test]
    async fn a_watcher_that_falls_behind_the_live_feed_is_ended_with_410() {
        let (_dir, api) = Api::scratch();
        let from_now = ListOptions {
            resource_version: Some(api.current_revision()),
            ..Default::default()
        };
        let token = CancellationToken::new();
        let mut events = api
            .watch(&LEASES, Some("default"), from_now, None, token)
            .unwrap();
        burst_of_leases(&api, 9_000);
        let limit = Duration::from_secs(10);
        let ended = tokio::time::timeout(limit, events.recv()).await;
        let ended = ended.expect("an event").expect("an ERROR event");
        assert_eq!(ended.kind, "ERROR");
        assert_eq!(ended.object["code"], 410);
        let message = ended.object["message"].as_str().unwrap();
        assert!(message.contains("too old resource version"), "{message}");
        let end = tokio::time::timeout(limit, events.recv()).await;
        assert!(end.expect("the end").is_none(), "the watch ends");
    }

    #[tokio::test]
    async fn follow_reopens_a_watch_that_fell_behind_without_handing_on_its_error() {
        let (_dir, api) = Api::scratch();
        let kinds: Arc<Mutex<Vec<&'static str>>> = Arc::default();
        let shutdown = CancellationToken::new();
        let following = {
            let (api, kinds, shutdown) = (api.clone(), kinds.clone(), shutdown.clone());
            tokio::spawn(async move {
                let record = |event: WatchEvent| kinds.lock().unwrap().push(event.kind);
                follow(&api, &LEASES, ListOptions::default(), &shutdown, record).await;
            })
        };
        tokio::task::yield_now().await;
        burst_of_leases(&api, 9_000);
        crate::testing::eventually(Duration::from_secs(10), "every lease seen", || async {
            (kinds.lock().unwrap().len() >= 9_000).then_some(())
        })
        .await;
        shutdown.cancel();
        following.await.unwrap();
        assert!(kinds.lock().unwrap().iter().all(|kind| *kind == "ADDED"));
    }

    #[test]
    fn objects_entering_and_leaving_a_selection_are_added_and_deleted() {
        let options = ListOptions {
            fields: FieldSelector::parse("spec.nodeName=n1", &PODS).unwrap(),
            ..Default::default()
        };
        let unbound = json!({"spec": {}});
        let bound = json!({"spec": {"nodeName": "n1"}});
        let bind = translate(&options, EventKind::Put, bound.clone(), Some(&unbound)).unwrap();
        assert_eq!(bind.kind, "ADDED");
        let update = translate(&options, EventKind::Put, bound.clone(), Some(&bound)).unwrap();
        assert_eq!(update.kind, "MODIFIED");
        let delete = translate(&options, EventKind::Delete, bound.clone(), Some(&bound)).unwrap();
        assert_eq!(delete.kind, "DELETED");
        assert!(translate(&options, EventKind::Put, unbound.clone(), None).is_none());
    }
}
