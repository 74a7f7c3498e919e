//! The node's log writer: one thread that moves container logs' buffered records to their
//! files, when a log has gathered enough or has waited long enough — never a write(2) per line,
//! and never on the async workers that run guests and serve the API.

use std::sync::Weak;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::ContainerLog;

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
            .spawn(move || run(&queue))?;
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
