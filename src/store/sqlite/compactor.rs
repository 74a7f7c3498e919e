//! Compaction in the background, off the write path: history older than the kept window is
//! deleted, with the record of how far it went, in one transaction on a connection of its own.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, SyncSender};
use std::thread::JoinHandle;

use rusqlite::{Connection, TransactionBehavior, params};

use super::{Shared, backend};
use crate::store::Result;

/// Asks the compactor to look at the history again; cheap and never blocks.
#[derive(Clone)]
pub(super) struct Nudge(SyncSender<()>);

impl Nudge {
    pub fn nudge(&self) {
        // A full channel means a nudge is pending already, which covers this one.
        let _ = self.0.try_send(());
    }
}

/// The compactor thread; it ends once every `Nudge` is dropped.
pub(super) struct Compactor {
    nudge: Option<Nudge>,
    thread: Option<JoinHandle<()>>,
}

impl Compactor {
    /// Starts compacting through `conn` whenever nudged.
    ///
    /// # Errors
    /// `Backend` when the connection cannot be set up.
    pub fn start(mut conn: Connection, shared: Arc<Shared>) -> Result<Self> {
        // Losing a compaction to a power cut only keeps more history, and the committer's next
        // sync of the log covers it anyway: this connection's commits need not sync.
        conn.execute_batch("PRAGMA synchronous=NORMAL")
            .map_err(backend)?;
        let (nudge, nudges) = mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("store-compactor".into())
            .spawn(move || {
                while nudges.recv().is_ok() {
                    if shared.stopped.get().is_some() {
                        continue;
                    }
                    if let Err(error) = compact(&mut conn, &shared) {
                        tracing::warn!(%error, "compacting the store's history failed");
                    }
                }
            })
            .expect("spawning the store's compactor thread");
        Ok(Self {
            nudge: Some(Nudge(nudge)),
            thread: Some(thread),
        })
    }

    pub fn nudger(&self) -> Nudge {
        self.nudge.clone().expect("set until dropped")
    }
}

impl Drop for Compactor {
    fn drop(&mut self) {
        self.nudge.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Drops history older than the kept window so the file does not grow without bound, except
/// what an open watch backlog has still to read.
fn compact(conn: &mut Connection, shared: &Shared) -> Result<()> {
    let revision = shared.visible().revision;
    let window = revision.saturating_sub(shared.history);
    let keep_from = {
        let pins = shared.pins();
        let keep_from = pins
            .oldest_needed(revision)
            .map_or(window, |pinned| pinned.min(window));
        if keep_from <= shared.compacted.load(Ordering::SeqCst) {
            return Ok(());
        }
        // Raised before any row goes, and while no watch can pin: a history reader that still
        // finds it at or below its position knows the page it just read was complete.
        shared.compacted.fetch_max(keep_from, Ordering::SeqCst);
        keep_from
    };
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend)?;
    tx.execute(
        "DELETE FROM events WHERE revision <= ?1",
        params![keep_from as i64],
    )
    .map_err(backend)?;
    tx.execute(
        "INSERT INTO meta (name, value) VALUES ('compacted', ?1)
         ON CONFLICT(name) DO UPDATE SET value = ?1",
        params![keep_from as i64],
    )
    .map_err(backend)?;
    tx.commit().map_err(backend)
}
