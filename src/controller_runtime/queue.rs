//! The work queue between informers and workers: keys, not events, so a burst of changes to one
//! object becomes one reconcile.
//!
//! # Guarantees
//! - A key is pending at most once: adding it again before a worker takes it changes nothing
//!   (except bringing a delayed key forward).
//! - A key is never handed to two workers at once: added while a worker has it, it is handed
//!   out again once that worker is `done`.
//! - After a failure a key waits its back-off (per key, doubling), which a success resets.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::backoff::Backoff;

/// The back-off of a failing key when none is given: 5 ms doubling to 30 s (client-go starts at
/// 5 ms and caps at 1000 s; a cluster in one process recovers faster than that).
pub const DEFAULT_BACKOFF: Backoff = Backoff {
    initial: Duration::from_millis(5),
    max: Duration::from_secs(30),
};

/// How a worker's turn with a key ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Done; forget its failures.
    Done,
    /// Done; look again after this long.
    RequeueAfter(Duration),
    /// Failed; retry after the key's back-off.
    Failed,
}

struct State<K> {
    /// Keys ready to hand out, in order of arrival, and the same as a set.
    ready: VecDeque<K>,
    queued: HashSet<K>,
    /// Keys waiting for a time, and the time each waits for.
    delayed: BTreeSet<(Instant, K)>,
    due: HashMap<K, Instant>,
    /// Keys a worker has, and whether they were added again meanwhile.
    active: HashMap<K, bool>,
    failures: HashMap<K, u32>,
    shut_down: bool,
}

/// A keyed, deduplicating, delaying work queue shared by an informer's handlers and the workers.
pub struct WorkQueue<K> {
    state: Mutex<State<K>>,
    changed: Notify,
    backoff: Backoff,
}

impl<K: Clone + Eq + Hash + Ord> WorkQueue<K> {
    pub fn new(backoff: Backoff) -> Self {
        Self {
            state: Mutex::new(State {
                ready: VecDeque::new(),
                queued: HashSet::new(),
                delayed: BTreeSet::new(),
                due: HashMap::new(),
                active: HashMap::new(),
                failures: HashMap::new(),
                shut_down: false,
            }),
            changed: Notify::new(),
            backoff,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<K>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks for `key` to be looked at as soon as possible.
    pub fn add(&self, key: K) {
        let mut state = self.lock();
        if let Some(due) = state.due.remove(&key) {
            state.delayed.remove(&(due, key.clone()));
        }
        state.make_ready(key);
        drop(state);
        self.changed.notify_waiters();
    }

    /// Asks for `key` to be looked at after `delay` (or sooner, if it is already due sooner).
    pub fn add_after(&self, key: K, delay: Duration) {
        if delay.is_zero() {
            return self.add(key);
        }
        let at = Instant::now() + delay;
        let mut state = self.lock();
        if state.queued.contains(&key) {
            return;
        }
        match state.due.entry(key.clone()) {
            Entry::Occupied(due) if *due.get() <= at => return,
            Entry::Occupied(mut due) => {
                let earlier = std::mem::replace(due.get_mut(), at);
                state.delayed.remove(&(earlier, key.clone()));
            }
            Entry::Vacant(due) => {
                due.insert(at);
            }
        }
        state.delayed.insert((at, key));
        drop(state);
        self.changed.notify_waiters();
    }

    /// Waits for a key to work on; `None` once the queue is shut down. Call `done` with it after.
    pub async fn next(&self) -> Option<K> {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let wake_at = {
                let mut state = self.lock();
                if state.shut_down {
                    return None;
                }
                state.promote_due(Instant::now());
                if let Some(key) = state.ready.pop_front() {
                    state.queued.remove(&key);
                    state.active.insert(key.clone(), false);
                    return Some(key);
                }
                state.delayed.first().map(|(at, _)| *at)
            };
            match wake_at {
                Some(at) => tokio::select! {
                    _ = &mut changed => {}
                    _ = tokio::time::sleep_until(at) => {}
                },
                None => changed.await,
            }
        }
    }

    /// Hands `key` back after work on it, with how that went.
    pub fn done(&self, key: K, outcome: Outcome) {
        let mut state = self.lock();
        let added_meanwhile = state.active.remove(&key).unwrap_or(false);
        let retry = match outcome {
            Outcome::Done => {
                state.failures.remove(&key);
                None
            }
            Outcome::RequeueAfter(delay) => {
                state.failures.remove(&key);
                Some(delay)
            }
            Outcome::Failed => {
                let failures = state.failures.entry(key.clone()).or_insert(0);
                *failures = failures.saturating_add(1);
                Some(self.backoff.delay(*failures))
            }
        };
        drop(state);
        if added_meanwhile {
            self.add(key);
        } else if let Some(delay) = retry {
            self.add_after(key, delay);
        } else {
            self.changed.notify_waiters();
        }
    }

    /// How many times `key` has failed in a row.
    pub fn failures(&self, key: &K) -> u32 {
        self.lock().failures.get(key).copied().unwrap_or(0)
    }

    /// Keys waiting to be handed out, now or later.
    pub fn len(&self) -> usize {
        let state = self.lock();
        state.ready.len() + state.delayed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Wakes every waiting worker with `None`; later adds are ignored by `next`.
    pub fn shut_down(&self) {
        self.lock().shut_down = true;
        self.changed.notify_waiters();
    }
}

impl<K: Clone + Eq + Hash + Ord> State<K> {
    fn make_ready(&mut self, key: K) {
        if let Some(added_again) = self.active.get_mut(&key) {
            *added_again = true;
        } else if self.queued.insert(key.clone()) {
            self.ready.push_back(key);
        }
    }

    fn promote_due(&mut self, now: Instant) {
        while let Some((at, _)) = self.delayed.first() {
            if *at > now {
                break;
            }
            let (_, key) = self.delayed.pop_first().expect("checked above");
            self.due.remove(&key);
            self.make_ready(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn queue() -> Arc<WorkQueue<&'static str>> {
        Arc::new(WorkQueue::new(Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        }))
    }

    async fn next_within(queue: &WorkQueue<&'static str>, limit: Duration) -> Option<&'static str> {
        tokio::time::timeout(limit, queue.next())
            .await
            .ok()
            .flatten()
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_added_twice_before_it_is_taken_is_handed_out_once() {
        let queue = queue();
        queue.add("a");
        queue.add("b");
        queue.add("a");
        assert_eq!(queue.len(), 2);
        assert_eq!(queue.next().await, Some("a"));
        assert_eq!(queue.next().await, Some("b"));
        assert_eq!(next_within(&queue, Duration::from_secs(10)).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_added_while_being_worked_on_waits_for_the_worker() {
        let queue = queue();
        queue.add("a");
        let taken = queue.next().await.unwrap();
        queue.add("a");
        assert_eq!(
            next_within(&queue, Duration::from_secs(10)).await,
            None,
            "never to two workers"
        );
        queue.done(taken, Outcome::Done);
        assert_eq!(
            queue.next().await,
            Some("a"),
            "added meanwhile, so handed out again"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn failures_back_off_per_key_doubling_and_success_resets() {
        let queue = queue();
        queue.add("a");
        let mut key = queue.next().await.unwrap();
        let mut waits = Vec::new();
        for _ in 0..5 {
            let failed_at = Instant::now();
            queue.done(key, Outcome::Failed);
            key = queue.next().await.unwrap();
            waits.push(failed_at.elapsed().as_millis());
        }
        assert_eq!(waits, [100, 200, 400, 800, 1000]);
        queue.done(key, Outcome::Done);
        assert_eq!(queue.failures(&"a"), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_key_does_not_hold_up_the_others() {
        let queue = queue();
        queue.add("bad");
        let bad = queue.next().await.unwrap();
        queue.done(bad, Outcome::Failed);
        queue.add("good");
        let start = Instant::now();
        assert_eq!(queue.next().await, Some("good"));
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert_eq!(queue.next().await, Some("bad"));
        assert_eq!(start.elapsed(), Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn requeue_after_hands_the_key_out_once_the_time_has_come() {
        let queue = queue();
        queue.add("a");
        let start = Instant::now();
        let key = queue.next().await.unwrap();
        queue.done(key, Outcome::RequeueAfter(Duration::from_secs(3)));
        queue.add_after("a", Duration::from_secs(5));
        assert_eq!(
            queue.len(),
            1,
            "the later request folds into the earlier one"
        );
        assert_eq!(queue.next().await, Some("a"));
        assert_eq!(start.elapsed(), Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn adding_a_delayed_key_brings_it_forward() {
        let queue = queue();
        queue.add_after("a", Duration::from_secs(60));
        let start = Instant::now();
        let waiter = tokio::spawn({
            let queue = queue.clone();
            async move { queue.next().await }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        queue.add("a");
        assert_eq!(waiter.await.unwrap(), Some("a"));
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        assert!(queue.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn shutting_down_releases_waiting_workers() {
        let queue = queue();
        let waiter = tokio::spawn({
            let queue = queue.clone();
            async move { queue.next().await }
        });
        tokio::task::yield_now().await;
        queue.shut_down();
        assert_eq!(waiter.await.unwrap(), None);
    }
}
