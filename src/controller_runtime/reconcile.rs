//! The reconcile contract, as kube-runtime has it, and the workers that drive a queue through it.
//!
//! A reconciler is handed a key, never the reason it ran: it reads the desired and the observed
//! state (from caches), makes one step towards the first, and says when to look again. So it must
//! be level-triggered and idempotent: running it twice, or after missed events, is harmless.
//!
//! A reconcile that panics is a bug, but one object must not stop a controller: the panic is
//! caught, logged with its message and reported, and the key is retried with back-off.

use std::fmt::Display;
use std::future::Future;
use std::hash::Hash;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::queue::{Outcome, WorkQueue};

/// What a reconcile asks for once it succeeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing more until something changes.
    Done,
    /// Look again after this long even if nothing changes (a time-based condition is pending).
    RequeueAfter(Duration),
}

impl Action {
    /// The earlier of two requests to look again.
    pub fn min(self, other: Action) -> Action {
        match (self, other) {
            (Action::RequeueAfter(a), Action::RequeueAfter(b)) => Action::RequeueAfter(a.min(b)),
            (Action::RequeueAfter(a), Action::Done) | (Action::Done, Action::RequeueAfter(a)) => {
                Action::RequeueAfter(a)
            }
            (Action::Done, Action::Done) => Action::Done,
        }
    }
}

/// Runs `workers` workers taking keys from `queue` through `reconcile` until `shutdown`; a
/// failed key is retried after its back-off. A reconcile that panics counts as failed and is
/// handed to `report_panic` with the panic's message (to write a Warning event about the
/// object). Each run is one `reconcile` span naming the controller and the key. Returns once
/// every worker has finished its current key.
pub async fn run_workers<K, E, F, Fut, P>(
    controller: &'static str,
    queue: Arc<WorkQueue<K>>,
    workers: usize,
    shutdown: CancellationToken,
    reconcile: F,
    report_panic: P,
) where
    K: Clone + Eq + Hash + Ord + Display + Send + Sync + 'static,
    E: Display,
    F: Fn(K) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<Action, E>> + Send,
    P: Fn(&K, &str) + Clone + Send + 'static,
{
    let mut tasks = JoinSet::new();
    for _ in 0..workers.max(1) {
        let (queue, reconcile) = (queue.clone(), reconcile.clone());
        let report_panic = report_panic.clone();
        tasks.spawn(async move {
            while let Some(key) = queue.next().await {
                let span = tracing::debug_span!("reconcile", controller, object = %key);
                let (attempt, object) = (reconcile.clone(), key.clone());
                let run = AssertUnwindSafe(async move { attempt(object).await });
                let outcome = match run.catch_unwind().instrument(span).await {
                    Ok(Ok(Action::Done)) => Outcome::Done,
                    Ok(Ok(Action::RequeueAfter(delay))) => Outcome::RequeueAfter(delay),
                    Ok(Err(error)) => {
                        let failures = queue.failures(&key) + 1;
                        tracing::warn!(controller, object = %key, failures, %error, "reconcile failed; backing off");
                        Outcome::Failed
                    }
                    Err(panic) => {
                        let message = crate::panics::message(&*panic);
                        tracing::error!(controller, object = %key, panic = %message, "reconcile panicked; backing off");
                        report_panic(&key, &message);
                        Outcome::Failed
                    }
                };
                queue.done(key, outcome);
            }
        });
    }
    shutdown.cancelled().await;
    queue.shut_down();
    while tasks.join_next().await.is_some() {}
}

/// Runs one synchronous step of a loop, turning a panic into its message so the loop goes on
/// with its other objects.
///
/// # Errors
/// The panic's message.
pub fn catch_panic<T>(step: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(AssertUnwindSafe(step))
        .map_err(|panic| crate::panics::message(&*panic))
}

#[cfg(test)]
mod tests {
    use super::super::backoff::Backoff;
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Default)]
    struct Probe {
        running: AtomicUsize,
        most_at_once: AtomicUsize,
        runs: Mutex<Vec<(u32, tokio::time::Instant)>>,
    }

    async fn reconcile(probe: Arc<Probe>, key: u32) -> Result<Action, String> {
        let now = probe.running.fetch_add(1, Ordering::SeqCst) + 1;
        probe.most_at_once.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(10)).await;
        probe.running.fetch_sub(1, Ordering::SeqCst);
        let mut runs = probe.runs.lock().unwrap();
        runs.push((key, tokio::time::Instant::now()));
        let count = runs.iter().filter(|(k, _)| *k == key).count();
        match key {
            0 if count < 3 => Err("not yet".into()),
            1 if count < 2 => Ok(Action::RequeueAfter(Duration::from_secs(1))),
            _ => Ok(Action::Done),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn workers_are_bounded_retry_failures_and_honour_requeue_after() {
        let backoff = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        let queue = Arc::new(WorkQueue::new(backoff));
        for key in 0..10 {
            queue.add(key);
        }
        let probe = Arc::new(Probe::default());
        let shutdown = CancellationToken::new();
        let start = tokio::time::Instant::now();
        let workers = tokio::spawn(run_workers(
            "test",
            queue.clone(),
            3,
            shutdown.clone(),
            {
                let probe = probe.clone();
                move |key| reconcile(probe.clone(), key)
            },
            |_: &u32, _: &str| {},
        ));
        tokio::time::sleep(Duration::from_secs(5)).await;
        shutdown.cancel();
        workers.await.unwrap();

        assert_eq!(probe.most_at_once.load(Ordering::SeqCst), 3);
        let runs = probe.runs.lock().unwrap();
        let times = |key: u32| -> Vec<u128> {
            runs.iter()
                .filter(|(k, _)| *k == key)
                .map(|(_, t)| (*t - start).as_millis())
                .collect()
        };
        assert_eq!(
            times(0),
            [10, 120, 330],
            "retried after 100 ms, then 200 ms"
        );
        assert_eq!(times(1), [10, 1020], "looked at again after a second");
        assert_eq!(runs.len(), 13);
    }

    #[tokio::test(start_paused = true)]
    async fn a_panicking_reconcile_is_reported_released_and_retried_with_back_off() {
        let backoff = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        let queue = Arc::new(WorkQueue::new(backoff));
        queue.add(7u32);
        queue.add(8u32);
        let runs = Arc::new(Mutex::new(Vec::new()));
        let reported = Arc::new(Mutex::new(Vec::new()));
        let shutdown = CancellationToken::new();
        let workers = tokio::spawn(run_workers(
            "test",
            queue.clone(),
            1,
            shutdown.clone(),
            {
                let runs = runs.clone();
                move |key: u32| {
                    let runs = runs.clone();
                    async move {
                        let count = {
                            let mut runs = runs.lock().unwrap();
                            runs.push(key);
                            runs.iter().filter(|k| **k == key).count()
                        };
                        if key == 7 && count < 3 {
                            panic!("overflow in object {key}");
                        }
                        Ok::<_, String>(Action::Done)
                    }
                }
            },
            {
                let reported = reported.clone();
                move |key: &u32, message: &str| {
                    reported.lock().unwrap().push((*key, message.to_string()))
                }
            },
        ));
        tokio::time::sleep(Duration::from_secs(2)).await;
        shutdown.cancel();
        workers.await.unwrap();
        assert_eq!(*runs.lock().unwrap(), [7, 8, 7, 7], "the other key went on");
        let reported = reported.lock().unwrap();
        assert_eq!(reported.len(), 2);
        assert_eq!(reported[0], (7, "overflow in object 7".to_string()));
    }

    #[test]
    fn the_earlier_requeue_wins() {
        let soon = Action::RequeueAfter(Duration::from_secs(1));
        let later = Action::RequeueAfter(Duration::from_secs(9));
        assert_eq!(soon.min(later), soon);
        assert_eq!(Action::Done.min(later), later);
        assert_eq!(Action::Done.min(Action::Done), Action::Done);
    }
}
