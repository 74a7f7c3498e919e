//! The embedded store: one SQLite file in WAL mode, history kept for watches and compacted.

mod durability;
mod rows;

use durability::Durability;
use rows::{Change, read_objects, write_change};

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;
use tokio::sync::broadcast;

use super::{Entry, Error, Event, EventKind, Listing, Result, Revision, Store, Watch};

/// How many events the live feed buffers before a slow watcher lags and must re-open.
const LIVE_FEED_CAPACITY: usize = 8192;
/// How many revisions of history are kept for watches; older ones answer 410 Gone.
pub const DEFAULT_HISTORY: u64 = 20_000;
/// Compaction runs once this many writes (or the history length, if smaller) have gone by.
const COMPACT_EVERY: u64 = 1_000;

/// A `Store` over one SQLite file.
pub struct SqliteStore {
    inner: Mutex<Inner>,
    durability: Durability,
    feed: broadcast::Sender<Event>,
    history: u64,
}

struct Inner {
    conn: Connection,
    /// Every current object, as in the `objects` table: reads never touch SQLite nor parse
    /// JSON (Kubernetes' API server keeps a watch cache for the same reason).
    objects: BTreeMap<String, Entry>,
    revision: Revision,
    compacted: Revision,
    writes_since_compaction: u64,
}

impl SqliteStore {
    /// Opens (or creates) the store file at `path`.
    ///
    /// # Errors
    /// `Backend` when the file cannot be opened or its schema created.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with_history(path, DEFAULT_HISTORY)
    }

    /// Like `open`, keeping `history` revisions for watches.
    pub fn open_with_history(path: &Path, history: u64) -> Result<Self> {
        let conn = Connection::open(path).map_err(backend)?;
        // WAL with synchronous=NORMAL, plus our own sync of the WAL after each commit (see
        // `durability`): a write is on disk before it is acknowledged, as with FULL, but the
        // sync happens outside the store's lock and one sync covers every write before it.
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=NORMAL;
             PRAGMA busy_timeout=5000;
             CREATE TABLE IF NOT EXISTS objects (key TEXT PRIMARY KEY, value TEXT NOT NULL, revision INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS events (revision INTEGER PRIMARY KEY, key TEXT NOT NULL, deleted INTEGER NOT NULL, value TEXT NOT NULL, prev TEXT);
             CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);",
        )
        .map_err(backend)?;
        let revision = read_meta(&conn, "revision")?;
        let compacted = read_meta(&conn, "compacted")?;
        let objects = read_objects(&conn)?;
        let (feed, _) = broadcast::channel(LIVE_FEED_CAPACITY);
        Ok(Self {
            durability: Durability::new(&wal_path(path), revision),
            inner: Mutex::new(Inner {
                conn,
                objects,
                revision,
                compacted,
                writes_since_compaction: 0,
            }),
            feed,
            history: history.max(1),
        })
    }

    /// Runs a write under the lock, then returns once it is on disk.
    fn write<T>(&self, change: impl FnOnce(&mut Inner) -> Result<T>) -> Result<T> {
        let (outcome, revision) = {
            let mut inner = self.lock();
            let outcome = change(&mut inner)?;
            (outcome, inner.revision)
        };
        self.durability
            .sync_through(revision, || self.lock().revision)?;
        Ok(outcome)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Writes one change in a transaction and announces it. `value` is `None` for a delete.
    fn commit(
        &self,
        inner: &mut Inner,
        key: &str,
        value: Option<Value>,
        prev: Option<Value>,
    ) -> Result<Event> {
        let change = Change {
            key: key.to_string(),
            value,
            prev,
        };
        let mut events = self.commit_all(inner, vec![change])?;
        Ok(events.remove(0))
    }

    /// Writes changes in one transaction — one sync to disk for all — and announces them in
    /// order, each with its own revision.
    fn commit_all(&self, inner: &mut Inner, changes: Vec<Change>) -> Result<Vec<Event>> {
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        let tx = inner.conn.transaction().map_err(backend)?;
        let mut events = Vec::with_capacity(changes.len());
        let mut revision = inner.revision;
        for change in changes {
            revision += 1;
            events.push(write_change(&tx, change, revision)?);
        }
        tx.prepare_cached(
            "INSERT INTO meta (name, value) VALUES ('revision', ?1)
             ON CONFLICT(name) DO UPDATE SET value = ?1",
        )
        .and_then(|mut s| s.execute(params![revision as i64]))
        .map_err(backend)?;
        tx.commit().map_err(backend)?;
        inner.revision = revision;
        for event in &events {
            match event.kind {
                EventKind::Put => inner
                    .objects
                    .insert(event.entry.key.clone(), event.entry.clone()),
                EventKind::Delete => inner.objects.remove(&event.entry.key),
            };
        }
        inner.writes_since_compaction += events.len() as u64;
        if inner.writes_since_compaction >= COMPACT_EVERY.min(self.history) {
            self.compact(inner)?;
        }
        for event in &events {
            // Nobody listening is fine: the event is in the history table.
            let _ = self.feed.send(event.clone());
        }
        Ok(events)
    }

    /// Drops history older than the kept window so the file does not grow without bound.
    fn compact(&self, inner: &mut Inner) -> Result<()> {
        let keep_from = inner.revision.saturating_sub(self.history);
        if keep_from <= inner.compacted {
            return Ok(());
        }
        inner
            .conn
            .execute(
                "DELETE FROM events WHERE revision <= ?1",
                params![keep_from as i64],
            )
            .map_err(backend)?;
        inner
            .conn
            .execute(
                "INSERT INTO meta (name, value) VALUES ('compacted', ?1)
                 ON CONFLICT(name) DO UPDATE SET value = ?1",
                params![keep_from as i64],
            )
            .map_err(backend)?;
        inner.compacted = keep_from;
        inner.writes_since_compaction = 0;
        Ok(())
    }

    fn current(inner: &Inner, key: &str) -> Result<Option<Entry>> {
        Ok(inner.objects.get(key).cloned())
    }
}

impl Store for SqliteStore {
    fn get(&self, key: &str) -> Result<Option<Entry>> {
        Self::current(&self.lock(), key)
    }

    fn list(&self, prefix: &str) -> Result<Listing> {
        let inner = self.lock();
        let entries = inner
            .objects
            .range(prefix.to_string()..prefix_end(prefix))
            .map(|(_, entry)| entry.clone())
            .collect();
        Ok(Listing {
            entries,
            revision: inner.revision,
        })
    }

    fn create(&self, key: &str, value: Value) -> Result<Entry> {
        self.write(|inner| {
            if Self::current(inner, key)?.is_some() {
                return Err(Error::AlreadyExists(key.to_string()));
            }
            Ok(self.commit(inner, key, Some(value), None)?.entry)
        })
    }

    fn create_many(&self, objects: Vec<(String, Value)>) -> Result<Vec<Result<Entry>>> {
        self.write(|inner| {
            let mut outcomes = Vec::with_capacity(objects.len());
            let mut changes = Vec::new();
            for (key, value) in objects {
                let taken = inner.objects.contains_key(&key)
                    || changes.iter().any(|c: &Change| c.key == key);
                outcomes.push(taken.then(|| Error::AlreadyExists(key.clone())));
                if !taken {
                    changes.push(Change {
                        key,
                        value: Some(value),
                        prev: None,
                    });
                }
            }
            let mut created = self.commit_all(inner, changes)?.into_iter();
            Ok(outcomes
                .into_iter()
                .map(|refused| match refused {
                    Some(error) => Err(error),
                    None => Ok(created.next().expect("one event per change").entry),
                })
                .collect())
        })
    }

    fn update_many(&self, updates: Vec<(String, Value, Revision)>) -> Result<Vec<Result<Entry>>> {
        self.write(|inner| {
            let mut outcomes = Vec::with_capacity(updates.len());
            let mut changes: Vec<Change> = Vec::new();
            for (key, value, expected) in updates {
                let current = inner.objects.get(&key);
                let refused = match current {
                    None => Some(Error::NotFound(key.clone())),
                    Some(_) if changes.iter().any(|c| c.key == key) => Some(Error::Conflict {
                        key: key.clone(),
                        expected,
                        actual: expected + 1,
                    }),
                    Some(entry) if entry.revision != expected => Some(Error::Conflict {
                        key: key.clone(),
                        expected,
                        actual: entry.revision,
                    }),
                    Some(_) => None,
                };
                if refused.is_none() {
                    let prev = current.map(|entry| entry.value.clone());
                    changes.push(Change {
                        key,
                        value: Some(value),
                        prev,
                    });
                }
                outcomes.push(refused);
            }
            let mut updated = self.commit_all(inner, changes)?.into_iter();
            Ok(outcomes
                .into_iter()
                .map(|refused| match refused {
                    Some(error) => Err(error),
                    None => Ok(updated.next().expect("one event per change").entry),
                })
                .collect())
        })
    }

    fn update(&self, key: &str, value: Value, expected: Revision) -> Result<Entry> {
        self.write(|inner| {
            let current =
                Self::current(inner, key)?.ok_or_else(|| Error::NotFound(key.to_string()))?;
            if current.revision != expected {
                return Err(Error::Conflict {
                    key: key.to_string(),
                    expected,
                    actual: current.revision,
                });
            }
            Ok(self
                .commit(inner, key, Some(value), Some(current.value))?
                .entry)
        })
    }

    fn delete(&self, key: &str, expected: Option<Revision>) -> Result<Entry> {
        self.write(|inner| {
            let current =
                Self::current(inner, key)?.ok_or_else(|| Error::NotFound(key.to_string()))?;
            if let Some(expected) = expected.filter(|e| *e != current.revision) {
                return Err(Error::Conflict {
                    key: key.to_string(),
                    expected,
                    actual: current.revision,
                });
            }
            Ok(self.commit(inner, key, None, Some(current.value))?.entry)
        })
    }

    fn watch(&self, prefix: &str, after: Revision) -> Result<Watch> {
        // Holding the lock while reading history and subscribing: no write can fall between.
        let inner = self.lock();
        if after < inner.compacted {
            return Err(Error::Compacted {
                requested: after,
                oldest: inner.compacted,
            });
        }
        let live = self.feed.subscribe();
        let mut stmt = inner
            .conn
            .prepare_cached(
                "SELECT revision, key, deleted, value, prev FROM events
                 WHERE revision > ?1 AND key >= ?2 AND key < ?3 ORDER BY revision",
            )
            .map_err(backend)?;
        let rows = stmt
            .query_map(params![after as i64, prefix, prefix_end(prefix)], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, bool>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, Option<String>>(4)?,
                ))
            })
            .map_err(backend)?;
        let mut backlog = Vec::new();
        for row in rows {
            let (revision, key, deleted, text, prev) = row.map_err(backend)?;
            backlog.push(Event {
                kind: if deleted {
                    EventKind::Delete
                } else {
                    EventKind::Put
                },
                entry: Entry {
                    key,
                    value: parse(&text)?,
                    revision: revision as Revision,
                },
                prev: prev.as_deref().map(parse).transpose()?,
            });
        }
        Ok(Watch { backlog, live })
    }

    fn current_revision(&self) -> Revision {
        self.lock().revision
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

/// SQLite's write-ahead log beside the database file.
fn wal_path(path: &Path) -> std::path::PathBuf {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    wal.into()
}

fn parse(text: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| Error::Backend(format!("corrupt stored object: {e}")))
}

fn backend(error: rusqlite::Error) -> Error {
    Error::Backend(error.to_string())
}

#[cfg(test)]
mod tests;
