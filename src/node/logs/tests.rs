//! Log buffer bounds, tail/since selection and following.

use super::*;
use std::time::Duration;

use chrono::Utc;

use crate::node::runtime::policy_in_stat;

fn texts(lines: &[LogLine]) -> Vec<&str> {
    lines.iter().map(|l| l.text.as_str()).collect()
}

#[test]
fn complete_lines_are_visible_and_partial_lines_wait_for_newline_or_close() {
    let log = ContainerLog::new(DEFAULT_CAPACITY_BYTES);
    log.write(Stream::Stdout, b"one\ntw");
    assert_eq!(texts(&log.lines(None, None)), ["one"]);
    log.write(Stream::Stdout, b"o\r\nthr");
    log.write(Stream::Stderr, b"err");
    assert_eq!(texts(&log.lines(None, None)), ["one", "two"]);
    log.close();
    let lines = log.lines(None, None);
    assert_eq!(texts(&lines), ["one", "two", "thr", "err"]);
    assert_eq!(lines[3].stream, Stream::Stderr);
    log.write(Stream::Stdout, b"after close\n");
    assert_eq!(log.lines(None, None).len(), 4);
}

#[test]
fn buffer_drops_oldest_lines_beyond_its_capacity() {
    let log = ContainerLog::new(10 * (100 + LINE_OVERHEAD_BYTES));
    for i in 0..1000 {
        log.write(Stream::Stdout, format!("{i:0100}\n").as_bytes());
    }
    let lines = log.lines(None, None);
    assert_eq!(lines.len(), 10);
    assert_eq!(lines[9].text, format!("{:0100}", 999));
    assert_eq!(lines[0].text, format!("{:0100}", 990));
}

#[test]
fn overlong_line_is_split_at_sixteen_kib_on_a_char_boundary() {
    let log = ContainerLog::new(DEFAULT_CAPACITY_BYTES);
    let mut text = "a".repeat(MAX_LINE_BYTES - 1);
    text.push('é'); // two bytes straddling the limit
    text.push_str("tail\n");
    log.write(Stream::Stdout, text.as_bytes());
    let lines = log.lines(None, None);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].text.len(), MAX_LINE_BYTES - 1);
    assert_eq!(lines[1].text, "étail");
}

#[test]
fn tail_and_since_select_the_newest_lines() {
    let log = ContainerLog::new(DEFAULT_CAPACITY_BYTES);
    log.write(Stream::Stdout, b"old\n");
    std::thread::sleep(Duration::from_millis(5));
    let cut = Utc::now();
    log.write(Stream::Stdout, b"a\nb\nc\n");
    assert_eq!(texts(&log.lines(Some(2), None)), ["b", "c"]);
    assert_eq!(texts(&log.lines(None, Some(cut))), ["a", "b", "c"]);
    assert_eq!(texts(&log.lines(Some(0), None)), Vec::<&str>::new());
}

#[tokio::test]
async fn follower_sees_every_line_once_and_ends_when_the_log_closes() {
    let log = ContainerLog::new(DEFAULT_CAPACITY_BYTES);
    log.write(Stream::Stdout, b"before\n");
    let (mut seen, mut cursor) = log.snapshot(None, None);
    let follower = {
        let log = Arc::clone(&log);
        tokio::spawn(async move {
            while let Some((lines, next)) = log.next_lines(cursor).await {
                seen.extend(lines);
                cursor = next;
            }
            seen
        })
    };
    for i in 0..50 {
        log.write(Stream::Stdout, format!("line {i}\n").as_bytes());
        if i % 10 == 0 {
            tokio::task::yield_now().await;
        }
    }
    log.write(Stream::Stderr, b"last words");
    log.close();
    let seen = tokio::time::timeout(Duration::from_secs(5), follower)
        .await
        .expect("follower should finish after close")
        .expect("follower task");
    assert_eq!(seen.len(), 52);
    assert_eq!(seen[0].text, "before");
    assert_eq!(seen[50].text, "line 49");
    assert_eq!(seen[51].text, "last words");
}

#[tokio::test]
async fn waiting_follower_sleeps_until_a_line_arrives() {
    let log = ContainerLog::new(DEFAULT_CAPACITY_BYTES);
    let (_, cursor) = log.snapshot(None, None);
    let early = tokio::time::timeout(Duration::from_millis(50), log.wait_for_more(cursor));
    assert!(early.await.is_err(), "nothing new yet");
    let writer = Arc::clone(&log);
    tokio::spawn(async move { writer.write(Stream::Stdout, b"hi\n") });
    let next = tokio::time::timeout(Duration::from_secs(5), log.wait_for_more(cursor))
        .await
        .expect("woken by the new line");
    assert_eq!(next, cursor + 1);
    assert_eq!(texts(&log.lines_after(cursor).0), ["hi"]);
}

#[test]
fn slow_follower_resumes_from_the_oldest_line_still_buffered() {
    let log = ContainerLog::new(3 * (1 + LINE_OVERHEAD_BYTES));
    let (_, cursor) = log.snapshot(None, None);
    log.write(Stream::Stdout, b"1\n2\n3\n4\n5\n");
    let (lines, next) = log.lines_after(cursor);
    assert_eq!(texts(&lines), ["3", "4", "5"]);
    assert_eq!(next, 5);
    assert!(log.lines_after(next).0.is_empty());
}

fn log_files(dir: &std::path::Path, max_size: u64) -> LogFiles {
    LogFiles {
        dir: dir.join("c"),
        restart: 0,
        rotation: Rotation {
            max_size,
            max_files: 3,
        },
        room: None,
    }
}

/// Waits (at most five seconds) for the writer thread to have put in `path` lines that
/// satisfy `done`.
fn wait_for_lines(path: &std::path::Path, done: impl Fn(&[LogLine]) -> bool) -> Vec<LogLine> {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let written = read_log_file(path).unwrap_or_default();
        if done(&written) || std::time::Instant::now() > deadline {
            return written;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn lines_reach_the_file_in_the_cri_format_without_waiting_for_a_full_buffer() {
    let dir = tempfile::tempdir().unwrap();
    let writer = LogWriter::start().unwrap();
    let log = ContainerLog::with_files(
        DEFAULT_CAPACITY_BYTES,
        Some((log_files(dir.path(), 1 << 20), writer)),
    );
    log.write(Stream::Stdout, b"hello world\n");
    log.write(Stream::Stderr, b"oops\n");
    let written = wait_for_lines(&dir.path().join("c/0.log"), |lines| lines.len() >= 2);
    assert_eq!(
        written,
        log.lines(None, None),
        "the timed flush wrote both lines"
    );
}

#[test]
fn a_flood_is_written_in_batches_into_rotated_files_that_stay_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let writer = LogWriter::start().unwrap();
    let log = ContainerLog::with_files(
        DEFAULT_CAPACITY_BYTES,
        Some((log_files(dir.path(), 256 * 1024), writer)),
    );
    let chunk = [b"x".repeat(99), b"\n".to_vec()].concat().repeat(1000);
    for _ in 0..50 {
        log.write(Stream::Stdout, &chunk);
    }
    log.write(Stream::Stdout, b"last\n");
    log.close();
    let last = |lines: &[LogLine]| lines.last().is_some_and(|l| l.text == "last");
    let current = wait_for_lines(&dir.path().join("c/0.log"), last);
    assert!(last(&current), "the final flush wrote the last line");
    let files: Vec<u64> = std::fs::read_dir(dir.path().join("c"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .collect();
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(files.iter().all(|len| *len <= 256 * 1024), "{files:?}");
    assert!(
        log.take_host_time() > Duration::ZERO,
        "the writer's time is booked for the guest"
    );
}

/// The scheduling policy of each thread of this process named `name`, from `/proc`.
fn policies_of_threads(name: &str) -> Vec<i32> {
    let tasks = std::fs::read_dir("/proc/self/task").unwrap();
    tasks
        .flatten()
        .filter(|task| {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            comm.trim() == name
        })
        .filter_map(|task| policy_in_stat(&std::fs::read_to_string(task.path().join("stat")).ok()?))
        .collect()
}

#[test]
fn the_log_writer_runs_in_the_guests_idle_class() {
    let _writer = LogWriter::start().unwrap();
    let idle =
        |policies: &[i32]| !policies.is_empty() && policies.iter().all(|p| *p == libc::SCHED_IDLE);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut policies = policies_of_threads("container-logs");
    while !idle(&policies) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
        policies = policies_of_threads("container-logs");
    }
    assert!(idle(&policies), "the writers' policies: {policies:?}");
}
