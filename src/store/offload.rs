//! Blocking store work (SQL, waiting for a sync to disk) kept from stalling tokio's async workers.

use tokio::runtime::{Handle, RuntimeFlavor};

/// Runs `work`, which may block for milliseconds. On a multi-thread runtime's worker, tokio
/// first hands the worker's queued tasks to another thread, so HTTP handlers and controllers
/// keep running while this thread waits. Elsewhere (a plain thread, a blocking-pool thread, a
/// current-thread runtime, where `block_in_place` would panic) it runs in place.
pub(crate) fn off_worker<T>(work: impl FnOnce() -> T) -> T {
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn blocking_work_on_the_only_worker_leaves_other_tasks_running() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (release, released) = mpsc::channel::<()>();
            // Blocks the only worker until the other task has run.
            let blocked = tokio::spawn(async move {
                off_worker(|| released.recv_timeout(Duration::from_secs(10)))
            });
            let other = tokio::spawn(async move { release.send(()) });
            other.await.unwrap().unwrap();
            assert!(blocked.await.unwrap().is_ok(), "the other task never ran");
        });
    }

    #[tokio::test]
    async fn on_a_current_thread_runtime_work_runs_in_place() {
        assert_eq!(off_worker(|| 7), 7);
    }
}
