//! The embedded store: one SQLite file in WAL mode, history kept for watches and compacted.
//!
//! Writers queue their changes; one of them at a time commits everything queued in one
//! transaction and one sync (`committer`, `transaction`), and only then are the changes applied
//! to the in-memory objects readers see and sent to watchers. History is compacted in the
//! background (`compactor`) and read back for watches a page at a time (`history`).

mod committer;
mod compactor;
mod history;
mod rows;
mod transaction;

use committer::Committer;
use compactor::Compactor;
use history::{HistoryPages, Pins, Readers};
use transaction::Intent;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock, RwLockReadGuard};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde_json::Value;
use tokio::sync::broadcast;

use super::{Entry, Error, Event, Listing, Result, Revision, Store, Watch};

/// How many events the live feed buffers before a slow watcher lags and has lost events.
const LIVE_FEED_CAPACITY: usize = 8192;
/// How many revisions of history are kept for watches; older ones answer 410 Gone.
pub const DEFAULT_HISTORY: u64 = 20_000;

/// How to open a [`SqliteStore`].
#[derive(Clone, Debug)]
pub struct SqliteOptions {
    /// Revisions of history kept for watches; older ones answer 410 Gone.
    pub history: u64,
    /// The SQLite VFS to open the file with; `None` for the platform's. Tests name one that
    /// drops unsynced writes to simulate a power loss.
    pub vfs: Option<String>,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            history: DEFAULT_HISTORY,
            vfs: None,
        }
    }
}

/// A `Store` over one SQLite file.
pub struct SqliteStore {
    shared: Arc<Shared>,
    // Declared before the compactor, whose thread ends once the committer's nudge is dropped.
    committer: Committer,
    _compactor: Compactor,
}

/// What the committer, the compactor and the readers share.
struct Shared {
    visible: RwLock<Visible>,
    feed: broadcast::Sender<Arc<Event>>,
    /// History at or below this revision may be gone. Raised (under `pins`) before rows are
    /// deleted, so a history reader that finds it at or below its position knows its page was
    /// complete.
    compacted: AtomicU64,
    /// The open watch backlogs' positions, which compaction keeps.
    pins: Mutex<Pins>,
    history: u64,
    /// Why the store refuses writes, once a commit could not be made durable.
    stopped: OnceLock<String>,
    readers: Readers,
}

/// What readers see: only what is on disk.
struct Visible {
    /// Every current object, as in the `objects` table: reads never touch SQLite nor parse
    /// JSON (Kubernetes' API server keeps a watch cache for the same reason).
    objects: BTreeMap<String, Arc<Entry>>,
    revision: Revision,
}

/// The file and VFS every connection of one store opens.
#[derive(Clone)]
struct Location {
    path: PathBuf,
    vfs: Option<String>,
}

impl SqliteStore {
    /// Opens (or creates) the store file at `path`.
    ///
    /// # Errors
    /// `Backend` when the file cannot be opened or its schema created.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// Like `open`, keeping `history` revisions for watches.
    pub fn open_with_history(path: &Path, history: u64) -> Result<Self> {
        Self::open_with(
            path,
            SqliteOptions {
                history,
                ..SqliteOptions::default()
            },
        )
    }

    /// Like `open`, with `options`.
    pub fn open_with(path: &Path, options: SqliteOptions) -> Result<Self> {
        let location = Location {
            path: path.to_path_buf(),
            vfs: options.vfs,
        };
        let conn = location.connect(OpenFlags::default())?;
        // WAL with synchronous=FULL: a commit returns once the log is synced. Every write queued
        // meanwhile goes into the next transaction, so writers share that sync.
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=FULL;
             CREATE TABLE IF NOT EXISTS objects (key TEXT PRIMARY KEY, value TEXT NOT NULL, revision INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS events (revision INTEGER PRIMARY KEY, key TEXT NOT NULL, deleted INTEGER NOT NULL, value TEXT NOT NULL, prev TEXT);
             CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);",
        )
        .map_err(backend)?;
        let revision = read_meta(&conn, "revision")?;
        let (feed, _) = broadcast::channel(LIVE_FEED_CAPACITY);
        let shared = Arc::new(Shared {
            visible: RwLock::new(Visible {
                objects: rows::read_objects(&conn)?,
                revision,
            }),
            feed,
            compacted: AtomicU64::new(read_meta(&conn, "compacted")?),
            pins: Mutex::default(),
            history: options.history.max(1),
            stopped: OnceLock::new(),
            readers: Readers::new(location.clone()),
        });
        let compactor = Compactor::start(location.connect(OpenFlags::default())?, shared.clone())?;
        let committer = Committer::new(conn, shared.clone(), revision, compactor.nudger());
        Ok(Self {
            shared,
            committer,
            _compactor: compactor,
        })
    }

    /// Submits one write and returns its answer.
    fn write_one(&self, intent: Intent) -> Result<Entry> {
        let mut answers = self.committer.submit(vec![intent])?;
        let answer = answers.pop().expect("one answer per intent");
        answer.map(Arc::unwrap_or_clone)
    }

    /// Submits writes that commit together and returns their answers in order.
    fn write_all(&self, intents: Vec<Intent>) -> Result<Vec<Result<Entry>>> {
        let answers = self.committer.submit(intents)?;
        Ok(answers
            .into_iter()
            .map(|answer| answer.map(Arc::unwrap_or_clone))
            .collect())
    }

    #[cfg(test)]
    fn waiting_writes(&self) -> usize {
        self.committer.waiting()
    }
}

impl Shared {
    fn visible(&self) -> RwLockReadGuard<'_, Visible> {
        self.visible.read().unwrap_or_else(|p| p.into_inner())
    }

    fn pins(&self) -> MutexGuard<'_, Pins> {
        self.pins.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Location {
    fn connect(&self, flags: OpenFlags) -> Result<Connection> {
        let conn = match &self.vfs {
            Some(vfs) => Connection::open_with_flags_and_vfs(&self.path, flags, vfs.as_str()),
            None => Connection::open_with_flags(&self.path, flags),
        }
        .map_err(backend)?;
        // The committer and the compactor take turns at SQLite's write lock: wait for the other
        // in short steps, not SQLite's default sleeps of up to 100 ms.
        conn.busy_handler(Some(wait_briefly)).map_err(backend)?;
        Ok(conn)
    }
}

/// SQLite's busy handler: sleeps 100 µs per attempt, giving up after about five seconds.
fn wait_briefly(attempt: i32) -> bool {
    std::thread::sleep(Duration::from_micros(100));
    attempt < 50_000
}

impl Store for SqliteStore {
    fn get(&self, key: &str) -> Result<Option<Entry>> {
        let entry = self.shared.visible().objects.get(key).cloned();
        Ok(entry.map(Arc::unwrap_or_clone))
    }

    fn list(&self, prefix: &str) -> Result<Listing> {
        let visible = self.shared.visible();
        let entries = visible
            .objects
            .range(prefix.to_string()..prefix_end(prefix))
            .map(|(_, entry)| entry.clone())
            .collect();
        Ok(Listing {
            entries,
            revision: visible.revision,
        })
    }

    fn create(&self, key: &str, value: Value) -> Result<Entry> {
        self.write_one(Intent::Create {
            key: key.to_string(),
            value,
        })
    }

    fn create_many(&self, objects: Vec<(String, Value)>) -> Result<Vec<Result<Entry>>> {
        self.write_all(
            objects
                .into_iter()
                .map(|(key, value)| Intent::Create { key, value })
                .collect(),
        )
    }

    fn update_many(&self, updates: Vec<(String, Value, Revision)>) -> Result<Vec<Result<Entry>>> {
        self.write_all(
            updates
                .into_iter()
                .map(|(key, value, expected)| Intent::Update {
                    key,
                    value,
                    expected,
                })
                .collect(),
        )
    }

    fn update(&self, key: &str, value: Value, expected: Revision) -> Result<Entry> {
        self.write_one(Intent::Update {
            key: key.to_string(),
            value,
            expected,
        })
    }

    fn delete(&self, key: &str, expected: Option<Revision>) -> Result<Entry> {
        self.write_one(Intent::Delete {
            key: key.to_string(),
            expected,
        })
    }

    fn watch(&self, prefix: &str, after: Revision) -> Result<Watch> {
        // Under the read lock, which publishing takes to write: no event falls between the
        // backlog's end and the live feed's start. Under `pins`: compaction either sees this
        // backlog's pin or has raised `compacted` before it is checked here.
        let visible = self.shared.visible();
        let mut pins = self.shared.pins();
        let compacted = self.shared.compacted.load(Ordering::SeqCst);
        if after < compacted {
            return Err(Error::Compacted {
                requested: after,
                oldest: compacted,
            });
        }
        let live = self.shared.feed.subscribe();
        let range = (after, visible.revision);
        let backlog = HistoryPages::pinned(self.shared.clone(), &mut pins, prefix, range);
        Ok(Watch {
            backlog: Box::new(backlog),
            live,
        })
    }

    fn current_revision(&self) -> Revision {
        self.shared.visible().revision
    }
}

/// The smallest string greater than every string starting with `prefix`.
fn prefix_end(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

fn read_meta(conn: &Connection, name: &str) -> Result<Revision> {
    let value: Option<i64> = conn
        .query_row(
            "SELECT value FROM meta WHERE name = ?1",
            params![name],
            |row| row.get(0),
        )
        .optional()
        .map_err(backend)?;
    Ok(value.unwrap_or(0) as Revision)
}

fn parse(text: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| Error::Backend(format!("corrupt stored object: {e}")))
}

fn backend(error: rusqlite::Error) -> Error {
    Error::Backend(error.to_string())
}

#[cfg(test)]
mod durability_tests;
#[cfg(test)]
mod tests;
