//! The reflector's store: the newest version of each object an informer has seen.
//!
//! A controller also writes its own results here (write-through), so its next reconcile never
//! acts on a world older than its own writes: a ReplicaSet that has just created three pods
//! must not see zero and create three more. Versions are ordered by `resourceVersion` (a
//! global counter, DESIGN §3), so a late watch event never overwrites a newer write, and a
//! deletion leaves a tombstone until the watch has caught up with it.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use serde_json::Value;
use tokio::sync::watch;

use crate::api::Revision;

/// Where an object lives: `namespace/name`, or `name` for cluster-scoped objects.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectKey {
    pub fn new(namespace: Option<&str>, name: &str) -> Self {
        Self {
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
        }
    }

    /// The key of a stored object; `None` when it has no name.
    pub fn of(object: &Value) -> Option<Self> {
        let metadata = &object["metadata"];
        let name = metadata["name"].as_str().filter(|n| !n.is_empty())?;
        Some(Self::new(metadata["namespace"].as_str(), name))
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(namespace) => write!(f, "{namespace}/{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// What a change did to the cache; handed to an informer's handler.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    Applied {
        old: Option<Arc<Value>>,
        new: Arc<Value>,
    },
    Deleted(Arc<Value>),
}

impl Change {
    /// The object as it is now (or was last, when deleted).
    pub fn object(&self) -> &Value {
        match self {
            Change::Applied { new, .. } => new,
            Change::Deleted(object) => object,
        }
    }
}

/// The revision an object was written at; 0 when it carries none.
pub fn revision_of(object: &Value) -> Revision {
    object
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .and_then(|rv| rv.parse().ok())
        .unwrap_or(0)
}

#[derive(Default)]
struct Objects {
    live: HashMap<ObjectKey, Arc<Value>>,
    /// Deletions the watch has not delivered yet, with the revision of the delete.
    tombstones: HashMap<ObjectKey, Revision>,
    /// The newest revision the watch has delivered.
    seen: Revision,
}

/// A shared, cheaply cloned cache of one resource's objects.
#[derive(Clone)]
pub struct Cache {
    objects: Arc<RwLock<Objects>>,
    synced: Arc<watch::Sender<bool>>,
}

impl Default for Cache {
    fn default() -> Self {
        Self {
            objects: Arc::default(),
            synced: Arc::new(watch::channel(false).0),
        }
    }
}

impl Cache {
    fn read(&self) -> RwLockReadGuard<'_, Objects> {
        self.objects.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Objects> {
        self.objects.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, key: &ObjectKey) -> Option<Arc<Value>> {
        self.read().live.get(key).cloned()
    }

    pub fn list(&self) -> Vec<Arc<Value>> {
        self.read().live.values().cloned().collect()
    }

    /// The objects of one namespace.
    pub fn list_in(&self, namespace: &str) -> Vec<Arc<Value>> {
        let objects = self.read();
        let in_namespace = |key: &&ObjectKey| key.namespace.as_deref() == Some(namespace);
        objects
            .live
            .iter()
            .filter(|(k, _)| in_namespace(k))
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn len(&self) -> usize {
        self.read().live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records `object` unless the cache already holds a version as new, or a later delete.
    /// Returns the change when it took.
    pub fn apply(&self, object: impl Into<Arc<Value>>) -> Option<Change> {
        let object = object.into();
        let key = ObjectKey::of(&object)?;
        let revision = revision_of(&object);
        let mut objects = self.write();
        if objects
            .tombstones
            .get(&key)
            .is_some_and(|deleted| *deleted >= revision)
        {
            return None;
        }
        if objects
            .live
            .get(&key)
            .is_some_and(|cached| revision_of(cached) >= revision)
        {
            return None;
        }
        objects.tombstones.remove(&key);
        let old = objects.live.insert(key, object.clone());
        Some(Change::Applied { old, new: object })
    }

    /// Forgets the object that `deleted` (stamped with the revision of the delete) removed,
    /// unless the cache holds a newer one under that name. Returns the change when it took.
    pub fn delete(&self, deleted: impl Into<Arc<Value>>) -> Option<Change> {
        let deleted = deleted.into();
        let key = ObjectKey::of(&deleted)?;
        let revision = revision_of(&deleted);
        let mut objects = self.write();
        if objects
            .live
            .get(&key)
            .is_some_and(|cached| revision_of(cached) > revision)
        {
            return None;
        }
        if revision > objects.seen {
            let tombstone = objects.tombstones.entry(key.clone()).or_default();
            *tombstone = (*tombstone).max(revision);
        }
        objects.live.remove(&key).map(|_| Change::Deleted(deleted))
    }

    /// Notes that the watch has delivered everything up to `revision`: tombstones that old can
    /// no longer be overtaken by a late event.
    pub(super) fn advance(&self, revision: Revision) {
        let mut objects = self.write();
        objects.seen = objects.seen.max(revision);
        let seen = objects.seen;
        if !objects.tombstones.is_empty() {
            objects.tombstones.retain(|_, deleted| *deleted > seen);
        }
    }

    /// Replaces the contents with a fresh listing taken at `revision`, keeping what is newer
    /// than it (a write-through the listing predates). Returns a change for every listed object
    /// (a resync) and for every object that vanished.
    pub(super) fn replace(&self, listed: Vec<Value>, revision: Revision) -> Vec<Change> {
        let mut objects = self.write();
        let mut live = HashMap::with_capacity(listed.len());
        let mut changes = Vec::with_capacity(listed.len());
        for object in listed {
            let Some(key) = ObjectKey::of(&object) else {
                continue;
            };
            let old = objects.live.remove(&key);
            let new = match &old {
                Some(cached) if revision_of(cached) > revision_of(&object) => cached.clone(),
                _ => Arc::new(object),
            };
            live.insert(key, new.clone());
            changes.push(Change::Applied { old, new });
        }
        for (key, cached) in objects.live.drain() {
            if revision_of(&cached) > revision {
                live.insert(key, cached);
            } else {
                changes.push(Change::Deleted(cached));
            }
        }
        objects.live = live;
        objects.seen = objects.seen.max(revision);
        let seen = objects.seen;
        objects.tombstones.retain(|_, deleted| *deleted > seen);
        changes
    }

    /// Marks the first listing done.
    pub(super) fn mark_synced(&self) {
        self.synced.send_replace(true);
    }

    pub fn is_synced(&self) -> bool {
        *self.synced.borrow()
    }

    /// Waits until the first listing is in.
    pub async fn wait_synced(&self) {
        let mut synced = self.synced.subscribe();
        let _ = synced.wait_for(|s| *s).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, revision: u64) -> Value {
        json!({"metadata": {"namespace": "default", "name": name, "resourceVersion": revision.to_string()}})
    }

    fn key(name: &str) -> ObjectKey {
        ObjectKey::new(Some("default"), name)
    }

    #[test]
    fn a_late_watch_event_does_not_overwrite_a_newer_write() {
        let cache = Cache::default();
        assert!(cache.apply(pod("a", 5)).is_some());
        assert!(cache.apply(pod("a", 3)).is_none());
        assert!(cache.apply(pod("a", 5)).is_none());
        assert_eq!(revision_of(&cache.get(&key("a")).unwrap()), 5);
    }

    #[test]
    fn a_deleted_object_is_not_revived_by_an_older_event_until_the_watch_catches_up() {
        let cache = Cache::default();
        cache.apply(pod("a", 2));
        assert!(matches!(
            cache.delete(pod("a", 7)),
            Some(Change::Deleted(_))
        ));
        assert!(
            cache.apply(pod("a", 4)).is_none(),
            "event older than the delete"
        );
        cache.advance(7);
        assert!(
            cache.apply(pod("a", 9)).is_some(),
            "recreated after the delete"
        );
    }

    #[test]
    fn a_delete_older_than_the_cached_version_is_ignored() {
        let cache = Cache::default();
        cache.apply(pod("a", 10));
        assert!(cache.delete(pod("a", 8)).is_none());
        assert!(cache.get(&key("a")).is_some());
    }

    #[test]
    fn relisting_reports_vanished_objects_and_keeps_newer_writes() {
        let cache = Cache::default();
        cache.apply(pod("gone", 1));
        cache.apply(pod("kept", 2));
        cache.apply(pod("written", 12));
        let changes = cache.replace(vec![pod("kept", 2), pod("new", 9)], 10);
        let deleted: Vec<_> = changes
            .iter()
            .filter(|c| matches!(c, Change::Deleted(_)))
            .map(|c| c.object()["metadata"]["name"].clone())
            .collect();
        assert_eq!(deleted, [json!("gone")]);
        assert_eq!(changes.len(), 3);
        let mut names: Vec<_> = cache
            .list()
            .iter()
            .map(|o| o["metadata"]["name"].to_string())
            .collect();
        names.sort();
        assert_eq!(names, ["\"kept\"", "\"new\"", "\"written\""]);
    }

    #[test]
    fn keys_read_as_namespace_slash_name() {
        assert_eq!(key("web").to_string(), "default/web");
        assert_eq!(ObjectKey::new(None, "n1").to_string(), "n1");
    }

    #[test]
    fn listing_a_namespace_leaves_out_the_others() {
        let cache = Cache::default();
        cache.apply(pod("a", 1));
        cache.apply(
            json!({"metadata": {"namespace": "other", "name": "b", "resourceVersion": "2"}}),
        );
        assert_eq!(cache.list_in("default").len(), 1);
        assert_eq!(cache.len(), 2);
    }
}
