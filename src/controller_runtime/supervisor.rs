//! Keeps a component running: one that panics is logged and started again after a back-off,
//! so a bug met on one object never takes a controller (or the process) down for good.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::FutureExt;
use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;

/// How long a restarted component waits: 1 s doubling to 30 s.
const RESTART_BACKOFF: Backoff = Backoff {
    initial: Duration::from_secs(1),
    max: Duration::from_secs(30),
};

/// A component that ran this long before panicking starts its back-off over.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// Runs `start()` until it returns or `shutdown`; restarts it after each panic.
pub async fn supervise<F, Fut>(component: &'static str, shutdown: CancellationToken, start: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    supervise_with(component, shutdown, start, |_, _| {}).await;
}

/// As [`supervise`], telling `on_panic` the panic's message and the wait before the restart
/// (a pod worker writes it as a Warning event on its pod).
pub async fn supervise_with<F, Fut>(
    component: &'static str,
    shutdown: CancellationToken,
    start: F,
    mut on_panic: impl FnMut(&str, Duration),
) where
    F: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut restarts = 0;
    loop {
        let started = tokio::time::Instant::now();
        let Err(panic) = AssertUnwindSafe(start()).catch_unwind().await else {
            return;
        };
        if started.elapsed() > HEALTHY_RUN {
            restarts = 0;
        }
        restarts += 1;
        let delay = RESTART_BACKOFF.delay(restarts).max(RESTART_BACKOFF.initial);
        let message = crate::panics::message(&*panic);
        tracing::error!(component, panic = %message, restarts, ?delay, "component panicked; restarting");
        on_panic(&message, delay);
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn a_panicking_component_is_started_again_until_it_finishes() {
        let starts = Arc::new(AtomicU32::new(0));
        let counted = starts.clone();
        supervise("test", CancellationToken::new(), move || {
            let count = counted.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                assert!(count >= 3, "start {count} fails");
            }
        })
        .await;
        assert_eq!(starts.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn each_panic_is_told_with_its_message_and_the_wait() {
        let told = std::sync::Mutex::new(Vec::new());
        let starts = AtomicU32::new(0);
        let start = || {
            let count = starts.fetch_add(1, Ordering::SeqCst) + 1;
            async move { assert!(count >= 3, "start {count} fails") }
        };
        let on_panic =
            |message: &str, delay| told.lock().unwrap().push((message.to_string(), delay));
        supervise_with("test", CancellationToken::new(), start, on_panic).await;
        let told = told.into_inner().unwrap();
        assert_eq!(told.len(), 2);
        assert_eq!(told[0].0, "start 1 fails");
        assert_eq!(told[1].1, Duration::from_secs(2), "the wait doubles");
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_ends_the_wait_before_a_restart() {
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        supervise("test", shutdown, || async { panic!("always") }).await;
    }
}
