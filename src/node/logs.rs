//! Bounded per-container log buffers: guest stdout/stderr as timestamped lines.
//!
//! A [`ContainerLog`] keeps the newest lines up to a byte budget in memory and
//! optionally mirrors them, in the CRI log format, to rotated files (`file`): records
//! gather in a buffer the node's [`LogWriter`] thread writes out by size and by time, and
//! a guest that outruns the disk waits for it (its stream offers no room until the buffer
//! drains). Every line gets a sequence number so followers (`kubectl logs -f`) resume exactly
//! where they stopped: [`ContainerLog::lines_after`] returns everything still
//! buffered from a cursor on, and [`ContainerLog::wait_for_more`] sleeps until
//! the cursor is stale or the log is closed.

use std::collections::VecDeque;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, watch};

/// Default in-memory budget of one container's log.
pub const DEFAULT_CAPACITY_BYTES: usize = 1024 * 1024;
/// Lines longer than this are split (the tail continues on the next line).
pub const MAX_LINE_BYTES: usize = 16 * 1024;
/// Bookkeeping charged per line so a flood of empty lines is bounded too.
const LINE_OVERHEAD_BYTES: usize = 48;
/// Records gathered for the file before the writer is asked to write them at once.
const FLUSH_BYTES: usize = 64 * 1024;
/// Records waiting for the file past which the guest's stream offers no room.
const MAX_PENDING_BYTES: usize = 1024 * 1024;

/// Which guest stream a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    /// The CRI log-file spelling (`stdout` / `stderr`).
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One line of container output, without its newline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    pub time: DateTime<Utc>,
    pub stream: Stream,
    pub text: String,
}

struct Stored {
    seq: u64,
    line: LogLine,
}

struct State {
    lines: VecDeque<Stored>,
    bytes: usize,
    next_seq: u64,
    partial: [Vec<u8>; 2],
    closed: bool,
    /// CRI records not yet in the file (only when there is a file).
    pending: Vec<u8>,
    flush_requested: bool,
}

/// The file side of a log: where records go, and who writes them.
struct Files {
    file: Mutex<Option<LogFile>>,
    writer: LogWriter,
    /// Wakes guests waiting for the pending records to drain.
    drained: Notify,
}

/// A bounded, followable log of one container run.
///
/// # Guarantees
/// - Memory stays under `capacity_bytes` (plus one partial line per stream and
///   about [`MAX_PENDING_BYTES`] of records on their way to the file); the files
///   stay within their [`Rotation`].
/// - Sequence numbers are dense and increasing; a follower that passes the
///   cursor it was given never sees a line twice and misses only lines that
///   were already evicted.
pub struct ContainerLog {
    capacity: usize,
    state: Mutex<State>,
    /// `(next_seq, closed)`, published under the state lock so it never goes back.
    progress: watch::Sender<(u64, bool)>,
    files: Option<Files>,
    this: Weak<ContainerLog>,
    /// Time the writer thread spent on this log's files, not yet charged to the guest's CPU.
    host_nanos: AtomicU64,
}

impl ContainerLog {
    /// A new, empty log kept in memory only.
    pub fn new(capacity_bytes: usize) -> Arc<Self> {
        Self::with_files(capacity_bytes, None)
    }

    /// A new, empty log also written to `files` by `writer`. Blocking: it opens the file and
    /// removes the container's oldest; if the file cannot be opened the log works in memory
    /// only.
    pub fn with_files(capacity_bytes: usize, files: Option<(LogFiles, LogWriter)>) -> Arc<Self> {
        let files = files.and_then(|(files, writer)| {
            let dir = files.dir.clone();
            match LogFile::open(files) {
                Ok(file) => Some(Files {
                    file: Mutex::new(Some(file)),
                    writer,
                    drained: Notify::new(),
                }),
                Err(error) => {
                    tracing::warn!(dir = %dir.display(), %error, "container log file unavailable");
                    None
                }
            }
        });
        let log = Arc::new_cyclic(|this| ContainerLog {
            capacity: capacity_bytes.max(1),
            state: Mutex::new(State {
                lines: VecDeque::new(),
                bytes: 0,
                next_seq: 0,
                partial: [Vec::new(), Vec::new()],
                closed: false,
                pending: Vec::new(),
                flush_requested: false,
            }),
            progress: watch::Sender::new((0, false)),
            files,
            this: this.clone(),
            host_nanos: AtomicU64::new(0),
        });
        if let Some(files) = &log.files {
            files.writer.register(Arc::downgrade(&log));
        }
        log
    }

    /// A WASI stdout that appends to this log.
    pub fn stdout(self: &Arc<Self>) -> LogStream {
        LogStream {
            log: Arc::clone(self),
            stream: Stream::Stdout,
        }
    }

    /// A WASI stderr that appends to this log.
    pub fn stderr(self: &Arc<Self>) -> LogStream {
        LogStream {
            log: Arc::clone(self),
            stream: Stream::Stderr,
        }
    }

    /// Appends raw output; complete lines become visible at once, a trailing
    /// partial line waits for its newline (or [`close`](Self::close)).
    /// Writes after `close` are dropped.
    pub fn write(&self, stream: Stream, mut bytes: &[u8]) {
        let mut state = self.lock();
        if state.closed {
            return;
        }
        let before = state.next_seq;
        while !bytes.is_empty() {
            let partial = &mut state.partial[stream.index()];
            let room = MAX_LINE_BYTES - partial.len();
            let chunk = &bytes[..bytes.len().min(room)];
            match chunk.iter().position(|&b| b == b'\n') {
                Some(newline) => {
                    partial.extend_from_slice(&chunk[..newline]);
                    bytes = &bytes[newline + 1..];
                    let text = std::mem::take(partial);
                    self.push(&mut state, stream, text);
                }
                None => {
                    partial.extend_from_slice(chunk);
                    bytes = &bytes[chunk.len()..];
                    if partial.len() >= MAX_LINE_BYTES {
                        let cut = utf8_boundary(partial);
                        let rest = partial.split_off(cut);
                        let text = std::mem::replace(partial, rest);
                        self.push(&mut state, stream, text);
                    }
                }
            }
        }
        if state.next_seq != before {
            self.publish(&state);
        }
        self.request_flush(&mut state, FLUSH_BYTES);
    }

    /// Ends the log: partial lines are flushed, later writes are dropped and
    /// every follower wakes up. Idempotent.
    pub fn close(&self) {
        let mut state = self.lock();
        if state.closed {
            return;
        }
        for stream in [Stream::Stdout, Stream::Stderr] {
            let text = std::mem::take(&mut state.partial[stream.index()]);
            if !text.is_empty() {
                self.push(&mut state, stream, text);
            }
        }
        state.closed = true;
        self.request_flush(&mut state, 1);
        self.publish(&state);
    }

    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Buffered lines at or after `since`, the last `tail` of them.
    pub fn lines(&self, tail: Option<usize>, since: Option<DateTime<Utc>>) -> Vec<LogLine> {
        self.snapshot(tail, since).0
    }

    /// Like [`lines`](Self::lines), plus the cursor to follow from.
    pub fn snapshot(
        &self,
        tail: Option<usize>,
        since: Option<DateTime<Utc>>,
    ) -> (Vec<LogLine>, u64) {
        let state = self.lock();
        let matching = state
            .lines
            .iter()
            .filter(|s| since.is_none_or(|since| s.line.time >= since));
        let mut lines: Vec<LogLine> = matching.map(|s| s.line.clone()).collect();
        if let Some(tail) = tail {
            lines.drain(..lines.len().saturating_sub(tail));
        }
        (lines, state.next_seq)
    }

    /// Buffered lines with sequence number `>= cursor` (all of them if some
    /// were evicted since), and the cursor to pass next time.
    pub fn lines_after(&self, cursor: u64) -> (Vec<LogLine>, u64) {
        let state = self.lock();
        let first = state.lines.front().map_or(state.next_seq, |s| s.seq);
        let skip = cursor.saturating_sub(first) as usize;
        let lines = state.lines.iter().skip(skip).map(|s| s.line.clone());
        (lines.collect(), state.next_seq)
    }

    /// Waits until a line with sequence number `>= cursor` exists or the log
    /// is closed; returns the current next cursor. Returns at once if either
    /// already holds.
    pub async fn wait_for_more(&self, cursor: u64) -> u64 {
        let mut progress = self.progress.subscribe();
        let seen = progress
            .wait_for(|&(next, closed)| next > cursor || closed)
            .await
            .map(|value| value.0);
        // The sender lives in `self`, so the channel cannot close while we wait.
        seen.unwrap_or(cursor)
    }

    /// The next batch for a follower: waits for lines after `cursor`, returns
    /// them with the new cursor, or `None` once the log is closed and drained.
    pub async fn next_lines(&self, cursor: u64) -> Option<(Vec<LogLine>, u64)> {
        self.wait_for_more(cursor).await;
        let (lines, next) = self.lines_after(cursor);
        if lines.is_empty() && self.is_closed() {
            return None;
        }
        Some((lines, next))
    }

    fn push(&self, state: &mut State, stream: Stream, mut text: Vec<u8>) {
        if text.last() == Some(&b'\r') {
            text.pop();
        }
        let line = LogLine {
            time: Utc::now(),
            stream,
            text: String::from_utf8_lossy(&text).into_owned(),
        };
        if self.files.is_some() {
            file::record(&line, &mut state.pending);
        }
        state.bytes += cost(&line);
        state.lines.push_back(Stored {
            seq: state.next_seq,
            line,
        });
        state.next_seq += 1;
        while state.bytes > self.capacity && state.lines.len() > 1 {
            let evicted = state.lines.pop_front().expect("non-empty");
            state.bytes -= cost(&evicted.line);
        }
    }

    fn publish(&self, state: &State) {
        self.progress.send_replace((state.next_seq, state.closed));
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent-enough log state.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn cost(line: &LogLine) -> usize {
    line.text.len() + LINE_OVERHEAD_BYTES
}

/// Where to split a full line buffer so a multi-byte UTF-8 character whose
/// last bytes have not arrived yet moves to the next line whole (bytes that
/// are not UTF-8 are cut anywhere).
fn utf8_boundary(bytes: &[u8]) -> usize {
    let is_continuation = |b: u8| b & 0b1100_0000 == 0b1000_0000;
    let Some(lead) = (bytes.len().saturating_sub(4)..bytes.len())
        .rev()
        .find(|&i| !is_continuation(bytes[i]))
    else {
        return bytes.len();
    };
    let width = match bytes[lead] {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF7 => 4,
        _ => 1,
    };
    if lead > 0 && lead + width > bytes.len() {
        lead
    } else {
        bytes.len()
    }
}

mod file;
mod stream;
mod writer;

use file::LogFile;
pub use file::{LogFiles, Rotation, read_log_file};
pub use stream::LogStream;
pub use writer::LogWriter;

#[cfg(test)]
mod tests;
