//! Watch streams: store events filtered by namespace and selectors, as `ADDED`/`MODIFIED`/`DELETED`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use super::Api;
use super::error::{ApiError, ApiResult};
use super::kinds::Resource;
use super::list_options::ListOptions;
use super::objects::{as_served, served};
use crate::store::{self, EventKind, Revision, Store, Watch};

/// How many events a watcher may have unread before the producer waits for it.
const WATCH_BUFFER: usize = 256;

/// How often a watch that allows bookmarks is told how far it has seen (kube-apiserver: about
/// a minute; shorter here, since a restarted client resumes from it).
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(15);

/// The annotation of the BOOKMARK that closes the initial state of a `sendInitialEvents` watch.
pub const INITIAL_EVENTS_END: &str = "k8s.io/initial-events-end";

/// One watch event as it goes on the wire: `{"type": .., "object": ..}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WatchEvent {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub object: Value,
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
        let with_state = options
            .send_initial_events
            .unwrap_or(options.resource_version.is_none());
        let (initial, after) = if with_state {
            let listing = self.listed(resource, namespace, &options)?;
            let mut initial: Vec<WatchEvent> = listing
                .entries
                .into_iter()
                .map(|entry| WatchEvent {
                    kind: "ADDED",
                    object: served(resource, entry),
                })
                .collect();
            if options.send_initial_events == Some(true) {
                initial.push(bookmark(resource, listing.revision, true));
            }
            (initial, listing.revision)
        } else {
            let now = || self.store.current_revision();
            (Vec::new(), options.resource_version.unwrap_or_else(now))
        };
        let watch = self
            .store
            .watch(&prefix, after)
            .map_err(|e| ApiError::from_store(e, &resource.qualified(), ""))?;
        let (tx, rx) = mpsc::channel(WATCH_BUFFER);
        let stream = Stream {
            tx,
            options,
            prefix,
            resource,
            last: after,
            progress: after,
            store: self.store.clone(),
        };
        tokio::spawn(stream.run(initial, watch, timeout, shutdown));
        Ok(rx)
    }
}

/// A BOOKMARK event: an object of the watched kind holding only the revision the watcher has
/// seen everything up to; `initial_events_end` marks the end of the initial state of a
/// `sendInitialEvents` watch (the annotation client-go's watch-list waits for).
fn bookmark(resource: &Resource, revision: Revision, initial_events_end: bool) -> WatchEvent {
    let mut metadata = json!({"resourceVersion": revision.to_string()});
    if initial_events_end {
        metadata["annotations"] = json!({INITIAL_EVENTS_END: "true"});
    }
    WatchEvent {
        kind: "BOOKMARK",
        object: json!({
            "kind": resource.kind,
            "apiVersion": resource.api_version(),
            "metadata": metadata,
        }),
    }
}

/// The next tick of the bookmark timer; never, for a watch without bookmarks.
async fn tick(timer: Option<&mut tokio::time::Interval>) {
    match timer {
        Some(timer) => {
            timer.tick().await;
        }
        None => std::future::pending().await,
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
    /// The revision of the last event seen, delivered or not: what a BOOKMARK may promise.
    progress: Revision,
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
                self.forward(Arc::new(event)).await?;
            }
        }
        let mut bookmarks = self.options.bookmarks.then(|| {
            let period = BOOKMARK_INTERVAL;
            tokio::time::interval_at(tokio::time::Instant::now() + period, period)
        });
        let mut bookmarked = self.progress;
        loop {
            let received = tokio::select! {
                received = live.recv() => received,
                _ = tick(bookmarks.as_mut()) => {
                    if self.progress > bookmarked {
                        bookmarked = self.progress;
                        self.send(bookmark(self.resource, bookmarked, false)).await?;
                    }
                    continue;
                }
            };
            match received {
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

    /// Sends `event` on when this watch wants it; the live feed's events are shared by every
    /// watch, so only a watch that keeps one pays for its copy.
    async fn forward(&mut self, event: Arc<store::Event>) -> Result<(), Ended> {
        self.progress = self.progress.max(event.entry.revision);
        if event.entry.revision <= self.last || !event.entry.key.starts_with(&self.prefix) {
            return Ok(());
        }
        self.last = event.entry.revision;
        let store::Event {
            kind,
            mut entry,
            prev,
        } = Arc::unwrap_or_clone(event);
        as_served(self.resource, &mut entry.value);
        match translate(&self.options, kind, entry.value, prev.as_ref()) {
            Some(out) => self.send(out).await,
            None => Ok(()),
        }
    }

    async fn send(&self, event: WatchEvent) -> Result<(), Ended> {
        self.tx.send(event).await.map_err(|_| Ended)
    }

    /// Ends the watch with an `ERROR` event carrying the error's `Status`.
    async fn fail(&self, error: store::Error) -> Result<(), Ended> {
        let status = ApiError::from_store(error, &self.resource.qualified(), "").to_status();
        let _ = self
            .send(WatchEvent {
                kind: "ERROR",
                object: status,
            })
            .await;
        Err(Ended)
    }
}

/// Calls `handle` for every change of `resource`'s objects matching `options`, until
/// `shutdown`: first `ADDED` for each listed object, then the watch's events. A watch that ends
/// is resumed from the last revision seen; one whose history is gone (410) is replaced by a new
/// list, and the objects that vanished meanwhile are reported `DELETED`. For in-process
/// components; `handle` must be idempotent, since a new list replays objects as `ADDED`.
pub async fn follow(
    api: &Api,
    resource: &'static Resource,
    options: ListOptions,
    shutdown: &CancellationToken,
    mut handle: impl FnMut(WatchEvent),
) {
    let mut known: HashMap<String, Value> = HashMap::new();
    let mut from = None;
    while !shutdown.is_cancelled() {
        let revision = match from {
            Some(revision) => revision,
            None => match relist(api, resource, &options, &mut known, &mut handle) {
                Ok(revision) => revision,
                Err(error) => {
                    tracing::warn!(%error, resource = resource.plural, "list failed; retrying");
                    if pause(shutdown).await {
                        return;
                    }
                    continue;
                }
            },
        };
        from = Some(revision);
        let watching = ListOptions {
            resource_version: Some(revision),
            ..options.clone()
        };
        let mut events = match api.watch(resource, None, watching, None, shutdown.child_token()) {
            Ok(events) => events,
            Err(ApiError::Gone { .. }) => {
                from = None;
                continue;
            }
            Err(error) => {
                tracing::warn!(%error, resource = resource.plural, "watch failed; retrying");
                if pause(shutdown).await {
                    return;
                }
                continue;
            }
        };
        while let Some(event) = events.recv().await {
            if event.kind == "ERROR" {
                // Fell behind or lost the history it needed: list again.
                tracing::debug!(resource = resource.plural, status = %event.object, "watch ended; relisting");
                from = None;
                break;
            }
            let key = key_of(&event.object);
            if let Some(revision) = revision_of(&event.object) {
                from = Some(revision);
            }
            if event.kind == "DELETED" {
                known.remove(&key);
            } else {
                known.insert(key, event.object.clone());
            }
            handle(event);
        }
    }
}

/// Lists `resource` afresh: `DELETED` for what `known` had that is gone, `ADDED` for what is
/// there; returns the list's revision.
fn relist(
    api: &Api,
    resource: &Resource,
    options: &ListOptions,
    known: &mut HashMap<String, Value>,
    handle: &mut impl FnMut(WatchEvent),
) -> ApiResult<Revision> {
    let mut list = api.list(resource, None, options)?;
    let revision = revision_of(&list)
        .ok_or_else(|| ApiError::Internal("a list without a resourceVersion".into()))?;
    let items = super::objects::take_items(&mut list);
    let listed: HashMap<String, Value> = items.into_iter().map(|i| (key_of(&i), i)).collect();
    for (key, object) in known.drain() {
        if !listed.contains_key(&key) {
            handle(WatchEvent {
                kind: "DELETED",
                object,
            });
        }
    }
    for (key, object) in listed {
        known.insert(key, object.clone());
        handle(WatchEvent {
            kind: "ADDED",
            object,
        });
    }
    Ok(revision)
}

/// Waits a second before trying again; true when `shutdown` came first.
async fn pause(shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_secs(1)) => false,
        _ = shutdown.cancelled() => true,
    }
}

fn key_of(object: &Value) -> String {
    let metadata = &object["metadata"];
    format!(
        "{}/{}",
        metadata["namespace"].as_str().unwrap_or_default(),
        metadata["name"].as_str().unwrap_or_default()
    )
}

fn revision_of(object: &Value) -> Option<Revision> {
    object
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .and_then(|rv| rv.parse().ok())
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

    async fn next(events: &mut mpsc::Receiver<WatchEvent>) -> WatchEvent {
        let limit = Duration::from_secs(60);
        let event = tokio::time::timeout(limit, events.recv()).await;
        event.expect("an event in time").expect("an open watch")
    }

    #[tokio::test]
    async fn a_watch_list_sends_the_state_then_a_bookmark_ending_it_then_the_changes() {
        let (_dir, api) = Api::scratch();
        api.create(&PODS, Some("default"), pod("a")).unwrap();
        let options = ListOptions {
            send_initial_events: Some(true),
            bookmarks: true,
            ..Default::default()
        };
        let token = CancellationToken::new();
        let mut events = api.watch(&PODS, None, options, None, token).unwrap();
        let added = next(&mut events).await;
        assert_eq!(
            (added.kind, &added.object["metadata"]["name"]),
            ("ADDED", &json!("a"))
        );
        let end = next(&mut events).await;
        assert_eq!(end.kind, "BOOKMARK");
        assert_eq!(end.object["kind"], "Pod");
        assert_eq!(end.object["apiVersion"], "v1");
        let metadata = &end.object["metadata"];
        assert_eq!(metadata["annotations"][INITIAL_EVENTS_END], "true");
        let listed = api.current_revision().to_string();
        assert_eq!(metadata["resourceVersion"], json!(listed));
        api.create(&PODS, Some("default"), pod("b")).unwrap();
        let added = next(&mut events).await;
        assert_eq!(
            (added.kind, &added.object["metadata"]["name"]),
            ("ADDED", &json!("b"))
        );
    }

    #[tokio::test]
    async fn send_initial_events_false_watches_from_now_without_the_state() {
        let (_dir, api) = Api::scratch();
        api.create(&PODS, Some("default"), pod("a")).unwrap();
        let options = ListOptions {
            send_initial_events: Some(false),
            ..Default::default()
        };
        let token = CancellationToken::new();
        let mut events = api.watch(&PODS, None, options, None, token).unwrap();
        api.create(&PODS, Some("default"), pod("b")).unwrap();
        let added = next(&mut events).await;
        assert_eq!(added.object["metadata"]["name"], "b");
    }

    #[tokio::test(start_paused = true)]
    async fn a_bookmarking_watch_is_told_the_progress_made_past_objects_it_does_not_see() {
        let (_dir, api) = Api::scratch();
        let options = ListOptions {
            resource_version: Some(api.current_revision()),
            labels: crate::api::selectors::LabelSelector::parse("app=web").unwrap(),
            bookmarks: true,
            ..Default::default()
        };
        let token = CancellationToken::new();
        let mut events = api.watch(&PODS, None, options, None, token).unwrap();
        api.create(&PODS, Some("default"), pod("unlabelled"))
            .unwrap();
        let written = api.current_revision();
        let bookmark = next(&mut events).await;
        assert_eq!(bookmark.kind, "BOOKMARK");
        let progress = &bookmark.object["metadata"]["resourceVersion"];
        assert_eq!(progress, &json!(written.to_string()));
        assert!(bookmark.object["metadata"]["annotations"].is_null());
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

    fn pod(name: &str) -> Value {
        json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "c.wasm"}]}})
    }

    #[test]
    fn a_relist_reports_what_vanished_since_the_last_one_as_deleted() {
        let (_dir, api) = Api::scratch();
        for name in ["a", "b"] {
            api.create(&PODS, Some("default"), pod(name)).unwrap();
        }
        let (mut known, mut seen) = (HashMap::new(), Vec::new());
        let mut handle = |event: WatchEvent| {
            let name = event.object["metadata"]["name"]
                .as_str()
                .unwrap()
                .to_string();
            seen.push((event.kind, name));
        };
        relist(
            &api,
            &PODS,
            &ListOptions::default(),
            &mut known,
            &mut handle,
        )
        .unwrap();
        api.delete(&PODS, Some("default"), "b", &Default::default())
            .unwrap();
        api.create(&PODS, Some("default"), pod("c")).unwrap();
        relist(
            &api,
            &PODS,
            &ListOptions::default(),
            &mut known,
            &mut handle,
        )
        .unwrap();
        seen[..2].sort();
        seen[3..].sort();
        assert_eq!(
            seen,
            [
                ("ADDED", "a".to_string()),
                ("ADDED", "b".to_string()),
                ("DELETED", "b".to_string()),
                ("ADDED", "a".to_string()),
                ("ADDED", "c".to_string()),
            ]
        );
        assert_eq!(known.len(), 2);
    }

    #[tokio::test]
    async fn follow_resumes_from_the_last_revision_without_replaying() {
        let (_dir, api) = Api::scratch();
        api.create(&PODS, Some("default"), pod("a")).unwrap();
        let shutdown = CancellationToken::new();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let follower = {
            let (api, shutdown) = (api.clone(), shutdown.clone());
            tokio::spawn(async move {
                follow(&api, &PODS, ListOptions::default(), &shutdown, |event| {
                    let _ = tx.send((event.kind, event.object["metadata"]["name"].clone()));
                })
                .await
            })
        };
        assert_eq!(rx.recv().await.unwrap(), ("ADDED", json!("a")));
        api.create(&PODS, Some("default"), pod("b")).unwrap();
        assert_eq!(rx.recv().await.unwrap(), ("ADDED", json!("b")));
        api.delete(&PODS, Some("default"), "a", &Default::default())
            .unwrap();
        assert_eq!(rx.recv().await.unwrap(), ("DELETED", json!("a")));
        shutdown.cancel();
        follower.await.unwrap();
    }
}
