//! Informers: list, then watch one resource, keeping a `Cache` in step and reporting each change.
//!
//! The watcher is a state machine (`State`): list everything, watch from the listing's revision,
//! resume a watch that ends from the last revision seen, and list again when the API answers
//! 410 Gone or an `ERROR` event (the history it needed has been compacted).
//!
//! Every watch event is reported, also one the cache already holds a newer version of (from a
//! controller's write-through): the watch is what wakes controllers, the cache what they read.
//! A reconcile that wrote status may have read the spec before the change this event carries.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::cache::{Cache, Change, revision_of};
use crate::api::watch::WatchEvent;
use crate::api::{ApiError, Resource, Revision};
use crate::client::control_plane::{ControlPlane, EventStream};

/// How long to wait before trying again after a list or watch failed for another reason than 410.
const RETRY: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("listing {resource} failed: {source}")]
    ListFailed {
        resource: &'static str,
        #[source]
        source: ApiError,
    },
    #[error("listing {resource} answered no resourceVersion")]
    ListUnversioned { resource: &'static str },
    #[error("watching {resource} after revision {from} failed: {source}")]
    WatchFailed {
        resource: &'static str,
        from: Revision,
        #[source]
        source: ApiError,
    },
}

/// Where the watcher is.
enum State {
    /// Nothing trusted: list, then watch.
    Empty,
    /// Open a watch for the changes after `from`.
    Resume { from: Revision },
    /// Reading a watch; `from` is the last revision delivered.
    Watching { events: EventStream, from: Revision },
}

/// Keeps a cache of one resource (all namespaces) in step with the API, in process or, on a
/// joined node, over the network.
pub struct Informer {
    api: ControlPlane,
    resource: &'static Resource,
    cache: Cache,
}

impl Informer {
    pub fn new(api: impl Into<ControlPlane>, resource: &'static Resource) -> Self {
        Self {
            api: api.into(),
            resource,
            cache: Cache::default(),
        }
    }

    /// The cache this informer fills; clones share it.
    pub fn cache(&self) -> Cache {
        self.cache.clone()
    }

    /// Lists and watches until `shutdown`, calling `on_change` for every change the cache takes:
    /// each object of every (re)listing, then each event of the watch.
    pub async fn run(self, shutdown: CancellationToken, mut on_change: impl FnMut(&Change)) {
        let mut state = State::Empty;
        while !shutdown.is_cancelled() {
            let failed = match self.step(state, &shutdown, &mut on_change).await {
                Ok(next) => {
                    state = next;
                    continue;
                }
                Err((next, error)) => {
                    state = next;
                    error
                }
            };
            tracing::warn!(error = %failed, "informer: retrying in {RETRY:?}");
            tokio::select! {
                _ = tokio::time::sleep(RETRY) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }

    /// One transition. On failure, the state to retry from (after a pause) and why.
    async fn step(
        &self,
        state: State,
        shutdown: &CancellationToken,
        on_change: &mut impl FnMut(&Change),
    ) -> Result<State, (State, Error)> {
        match state {
            State::Empty => match self.relist().await {
                Ok((changes, from)) => {
                    changes.iter().for_each(&mut *on_change);
                    self.cache.mark_synced();
                    Ok(State::Resume { from })
                }
                Err(error) => Err((State::Empty, error)),
            },
            State::Resume { from } => {
                let from_text = from.to_string();
                match self
                    .api
                    .watch(self.resource, "", &from_text, shutdown)
                    .await
                {
                    Ok(events) => Ok(State::Watching { events, from }),
                    Err(ApiError::Gone { .. }) => Ok(State::Empty),
                    Err(source) => Err((State::Resume { from }, self.watch_failed(from, source))),
                }
            }
            State::Watching { mut events, from } => {
                let event = tokio::select! {
                    event = events.next() => event,
                    _ = shutdown.cancelled() => return Ok(State::Resume { from }),
                };
                match event {
                    None => Ok(State::Resume { from }),
                    Some(Err(error)) => {
                        tracing::debug!(resource = self.resource.plural, %error, "watch failed; relisting");
                        Ok(State::Empty)
                    }
                    Some(Ok(event)) if event.kind == "ERROR" => {
                        tracing::debug!(resource = self.resource.plural, status = %event.object, "watch error; relisting");
                        Ok(State::Empty)
                    }
                    Some(Ok(event)) => {
                        let from = from.max(revision_of(&event.object));
                        on_change(&self.observe(event));
                        self.cache.advance(from);
                        Ok(State::Watching { events, from })
                    }
                }
            }
        }
    }

    /// Takes the event into the cache; returns the change it made, or, when the cache already
    /// has something newer, the event itself.
    fn observe(&self, event: WatchEvent) -> Change {
        let object = Arc::new(event.object);
        match event.kind {
            "DELETED" => self
                .cache
                .delete(object.clone())
                .unwrap_or(Change::Deleted(object)),
            _ => self.cache.apply(object.clone()).unwrap_or(Change::Applied {
                old: None,
                new: object,
            }),
        }
    }

    /// Lists every object; the cache takes the listing. Returns the changes and its revision.
    async fn relist(&self) -> Result<(Vec<Change>, Revision), Error> {
        let resource = self.resource.plural;
        let (items, version) = self
            .api
            .list(self.resource, "")
            .await
            .map_err(|source| Error::ListFailed { resource, source })?;
        let revision = version
            .parse()
            .map_err(|_| Error::ListUnversioned { resource })?;
        Ok((self.cache.replace(items, revision), revision))
    }

    fn watch_failed(&self, from: Revision, source: ApiError) -> Error {
        Error::WatchFailed {
            resource: self.resource.plural,
            from,
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::cache::ObjectKey;
    use super::*;
    use crate::api::Api;
    use crate::api::kinds::PODS;
    use crate::api::{DeleteOptions, Part};
    use serde_json::json;
    use tokio::sync::mpsc;

    fn api(history: u64) -> (tempfile::TempDir, Arc<Api>) {
        Api::scratch_with_history(history)
    }

    fn create_pod(api: &Api, name: &str) -> serde_json::Value {
        let pod = json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "c.wasm"}]}});
        api.create(&PODS, Some("default"), pod).unwrap()
    }

    async fn step(informer: &Informer, state: State, changes: &mut Vec<Change>) -> State {
        let shutdown = CancellationToken::new();
        match informer
            .step(state, &shutdown, &mut |c| changes.push(c.clone()))
            .await
        {
            Ok(next) => next,
            Err((_, error)) => panic!("{error}"),
        }
    }

    #[tokio::test]
    async fn the_cache_follows_creates_updates_and_deletes() {
        let (_dir, api) = api(1000);
        create_pod(&api, "before");
        let informer = Informer::new(api.clone(), &PODS);
        let cache = informer.cache();
        let shutdown = CancellationToken::new();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let task =
            tokio::spawn(informer.run(shutdown.clone(), move |c| tx.send(c.clone()).unwrap()));
        cache.wait_synced().await;
        assert_eq!(cache.len(), 1);
        let mut pod = create_pod(&api, "after");
        pod["metadata"]["labels"] = json!({"a": "b"});
        api.update(&PODS, Some("default"), "after", pod, Part::Main)
            .unwrap();
        api.delete(&PODS, Some("default"), "before", &DeleteOptions::default())
            .unwrap();
        let mut kinds = Vec::new();
        while kinds.len() < 4 {
            let change = tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .unwrap()
                .unwrap();
            kinds.push(matches!(change, Change::Applied { .. }));
        }
        assert_eq!(kinds, [true, true, true, false]);
        let key = ObjectKey::new(Some("default"), "after");
        assert_eq!(cache.get(&key).unwrap()["metadata"]["labels"]["a"], "b");
        assert_eq!(cache.len(), 1);
        shutdown.cancel();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn an_error_event_makes_it_relist_and_report_what_vanished_meanwhile() {
        let (_dir, api) = api(1000);
        let informer = Informer::new(api.clone(), &PODS);
        let mut changes = Vec::new();
        let state = step(&informer, State::Empty, &mut changes).await;
        assert!(matches!(state, State::Resume { .. }));
        let doomed = create_pod(&api, "doomed");
        informer.cache.apply(doomed);
        api.delete(&PODS, Some("default"), "doomed", &DeleteOptions::default())
            .unwrap();

        let error = WatchEvent {
            kind: "ERROR",
            object: json!({"kind": "Status", "code": 410}),
        };
        let events: EventStream = Box::pin(futures::stream::iter([Ok(error)]));
        let state = step(&informer, State::Watching { events, from: 1 }, &mut changes).await;
        assert!(matches!(state, State::Empty));
        changes.clear();
        step(&informer, state, &mut changes).await;
        assert!(
            matches!(changes.as_slice(), [Change::Deleted(pod)] if pod["metadata"]["name"] == "doomed")
        );
        assert!(informer.cache.is_empty());
    }

    /// Regression: a status write made while the spec changed took the new spec into the cache,
    /// the spec's own event was then dropped as stale, and the ReplicaSet never scaled.
    #[tokio::test]
    async fn an_event_older_than_a_write_through_is_still_reported() {
        let (_dir, api) = api(1000);
        let informer = Informer::new(api.clone(), &PODS);
        let mut changes = Vec::new();
        let state = step(&informer, State::Empty, &mut changes).await;
        let State::Resume { from } = state else {
            panic!("listed, so resuming")
        };
        let created = create_pod(&api, "p");
        let mut labelled = created.clone();
        labelled["metadata"]["labels"] = json!({"a": "b"});
        let newer = api
            .update(&PODS, Some("default"), "p", labelled, Part::Main)
            .unwrap();
        informer.cache.apply(newer.clone());
        let state = step(&informer, State::Resume { from }, &mut changes).await;
        changes.clear();
        step(&informer, state, &mut changes).await;
        assert!(matches!(changes.as_slice(), [Change::Applied { new, .. }] if **new == created));
        let cached = informer
            .cache
            .get(&ObjectKey::new(Some("default"), "p"))
            .unwrap();
        assert_eq!(*cached, newer, "the cache keeps the newer version");
    }

    #[tokio::test]
    async fn resuming_from_compacted_history_starts_over_with_a_list() {
        let (_dir, api) = api(5);
        let informer = Informer::new(api.clone(), &PODS);
        for i in 0..20 {
            create_pod(&api, &format!("p{i}"));
        }
        let state = step(&informer, State::Resume { from: 1 }, &mut Vec::new()).await;
        assert!(matches!(state, State::Empty));
        let mut changes = Vec::new();
        step(&informer, state, &mut changes).await;
        assert_eq!(changes.len(), 20);
        assert!(informer.cache.is_synced());
    }
}
