//! Group commit, durable before visible: one thread owns the writing connection; it takes every
//! write queued while the previous commit was syncing, commits them in one transaction — one
//! sync of the write-ahead log for all — and only then applies them to what readers see, sends
//! them to watchers and answers the writers.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::thread::JoinHandle;

use rusqlite::{Connection, TransactionBehavior, params};
use serde_json::Value;

use super::Shared;
use super::compactor::Nudge;
use super::rows::{Change, write_change};
use crate::store::offload::off_worker;
use crate::store::{Entry, Error, Event, EventKind, Result, Revision};

/// At most this many requests share one transaction.
const MAX_BATCH: usize = 512;
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

/// One answer per intent; the outer error when the transaction failed as a whole.
type Answers = Result<Vec<Result<Arc<Entry>>>>;

struct Request {
    intents: Vec<Intent>,
    reply: SyncSender<Answers>,
}

/// The writers' side of the committer thread.
pub(super) struct Committer {
    queue: Option<Sender<Request>>,
    /// Requests submitted and not yet taken into a transaction.
    waiting: Arc<AtomicUsize>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Committer {
    /// Starts the thread that commits through `conn`, whose last revision is `revision`.
    pub fn start(conn: Connection, shared: Arc<Shared>, revision: Revision, nudge: Nudge) -> Self {
        let (queue, requests) = mpsc::channel();
        let waiting = Arc::new(AtomicUsize::new(0));
        let worker = Worker {
            conn,
            shared: shared.clone(),
            waiting: waiting.clone(),
            revision,
            nudge,
            since_nudge: 0,
        };
        let thread = std::thread::Builder::new()
            .name("store-committer".into())
            .spawn(move || worker.run(requests))
            .expect("spawning the store's committer thread");
        Self {
            queue: Some(queue),
            waiting,
            shared,
            thread: Some(thread),
        }
    }

    /// Queues `intents` for the next transaction and waits until they are durable and visible.
    ///
    /// # Errors
    /// `Stopped` once a commit failed; `Backend` when this transaction failed.
    pub fn submit(&self, intents: Vec<Intent>) -> Answers {
        if let Some(reason) = self.shared.stopped.get() {
            return Err(Error::Stopped(reason.clone()));
        }
        let (reply, answer) = mpsc::sync_channel(1);
        let queue = self.queue.as_ref().expect("set until dropped");
        self.waiting.fetch_add(1, Ordering::SeqCst);
        if queue.send(Request { intents, reply }).is_err() {
            return Err(self.gone());
        }
        off_worker(|| answer.recv()).unwrap_or_else(|_| Err(self.gone()))
    }

    #[cfg(test)]
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    fn gone(&self) -> Error {
        let reason = self
            .shared
            .stopped
            .get_or_init(|| "the committer thread ended".into());
        Error::Stopped(reason.clone())
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        // Closing the queue ends the thread once it has answered what was queued.
        self.queue.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Worker {
    conn: Connection,
    shared: Arc<Shared>,
    waiting: Arc<AtomicUsize>,
    /// The last committed revision (equal to the visible one between batches).
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

impl Worker {
    fn run(mut self, requests: Receiver<Request>) {
        while let Ok(first) = requests.recv() {
            let mut batch = vec![first];
            batch.extend(requests.try_iter().take(MAX_BATCH - 1));
            self.waiting.fetch_sub(batch.len(), Ordering::SeqCst);
            self.commit(batch);
        }
    }

    fn commit(&mut self, batch: Vec<Request>) {
        if let Some(reason) = self.shared.stopped.get() {
            for request in batch {
                let _ = request.reply.send(Err(Error::Stopped(reason.clone())));
            }
            return;
        }
        let (intents, replies): (Vec<_>, Vec<_>) =
            batch.into_iter().map(|r| (r.intents, r.reply)).unzip();
        match self.write(intents) {
            Ok(committed) => {
                let writes = committed.events.len() as u64;
                self.publish(committed.events, committed.published);
                for (reply, answers) in replies.into_iter().zip(committed.answers) {
                    let _ = reply.send(Ok(answers));
                }
                self.maybe_nudge(writes);
            }
            Err(Failure::RolledBack(message)) => {
                for reply in replies {
                    let _ = reply.send(Err(Error::Backend(message.clone())));
                }
            }
            Err(Failure::Uncertain(message)) => {
                tracing::error!(%message, "a commit failed; the store refuses writes until restarted");
                let _ = self.shared.stopped.set(message.clone());
                for reply in replies {
                    let _ = reply.send(Err(Error::Backend(message.clone())));
                }
            }
        }
    }

    /// Checks and writes every intent in one transaction and commits it (SQLite syncs the log).
    fn write(&mut self, batch: Vec<Vec<Intent>>) -> std::result::Result<Committed, Failure> {
        let rolled_back = |e: rusqlite::Error| Failure::RolledBack(e.to_string());
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(rolled_back)?;
        let mut staged = Staged {
            shared: &self.shared,
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

    /// Applies committed changes to what readers see and sends them to watchers, in one step
    /// under the lock `watch` reads under.
    fn publish(&self, events: Vec<Event>, changes: Vec<(String, Option<Arc<Entry>>)>) {
        let Some(last) = events.last().map(|e| e.entry.revision) else {
            return;
        };
        let mut visible = self
            .shared
            .visible
            .write()
            .unwrap_or_else(|p| p.into_inner());
        for (key, entry) in changes {
            match entry {
                Some(entry) => visible.objects.insert(key, entry),
                None => visible.objects.remove(&key),
            };
        }
        visible.revision = last;
        for event in events {
            // Nobody listening is fine: the event is in the history table.
            let _ = self.shared.feed.send(event);
        }
    }

    fn maybe_nudge(&mut self, writes: u64) {
        self.since_nudge += writes;
        if self.since_nudge >= COMPACT_EVERY.min(self.shared.history) {
            self.nudge.nudge();
            self.since_nudge = 0;
        }
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
