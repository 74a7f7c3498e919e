//! Group commit, leader and followers (LevelDB's writer queue): writers queue their changes;
//! the first to find no commit under way becomes the leader and commits everything queued in
//! one transaction — one sync of the write-ahead log for all — on its own thread, while those
//! who queued meanwhile wait for their answers, and one of them leads the next batch. A lone
//! writer commits without handing its work to another thread.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use rusqlite::Connection;

use super::Shared;
use super::compactor::Nudge;
use super::transaction::{Answers, Intent, Writer};
use crate::store::offload::off_worker;
use crate::store::{Error, Revision};

/// At most this many requests share one transaction.
const MAX_BATCH: usize = 512;

/// Writes waiting for a commit, and the answers of committed ones.
pub(super) struct Committer {
    shared: Arc<Shared>,
    queue: Mutex<Queue>,
    /// Signalled when a batch is answered and the lead is free.
    answered: Condvar,
    /// Only the leader locks it.
    writer: Mutex<Writer>,
}

type Ticket = u64;

#[derive(Default)]
struct Queue {
    waiting: VecDeque<(Ticket, Vec<Intent>)>,
    answers: HashMap<Ticket, Answers>,
    next_ticket: Ticket,
    leading: bool,
}

impl Committer {
    /// Commits through `conn`, whose last revision is `revision`.
    pub fn new(conn: Connection, shared: Arc<Shared>, revision: Revision, nudge: Nudge) -> Self {
        Self {
            shared,
            queue: Mutex::new(Queue::default()),
            answered: Condvar::new(),
            writer: Mutex::new(Writer::new(conn, revision, nudge)),
        }
    }

    /// Queues `intents` for the next transaction and returns once they are durable and
    /// visible, leading the commit when no other writer is.
    ///
    /// # Errors
    /// `Stopped` once a commit failed; `Backend` when this transaction failed.
    pub fn submit(&self, intents: Vec<Intent>) -> Answers {
        if let Some(reason) = self.shared.stopped.get() {
            return Err(Error::Stopped(reason.clone()));
        }
        off_worker(|| self.wait_or_lead(intents))
    }

    fn wait_or_lead(&self, intents: Vec<Intent>) -> Answers {
        let mut queue = self.queue();
        let ticket = queue.next_ticket;
        queue.next_ticket += 1;
        queue.waiting.push_back((ticket, intents));
        loop {
            if let Some(answers) = queue.answers.remove(&ticket) {
                return answers;
            }
            if queue.leading {
                queue = self.answered.wait(queue).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            // Our request is still waiting (it might not fit the batch; then we lead again).
            queue.leading = true;
            let taken = queue.waiting.len().min(MAX_BATCH);
            let batch: Vec<_> = queue.waiting.drain(..taken).collect();
            drop(queue);
            let leading = Leading {
                committer: self,
                tickets: batch.iter().map(|(ticket, _)| *ticket).collect(),
            };
            let answers = self
                .writer
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .commit(&self.shared, batch.into_iter().map(|(_, i)| i).collect());
            queue = leading.answer(answers);
        }
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    #[cfg(test)]
    pub fn waiting(&self) -> usize {
        self.queue().waiting.len()
    }
}

/// The lead of one batch; handing it back answers the batch and wakes the waiting writers.
/// Dropped without answering (a panic while committing), it answers with an error, so that
/// nobody waits forever.
struct Leading<'a> {
    committer: &'a Committer,
    tickets: Vec<Ticket>,
}

impl<'a> Leading<'a> {
    fn answer(mut self, answers: Vec<Answers>) -> MutexGuard<'a, Queue> {
        let mut queue = self.committer.queue();
        let tickets = std::mem::take(&mut self.tickets);
        queue.answers.extend(tickets.into_iter().zip(answers));
        queue.leading = false;
        self.committer.answered.notify_all();
        queue
    }
}

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        if self.tickets.is_empty() {
            return;
        }
        let mut queue = self.committer.queue();
        for ticket in self.tickets.drain(..) {
            let interrupted = Error::Backend("the commit was interrupted".into());
            queue.answers.insert(ticket, Err(interrupted));
        }
        queue.leading = false;
        self.committer.answered.notify_all();
    }
}
