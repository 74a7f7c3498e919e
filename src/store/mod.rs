//! The object store: keys to JSON objects with a global revision, compare-and-swap writes and watch history.
//!
//! Keys look like `/core/pods/default/web-1`; the store knows nothing of kinds except that it
//! writes `metadata.resourceVersion` (the revision of the write) into every object it keeps.

mod offload;
mod sqlite;

pub use sqlite::{DEFAULT_HISTORY, SqliteOptions, SqliteStore};

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::broadcast;

/// A global, strictly increasing write counter; the decimal form is `metadata.resourceVersion`.
pub type Revision = u64;

/// One stored object and the revision of its last write.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub key: String,
    pub value: Value,
    pub revision: Revision,
}

/// A change, as watchers see it. `prev` is the object before the change (absent on create).
#[derive(Clone, Debug)]
pub struct Event {
    pub kind: EventKind,
    pub entry: Entry,
    pub prev: Option<Value>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Put,
    Delete,
}

/// The objects under a prefix at one revision, shared with the store: a reader copies only
/// what it keeps.
#[derive(Debug)]
pub struct Listing {
    pub entries: Vec<Arc<Entry>>,
    pub revision: Revision,
}

/// The history part of a watch, read a page at a time: a watch from far back neither holds the
/// store's lock while its history is read nor keeps that history in memory.
pub trait Backlog: Send {
    /// The next events in revision order; an empty page once the backlog is exhausted.
    ///
    /// May block (it reads the disk); the SQLite store moves that off the async workers itself.
    ///
    /// # Errors
    /// `Compacted` when compaction removed history this backlog had not read yet, which it does
    /// only once the watch has fallen further behind than its live feed holds.
    fn next_page(&mut self) -> Result<Vec<Event>>;
}

/// A watch: the history after the requested revision, then the live feed.
///
/// # Guarantees
/// `backlog` and `live` together hold every event after the requested revision exactly once and
/// in order: the backlog ends at the revision current when the watch opened, the live feed starts
/// after it. `live` carries events of every key; callers filter by prefix. It buffers a bounded
/// number of events: a receiver that falls further behind gets `Lagged` and has lost events.
/// Live events are shared between the receivers: a receiver copies only those it keeps.
/// Until then, the history the backlog has still to read is kept from compaction, so a watch
/// opened from the oldest kept revision is not cut off by the window moving on.
pub struct Watch {
    pub backlog: Box<dyn Backlog>,
    pub live: broadcast::Receiver<Arc<Event>>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("key {0} already exists")]
    AlreadyExists(String),
    #[error("key {0} not found")]
    NotFound(String),
    #[error("conflict on {key}: expected revision {expected}, found {actual}")]
    Conflict {
        key: String,
        expected: Revision,
        actual: Revision,
    },
    #[error("revision {requested} has been compacted (oldest kept is {oldest})")]
    Compacted {
        requested: Revision,
        oldest: Revision,
    },
    #[error("storage failed: {0}")]
    Backend(String),
    /// A commit could not be made durable; the store refuses writes until it is reopened.
    #[error(
        "the store refuses writes since a commit failed ({0}); restart to recover from the log"
    )]
    Stopped(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// The contract every backend (SQLite, etcd) keeps.
///
/// # Guarantees
/// - Durable before visible: a write returns only once it is on disk, and no reader (`get`,
///   `list`, `watch`, `current_revision`) sees it before then. After a crash or a power loss
///   the store therefore holds every revision anyone could have seen, and the revision counter
///   never goes back below one of them.
/// - Every write gets a revision greater than every earlier one. `update` and `delete` with an
///   expected revision fail with `Conflict` if the key changed since.
/// - When a commit cannot be made durable the store stops: that write fails with `Backend`
///   (its outcome is unknown), every later write with `Stopped`; reads keep answering with what
///   was durable. Reopening recovers from the log.
/// - Methods block (disk, waiting for a sync), but not a multi-thread runtime: called on one of
///   its workers, they first hand the worker's other tasks to another thread, so two writers
///   waiting for the disk do not stall the API, the controllers and the node. (A current-thread
///   runtime has no other thread; it waits.)
/// - Reads copy what they return outside any lock writers take.
pub trait Store: Send + Sync + 'static {
    fn get(&self, key: &str) -> Result<Option<Entry>>;
    fn list(&self, prefix: &str) -> Result<Listing>;
    fn create(&self, key: &str, value: Value) -> Result<Entry>;
    /// Creates several objects in one transaction (one sync to disk): each either exists
    /// already (`AlreadyExists` in its place) or is created with its own revision.
    ///
    /// # Errors
    /// When the transaction fails; then nothing is written.
    fn create_many(&self, objects: Vec<(String, Value)>) -> Result<Vec<Result<Entry>>>;
    fn update(&self, key: &str, value: Value, expected: Revision) -> Result<Entry>;
    /// Compare-and-swap updates in one transaction (one sync to disk): each is applied, or
    /// refused (`NotFound`, `Conflict`) in its place.
    ///
    /// # Errors
    /// When the transaction fails; then nothing is written.
    fn update_many(&self, updates: Vec<(String, Value, Revision)>) -> Result<Vec<Result<Entry>>>;
    fn delete(&self, key: &str, expected: Option<Revision>) -> Result<Entry>;
    /// Events on keys under `prefix` with a revision greater than `after`.
    ///
    /// # Errors
    /// `Compacted` when history after `after` is no longer kept.
    fn watch(&self, prefix: &str, after: Revision) -> Result<Watch>;
    fn current_revision(&self) -> Revision;
}

/// Writes the revision into the object as `metadata.resourceVersion`.
pub(crate) fn stamp_revision(value: &mut Value, revision: Revision) {
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert(
            "resourceVersion".into(),
            Value::String(revision.to_string()),
        );
    }
}
