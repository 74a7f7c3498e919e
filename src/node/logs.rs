//! Bounded per-container log buffers: guest stdout/stderr as timestamped lines.
//!
//! A [`ContainerLog`] keeps the newest lines up to a byte budget in memory and
//! optionally mirrors them, in the CRI log format, to a size-capped file. Every
//! line gets a sequence number so followers (`kubectl logs -f`) resume exactly
//! where they stopped: [`ContainerLog::lines_after`] returns everything still
//! buffered from a cursor on, and [`ContainerLog::wait_for_more`] sleeps until
//! the cursor is stale or the log is closed.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use tokio::sync::watch;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Default in-memory budget of one container's log.
pub const DEFAULT_CAPACITY_BYTES: usize = 1024 * 1024;
/// Lines longer than this are split (the tail continues on the next line).
pub const MAX_LINE_BYTES: usize = 16 * 1024;
/// The mirror file is truncated and restarted once it would exceed this.
pub const MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;
/// Bookkeeping charged per line so a flood of empty lines is bounded too.
const LINE_OVERHEAD_BYTES: usize = 48;
/// Largest write a guest may make in one go (the WASI permit).
const WRITE_PERMIT_BYTES: usize = 64 * 1024;

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
    mirror: Option<Mirror>,
}

/// A bounded, followable log of one container run.
///
/// # Guarantees
/// - Memory stays under `capacity_bytes` (plus one partial line per stream);
///   the mirror file stays under [`MAX_FILE_BYTES`].
/// - Sequence numbers are dense and increasing; a follower that passes the
///   cursor it was given never sees a line twice and misses only lines that
///   were already evicted.
pub struct ContainerLog {
    capacity: usize,
    state: Mutex<State>,
    /// `(next_seq, closed)`, published under the state lock so it never goes back.
    progress: watch::Sender<(u64, bool)>,
}

impl ContainerLog {
    /// A new, empty log. `file`, when given, is appended to (created if
    /// missing); if it cannot be opened the log works in memory only.
    pub fn new(capacity_bytes: usize, file: Option<PathBuf>) -> Arc<Self> {
        let mirror = file.and_then(|path| match Mirror::open(&path) {
            Ok(mirror) => Some(mirror),
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "container log file unavailable");
                None
            }
        });
        Arc::new(ContainerLog {
            capacity: capacity_bytes.max(1),
            state: Mutex::new(State {
                lines: VecDeque::new(),
                bytes: 0,
                next_seq: 0,
                partial: [Vec::new(), Vec::new()],
                closed: false,
                mirror,
            }),
            progress: watch::Sender::new((0, false)),
        })
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
        if let Some(mirror) = state.mirror.as_mut() {
            mirror.flush();
        }
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
        if let Some(mirror) = state.mirror.as_mut()
            && !mirror.append(&line)
        {
            state.mirror = None;
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

/// One guest stream writing into a [`ContainerLog`]; give it to
/// `WasiCtxBuilder::stdout` / `stderr`. Writes never block the guest.
#[derive(Clone)]
pub struct LogStream {
    log: Arc<ContainerLog>,
    stream: Stream,
}

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for LogStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.log.write(self.stream, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT_BYTES)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LogStream {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for LogStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.log.write(self.stream, buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

mod file;

use file::Mirror;
pub use file::read_log_file;

#[cfg(test)]
mod tests;
