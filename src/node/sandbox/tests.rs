//! Sandbox tests against the real `exerciser` component.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::*;
use crate::node::logs::{ContainerLog, DEFAULT_CAPACITY_BYTES, LogLine};
use crate::node::runtime::{Runtime, RuntimeConfig};

const MIB: u64 = 1024 * 1024;

/// The exerciser built by build.rs (or by hand into wasm-samples/target).
pub(crate) fn exerciser() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let samples = option_env!("WASMKUBE_SAMPLES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("wasm-samples"));
    let candidates = [
        samples.join("exerciser.wasm"),
        manifest.join("wasm-samples/target/wasm32-wasip2/release/exerciser.wasm"),
    ];
    candidates
        .iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("exerciser component not built; looked at {candidates:?}"))
        .clone()
}

/// A runtime whose artifact cache is shared by this test binary, so only
/// the first test pays for compiling the exerciser.
pub(crate) fn shared_runtime() -> Runtime {
    let cache_dir = std::env::temp_dir().join("wasmkube-node-tests-cache");
    Runtime::new(RuntimeConfig {
        cache_dir,
        ..RuntimeConfig::default()
    })
    .expect("runtime")
}

/// A runtime like [`shared_runtime`] with node-wide budgets of its own.
pub(super) fn runtime_with(adjust: impl FnOnce(&mut RuntimeConfig)) -> Runtime {
    let mut config = RuntimeConfig {
        cache_dir: std::env::temp_dir().join("wasmkube-node-tests-cache"),
        ..RuntimeConfig::default()
    };
    adjust(&mut config);
    Runtime::new(config).expect("runtime")
}

/// A [`ContainerRun`] of the exerciser with `steps`, built up fluently.
pub(super) struct RunBuilder {
    pub(super) run: ContainerRun,
}

impl RunBuilder {
    pub(super) fn steps(steps: &[&str]) -> RunBuilder {
        RunBuilder {
            run: ContainerRun {
                name: "exerciser".into(),
                args: steps.iter().map(|s| s.to_string()).collect(),
                env: Vec::new(),
                mounts: Vec::new(),
                memory_limit: None,
                cpu_limit_millicores: None,
                pod: PodShare::new(1024),
                network: None,
                ports: Vec::new(),
                log: ContainerLog::new(DEFAULT_CAPACITY_BYTES),
            },
        }
    }

    fn env(mut self, name: &str, value: &str) -> Self {
        self.run.env.push((name.into(), value.into()));
        self
    }

    pub(super) fn pod(mut self, share: &Arc<PodShare>) -> Self {
        self.run.pod = Arc::clone(share);
        self
    }

    pub(super) fn mount(mut self, host: &Path, guest: &str, read_only: bool) -> Self {
        self.run.mounts.push(Mount {
            host_path: host.to_owned(),
            guest_path: guest.into(),
            read_only,
        });
        self
    }

    fn memory(mut self, bytes: u64) -> Self {
        self.run.memory_limit = Some(bytes);
        self
    }

    fn cpu(mut self, millicores: u64) -> Self {
        self.run.cpu_limit_millicores = Some(millicores);
        self
    }

    fn log_capacity(mut self, bytes: usize) -> Self {
        self.run.log = ContainerLog::new(bytes);
        self
    }

    /// Runs to the end (under a timeout); returns the exit and the log.
    pub(super) async fn run(self, runtime: &Runtime) -> (Exit, Vec<LogLine>) {
        let loaded = runtime.load(&exerciser()).await.expect("load exerciser");
        let log = Arc::clone(&self.run.log);
        let run = runtime.run(&loaded.component, self.run, CancellationToken::new());
        let exit = tokio::time::timeout(Duration::from_secs(60), run)
            .await
            .expect("container should finish within 60 s");
        (exit, log.lines(None, None))
    }
}

pub(super) fn stdout(lines: &[LogLine]) -> Vec<&str> {
    lines
        .iter()
        .filter(|l| l.stream == crate::node::logs::Stream::Stdout)
        .map(|l| l.text.as_str())
        .collect()
}

#[tokio::test]
async fn printed_line_is_captured_and_a_clean_exit_is_completed() {
    let (exit, lines) = RunBuilder::steps(&["print", "hello world"])
        .run(&shared_runtime())
        .await;
    assert_eq!(exit, Exit::code(0));
    assert_eq!(exit.reason, ExitReason::Completed);
    assert_eq!(stdout(&lines), ["hello world"]);
}

#[tokio::test]
async fn guest_exit_ends_the_run_with_its_status() {
    let runtime = shared_runtime();
    let (exit, lines) = RunBuilder::steps(&["print", "bye", "exit", "3", "print", "never"])
        .run(&runtime)
        .await;
    assert_eq!(exit.reason, ExitReason::Error, "{exit:?}");
    assert_eq!(
        exit.code, 3,
        "the exerciser exits through exit-with-code: {exit:?}"
    );
    assert_eq!(stdout(&lines), ["bye"]);
    let (exit, _) = RunBuilder::steps(&["exit", "0", "print", "never"])
        .run(&runtime)
        .await;
    assert_eq!(exit, Exit::code(0));
}

#[test]
fn wasi_exit_status_becomes_the_exit_code() {
    let exit = |code| exit_of_error(&wasmtime::format_err!(I32Exit(code)), 0);
    assert_eq!(
        exit(3),
        Exit {
            code: 3,
            reason: ExitReason::Error,
            message: None
        }
    );
    assert_eq!(exit(0).reason, ExitReason::Completed);
    let trap = exit_of_error(
        &wasmtime::Error::from(wasmtime::Trap::UnreachableCodeReached),
        0,
    );
    assert_eq!((trap.code, trap.reason), (134, ExitReason::Error));
}

#[tokio::test]
async fn guest_sees_its_name_args_and_only_the_given_env() {
    let (exit, lines) = RunBuilder::steps(&["args", "env", "GREETING", "env", "HOME"])
        .env("GREETING", "hi there")
        .run(&shared_runtime())
        .await;
    assert_eq!(exit.reason, ExitReason::Completed);
    assert_eq!(
        stdout(&lines),
        [
            "argv[0]=exerciser",
            "argv[1]=args",
            "argv[2]=env",
            "argv[3]=GREETING",
            "argv[4]=env",
            "argv[5]=HOME",
            "GREETING=hi there",
            "HOME unset",
        ]
    );
}

#[tokio::test]
async fn file_written_through_a_mount_is_on_the_host_and_readable_by_the_next_run() {
    let runtime = shared_runtime();
    let dir = tempfile::tempdir().unwrap();
    let (exit, _) = RunBuilder::steps(&["write", "/data/note.txt", "kept"])
        .mount(dir.path(), "/data", false)
        .run(&runtime)
        .await;
    assert_eq!(exit.reason, ExitReason::Completed, "{exit:?}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("note.txt")).unwrap(),
        "kept\n"
    );
    let (exit, lines) = RunBuilder::steps(&["read", "/data/note.txt"])
        .mount(dir.path(), "/data", true)
        .run(&runtime)
        .await;
    assert_eq!(exit.reason, ExitReason::Completed, "{exit:?}");
    assert_eq!(stdout(&lines), ["kept"]);
}

#[tokio::test]
async fn read_only_mount_rejects_writes() {
    let dir = tempfile::tempdir().unwrap();
    let (exit, _) = RunBuilder::steps(&["write", "/data/note.txt", "nope"])
        .mount(dir.path(), "/data", true)
        .run(&shared_runtime())
        .await;
    assert_eq!(exit.reason, ExitReason::Error);
    assert!(!dir.path().join("note.txt").exists());
}

#[tokio::test]
async fn nothing_outside_the_mounts_is_visible() {
    let runtime = shared_runtime();
    let dir = tempfile::tempdir().unwrap();
    for path in ["/etc/passwd", "/data/../etc/passwd", "../etc/passwd"] {
        let (exit, lines) = RunBuilder::steps(&["read", path])
            .mount(dir.path(), "/data", false)
            .run(&runtime)
            .await;
        assert_eq!(exit.reason, ExitReason::Error, "read {path}: {lines:?}");
        assert!(stdout(&lines).is_empty(), "read {path} printed {lines:?}");
    }
}

#[tokio::test]
async fn network_is_denied() {
    let (exit, lines) = RunBuilder::steps(&["listen", "18080", "connect", "127.0.0.1:1"])
        .run(&shared_runtime())
        .await;
    assert_eq!(exit.reason, ExitReason::Completed);
    let out = stdout(&lines);
    assert!(out[0].starts_with("listen denied"), "{out:?}");
    assert!(out[1].starts_with("connect denied"), "{out:?}");
}

#[tokio::test]
async fn allocation_past_the_memory_limit_is_oom_killed() {
    let runtime = shared_runtime();
    let (exit, _) = RunBuilder::steps(&["alloc", "200"])
        .memory(64 * MIB)
        .run(&runtime)
        .await;
    assert_eq!(
        (exit.code, exit.reason),
        (137, ExitReason::OomKilled),
        "{exit:?}"
    );
    let (exit, lines) = RunBuilder::steps(&["alloc", "16"])
        .memory(64 * MIB)
        .run(&runtime)
        .await;
    assert_eq!(exit.reason, ExitReason::Completed, "{exit:?}");
    assert_eq!(stdout(&lines), ["allocated 16 MiB"]);
}

#[tokio::test]
async fn guest_panic_is_an_error_with_code_134_and_the_trap_message() {
    // 3000 MiB does not fit a wasm32 `Vec`: the guest panics and aborts.
    let (exit, lines) = RunBuilder::steps(&["alloc", "3000"])
        .run(&shared_runtime())
        .await;
    assert_eq!(
        (exit.code, exit.reason),
        (134, ExitReason::Error),
        "{exit:?}"
    );
    let message = exit.message.expect("trap message");
    assert!(message.contains("wasm trap"), "{message}");
    assert!(
        lines.iter().any(|l| l.text.contains("panicked")),
        "{lines:?}"
    );
}

#[tokio::test]
async fn flooding_output_keeps_the_log_within_its_capacity() {
    let (exit, lines) = RunBuilder::steps(&["flood", "8000000", "print", "end"])
        .log_capacity(256 * 1024)
        .run(&shared_runtime())
        .await;
    assert_eq!(exit.reason, ExitReason::Completed);
    let kept: usize = lines.iter().map(|l| l.text.len()).sum();
    assert!(kept <= 256 * 1024, "kept {kept} bytes");
    assert_eq!(lines.last().unwrap().text, "end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_spinning_guest_is_killed_promptly() {
    let runtime = shared_runtime();
    let loaded = runtime.load(&exerciser()).await.unwrap();
    let cancel = CancellationToken::new();
    let run = RunBuilder::steps(&["print", "spinning", "spin"]).run;
    let log = Arc::clone(&run.log);
    let task = {
        let (runtime, cancel) = (runtime.clone(), cancel.clone());
        tokio::spawn(async move { runtime.run(&loaded.component, run, cancel).await })
    };
    let started = tokio::time::timeout(Duration::from_secs(30), log.wait_for_more(0)).await;
    started.expect("guest should start and print");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let cancelled_at = Instant::now();
    cancel.cancel();
    let exit = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("a cancelled guest should stop")
        .unwrap();
    let took = cancelled_at.elapsed();
    assert_eq!((exit.code, exit.reason), (137, ExitReason::Killed));
    // Generous for a shared, noisy machine; the guest checks for cancellation every tick.
    assert!(took < Duration::from_secs(1), "stopping took {took:?}");
    assert!(log.is_closed());
}

/// Runs `work N` to completion.
async fn run_work(runtime: &Runtime, millions: &str) {
    let (exit, lines) = RunBuilder::steps(&["work", millions]).run(runtime).await;
    assert_eq!(exit.reason, ExitReason::Completed, "{exit:?}");
    assert!(stdout(&lines)[0].starts_with("work done in"), "{lines:?}");
}

/// Spinning guests yield to the async runtime, so on a single thread (the default test
/// runtime) other work still finishes while they spin. How much they slow it is a budget,
/// measured by `cargo bench --bench cluster`, not asserted here.
#[tokio::test]
async fn spinning_guests_never_stop_other_work_on_the_same_thread() {
    let runtime = shared_runtime();
    let loaded = runtime.load(&exerciser()).await.unwrap();
    let cancel = CancellationToken::new();
    let spinners: Vec<_> = [Some(100), None]
        .into_iter()
        .map(|cpu| {
            let mut builder = RunBuilder::steps(&["spin"]);
            if let Some(millicores) = cpu {
                builder = builder.cpu(millicores);
            }
            let (runtime, loaded, cancel) = (runtime.clone(), loaded.clone(), cancel.clone());
            tokio::spawn(async move { runtime.run(&loaded.component, builder.run, cancel).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    run_work(&runtime, "50").await;
    cancel.cancel();
    for spinner in spinners {
        assert_eq!(spinner.await.unwrap().reason, ExitReason::Killed);
    }
}
