//! What a guest meets when it runs into the budgets it shares with its pod and its node: open
//! files, the disk's room above the store's reserve, the node's memory for pods.

use crate::node::limits::PodShare;
use crate::node::logs::Stream;

use super::tests::{RunBuilder, runtime_with, stdout};
use super::*;

const MIB: u64 = 1024 * 1024;

#[tokio::test]
async fn a_guest_opening_files_without_end_stops_at_its_pods_limit_with_a_clear_message() {
    let runtime = runtime_with(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let pod = PodShare::new(50);
    let (exit, _) = RunBuilder::steps(&["open-files-forever", "/d/f"])
        .mount(dir.path(), "/d", false)
        .pod(&pod)
        .run(&runtime)
        .await;
    assert_eq!(exit.reason, ExitReason::Error, "{exit:?}");
    let message = exit.message.unwrap_or_default();
    assert!(
        message.contains("the pod's limit of 50 open files was reached"),
        "{message}"
    );
    assert_eq!(pod.files.used(), 0, "an ended guest holds no files");
    assert_eq!(runtime.budgets().files.used(), 0);
}

#[tokio::test]
async fn the_nodes_open_file_limit_holds_whatever_a_pod_may_hold() {
    let runtime = runtime_with(|config| config.guest_open_files = 30);
    let dir = tempfile::tempdir().unwrap();
    let (exit, _) = RunBuilder::steps(&["open-files-forever", "/d/f"])
        .mount(dir.path(), "/d", false)
        .pod(&PodShare::new(10_000))
        .run(&runtime)
        .await;
    let message = exit.message.unwrap_or_default();
    assert!(
        message.contains("the node's limit of 30 open files"),
        "{message}"
    );
    assert_eq!(runtime.budgets().files.used(), 0);
}

#[tokio::test]
async fn a_write_past_the_disks_room_above_the_stores_reserve_fails() {
    let runtime = runtime_with(|_| {});
    runtime.budgets().disk.measured(5 * GIB + 3 * MIB, 5 * GIB);
    let dir = tempfile::tempdir().unwrap();
    let (exit, lines) = RunBuilder::steps(&["write-file-forever", "/d/f"])
        .mount(dir.path(), "/d", false)
        .run(&runtime)
        .await;
    assert_eq!(exit.code, 1, "{exit:?} {lines:?}");
    let stderr: Vec<&str> = lines
        .iter()
        .filter(|l| l.stream == Stream::Stderr)
        .map(|l| l.text.as_str())
        .collect();
    // The host refuses with ENOSPC; wasi-libc reports every failed stream write as EIO.
    assert!(
        stderr
            .iter()
            .any(|l| l.contains("No space left on device") || l.contains("I/O error")),
        "{stderr:?}"
    );
    let written = std::fs::metadata(dir.path().join("f")).unwrap().len();
    assert!(written <= 3 * MIB, "wrote {written} bytes");
    assert!(stdout(&lines).contains(&"wrote 2 MiB"), "{lines:?}");
}

const GIB: u64 = 1024 * MIB;

#[tokio::test]
async fn a_guest_without_a_limit_is_oom_killed_at_the_nodes_memory_for_pods() {
    let runtime = runtime_with(|config| config.guest_memory_bytes = Some(48 * MIB));
    let (exit, _) = RunBuilder::steps(&["allocate-forever"]).run(&runtime).await;
    assert_eq!(
        (exit.code, exit.reason),
        (EXIT_CODE_KILLED, ExitReason::OomKilled),
        "{exit:?}"
    );
    let message = exit.message.unwrap_or_default();
    assert!(message.contains("the node's memory for pods"), "{message}");
    let node = runtime.budgets().memory.as_ref().unwrap();
    assert_eq!(node.used(), 0, "an ended guest holds no memory");
}
