//! The node's log writer: one thread that moves container logs' buffered records to their
//! files, when a log has gathered enough or has waited long enough — never a write(2) per line,
//! and never on the async workers that run guests and serve the API.

use std::sync::Weak;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use std::sync::atomic::Ordering;

use super::{ContainerLog, MAX_PENDING_BYTES, State};
use crate::node::runtime::lower_priority;

/// How long buffered records may wait for their file.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(250);

enum Job {
    /// A new log with a file: flushed on every interval from now on.
    Register(Weak<ContainerLog>),
    /// A log whose buffer is full enough to write now.
    Flush(Weak<ContainerLog>),
}

/// A handle on the log-writer thread; cheap to clone. The thread flushes everything and ends
/// when the last handle (a node's, or a log's) is dropped.
#[derive(Clone, Debug)]
pub struct LogWriter {
    jobs: mpsc::Sender<Job>,
}

impl LogWriter {
    /// Starts the thread.
    ///
    /// # Errors
    /// When no thread can be started.
    pub fn start() -> std::io::Result<LogWriter> {
        let (jobs, queue) = mpsc::channel();
        std::thread::Builder::new()
            .name("container-logs".into())
            .spawn(move || {
                // Writing a flood of guest output is the guests' work, done at their priority:
                // the control plane beside it keeps its share of the CPU.
                lower_priority();
                run(&queue)
            })?;
        Ok(LogWriter { jobs })
    }

    pub(super) fn register(&self, log: Weak<ContainerLog>) {
        let _ = self.jobs.send(Job::Register(log));
    }

    pub(super) fn flush(&self, log: Weak<ContainerLog>) {
        let _ = self.jobs.send(Job::Flush(log));
    }
}

fn run(queue: &mpsc::Receiver<Job>) {
    let mut logs: Vec<Weak<ContainerLog>> = Vec::new();
    let mut next_round = Instant::now() + FLUSH_INTERVAL;
    loop {
        let wait = next_round.saturating_duration_since(Instant::now());
        match queue.recv_timeout(wait) {
            Ok(Job::Register(log)) => logs.push(log),
            Ok(Job::Flush(log)) => {
                if let Some(log) = log.upgrade() {
                    log.flush_to_file();
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                flush_all(&mut logs);
                return;
            }
        }
        // A steady stream of full buffers must not starve the others' timed flush.
        if Instant::now() >= next_round {
            flush_all(&mut logs);
            next_round = Instant::now() + FLUSH_INTERVAL;
        }
    }
}

fn flush_all(logs: &mut Vec<Weak<ContainerLog>>) {
    logs.retain(|log| match log.upgrade() {
        Some(log) => {
            log.flush_to_file();
            !log.is_closed()
        }
        None => false,
    });
}

/// The log's side of the writer: asking for flushes, doing them, and holding back a guest
/// whose records wait for the disk.
impl ContainerLog {
    /// Asks the writer for a flush once `threshold` bytes of records wait (one request at a
    /// time; the timed flush takes the rest).
    pub(super) fn request_flush(&self, state: &mut State, threshold: usize) {
        let Some(files) = &self.files else { return };
        if state.pending.len() >= threshold && !state.flush_requested {
            state.flush_requested = true;
            files.writer.flush(self.this.clone());
        }
    }

    /// Writes the waiting records to the file (on the writer thread): the log's lock is held
    /// only to take them.
    fn flush_to_file(&self) {
        let Some(files) = &self.files else { return };
        let started = Instant::now();
        let records = {
            let mut state = self.lock();
            state.flush_requested = false;
            std::mem::take(&mut state.pending)
        };
        if !records.is_empty() {
            let mut file = files.file.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(open) = file.as_mut()
                && let Err(error) = open.append(&records)
            {
                tracing::warn!(%error, "container log file write failed; keeping logs in memory only");
                *file = None;
            }
        }
        files.drained.notify_waiters();
        let spent = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.host_nanos.fetch_add(spent, Ordering::Relaxed);
    }

    /// Whether the guest may write more now: not while a full buffer of records waits for
    /// the disk.
    pub(super) fn has_room(&self) -> bool {
        self.files.is_none() || self.lock().pending.len() < MAX_PENDING_BYTES
    }

    /// Waits until [`has_room`](Self::has_room) (or the log is closed).
    pub(super) async fn room(&self) {
        let Some(files) = &self.files else { return };
        loop {
            let drained = files.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            if self.has_room() || self.is_closed() {
                return;
            }
            drained.await;
        }
    }

    /// Time spent writing this log's files since last asked: host work the guest caused,
    /// charged to its CPU.
    pub fn take_host_time(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.host_nanos.swap(0, Ordering::Relaxed))
    }
}
