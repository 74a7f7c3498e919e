//! One batch of writes: checked and written in one transaction, committed (SQLite syncs the
//! write-ahead log: `synchronous=FULL`), and only then applied to what readers see and sent to
//! watchers.

use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::{Connection, TransactionBehavior, params};
use serde_json::Value;

use super::Shared;
use super::compactor::Nudge;
use super::rows::{Change, write_change};
use crate::store::{Entry, Error, Event, EventKind, Result, Revision};

/// Compaction is nudged once this many writes (or the history length, if smaller) went by.
const COMPACT_EVERY: u64 = 1_000;

/// One change a writer asks for.
pub(super) enum Intent {
    Create {
        key: String,
        value: Value,
    },
    Update {
        key: String,
        value: Value,
        expected: Revision,
    },
    Delete {
        key: String,
        expected: Option<Revision>,
    },
}

/// One answer per intent of a request; the outer error when its transaction failed.
pub(super) type Answers = Result<Vec<Result<Arc<Entry>>>>;

/// The writing connection and the state only the committing writer touches.
pub(super) struct Writer {
    conn: Connection,
    /// The last committed revision, which is also the visible one between batches.
    revision: Revision,
    nudge: Nudge,
    since_nudge: u64,
}

/// A batch that did not commit.
enum Failure {
    /// Nothing was written; the store goes on.
    RolledBack(String),
    /// The commit itself failed: whether it reached the disk is unknown, so the store stops.
    Uncertain(String),
}

/// A committed batch: the answers per request, and the changes to publish.
struct Committed {
    answers: Vec<Vec<Result<Arc<Entry>>>>,
    events: Vec<Event>,
    published: Vec<(String, Option<Arc<Entry>>)>,
}

impl Writer {
    pub fn new(conn: Connection, revision: Revision, nudge: Nudge) -> Self {
        Self {
            conn,
            revision,
            nudge,
            since_nudge: 0,
        }
    }

    /// Commits a batch of requests, publishes it, and answers each request in order. A failed
    /// commit stops the store.
    pub fn commit(&mut self, shared: &Shared, batch: Vec<Vec<Intent>>) -> Vec<Answers> {
        let count = batch.len();
        if let Some(reason) = shared.stopped.get() {
            return (0..count)
                .map(|_| Err(Error::Stopped(reason.clone())))
                .collect();
        }
        let failed = |message: &str| -> Vec<Answers> {
            (0..count)
                .map(|_| Err(Error::Backend(message.to_string())))
                .collect()
        };
        match self.write(shared, batch) {
            Ok(committed) => {
                let writes = committed.events.len() as u64;
                publish(shared, committed.events, committed.published);
                self.maybe_nudge(shared, writes);
                committed.answers.into_iter().map(Ok).collect()
            }
            Err(Failure::RolledBack(message)) => failed(&message),
            Err(Failure::Uncertain(message)) => {
                tracing::error!(%message, "a commit failed; the store refuses writes until restarted");
                let _ = shared.stopped.set(message.clone());
                failed(&message)
            }
        }
    }

    /// Checks and writes every intent in one transaction and commits it (SQLite syncs the log).
    fn write(
        &mut self,
        shared: &Shared,
        batch: Vec<Vec<Intent>>,
    ) -> std::result::Result<Committed, Failure> {
        let rolled_back = |e: rusqlite::Error| Failure::RolledBack(e.to_string());
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(rolled_back)?;
        let mut staged = Staged {
            shared,
            written: HashMap::new(),
            revision: self.revision,
            events: Vec::new(),
        };
        let mut answers = Vec::with_capacity(batch.len());
        for intents in batch {
            let mut request_answers = Vec::with_capacity(intents.len());
            for intent in intents {
                let answer = match staged.check(intent) {
                    Ok(change) => Ok(staged
                        .write(&tx, change)
                        .map_err(|e| Failure::RolledBack(e.to_string()))?),
                    Err(refused) => Err(refused),
                };
                request_answers.push(answer);
            }
            answers.push(request_answers);
        }
        let revision = staged.revision;
        tx.prepare_cached(
            "INSERT INTO meta (name, value) VALUES ('revision', ?1)
             ON CONFLICT(name) DO UPDATE SET value = ?1",
        )
        .and_then(|mut s| s.execute(params![revision as i64]))
        .map_err(rolled_back)?;
        let Staged {
            written, events, ..
        } = staged;
        tx.commit().map_err(|e| {
            Failure::Uncertain(format!(
                "committing revision {revision} to disk failed: {e}"
            ))
        })?;
        self.revision = revision;
        Ok(Committed {
            answers,
            events,
            published: written.into_iter().collect(),
        })
    }

    fn maybe_nudge(&mut self, shared: &Shared, writes: u64) {
        self.since_nudge += writes;
        if self.since_nudge >= COMPACT_EVERY.min(shared.history) {
            self.nudge.nudge();
            self.since_nudge = 0;
        }
    }
}

/// Applies committed changes to what readers see and sends them to watchers, in one step
/// under the lock `watch` reads under.
fn publish(shared: &Shared, events: Vec<Event>, changes: Vec<(String, Option<Arc<Entry>>)>) {
    let Some(last) = events.last().map(|e| e.entry.revision) else {
        return;
    };
    let mut visible = shared.visible.write().unwrap_or_else(|p| p.into_inner());
    for (key, entry) in changes {
        match entry {
            Some(entry) => visible.objects.insert(key, entry),
            None => visible.objects.remove(&key),
        };
    }
    visible.revision = last;
    for event in events {
        // Nobody listening is fine: the event is in the history table.
        let _ = shared.feed.send(Arc::new(event));
    }
}

/// A transaction being built: what it has written so far, on top of what readers see.
struct Staged<'a> {
    shared: &'a Shared,
    /// Keys written in this transaction: their new entry, `None` once deleted.
    written: HashMap<String, Option<Arc<Entry>>>,
    revision: Revision,
    events: Vec<Event>,
}

impl Staged<'_> {
    /// The entry at `key` as this transaction sees it.
    fn current(&self, key: &str) -> Option<Arc<Entry>> {
        match self.written.get(key) {
            Some(written) => written.clone(),
            None => self.shared.visible().objects.get(key).cloned(),
        }
    }

    /// The change an intent comes to, or why it is refused.
    fn check(&self, intent: Intent) -> Result<Change> {
        let (key, value, expected) = match intent {
            Intent::Create { key, value } => {
                if self.current(&key).is_some() {
                    return Err(Error::AlreadyExists(key));
                }
                return Ok(Change {
                    key,
                    value: Some(value),
                    prev: None,
                });
            }
            Intent::Update {
                key,
                value,
                expected,
            } => (key, Some(value), Some(expected)),
            Intent::Delete { key, expected } => (key, None, expected),
        };
        let current = self
            .current(&key)
            .ok_or_else(|| Error::NotFound(key.clone()))?;
        if let Some(expected) = expected.filter(|e| *e != current.revision) {
            return Err(Error::Conflict {
                key,
                expected,
                actual: current.revision,
            });
        }
        Ok(Change {
            key,
            value,
            prev: Some(current.value.clone()),
        })
    }

    /// Writes a change's rows at the next revision; the entry is the writer's answer.
    fn write(&mut self, tx: &rusqlite::Transaction<'_>, change: Change) -> Result<Arc<Entry>> {
        let event = write_change(tx, change, self.revision + 1)?;
        self.revision += 1;
        let entry = Arc::new(event.entry.clone());
        let now = (event.kind == EventKind::Put).then(|| entry.clone());
        self.written.insert(event.entry.key.clone(), now);
        self.events.push(event);
        Ok(entry)
    }
}
