//! The threads guests run on: a tokio runtime of their own whose workers run in the kernel's
//! idle scheduling class, so a spinning or log-flooding guest takes only the CPU the API server,
//! the store and the controllers leave over.
//!
//! Its workers look at their I/O and timer driver after every task poll (tokio's default is
//! every 61st, or when idle). A guest yields every few milliseconds and is at once ready
//! again, so with every guest worker busy the default left wake-ups waiting for 61 slices:
//! `cargo bench --bench store` measured write p50 of 0.4–6 s beside two busy guests, and
//! 3.6 ms with this.

use std::future::Future;
use std::sync::Mutex;

use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use super::Error;

/// How much nicer than the rest of the process guests' threads are where the kernel refuses
/// them the idle class: at nice 10 a thread of the control plane gets about ten times a guest
/// thread's share of a contended core.
const GUEST_NICENESS: i32 = 10;

/// A multi-thread tokio runtime, one worker per core, in the idle scheduling class.
pub(super) struct GuestThreads {
    handle: Handle,
    /// Taken by [`GuestThreads::stop`].
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
}

impl GuestThreads {
    pub(super) fn start() -> Result<GuestThreads, Error> {
        let workers = std::thread::available_parallelism().map_or(2, usize::from);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name("wasm-guest")
            // See the module's doc: wake-ups are noticed between two guests' slices.
            .event_interval(1)
            .on_thread_start(lower_priority)
            .enable_all()
            .build()
            .map_err(|e| Error::Engine(format!("guest threads: {e}")))?;
        Ok(GuestThreads {
            handle: runtime.handle().clone(),
            runtime: Mutex::new(Some(runtime)),
        })
    }

    /// Ends every guest still running and the threads; a guest spawned after this ends at
    /// once. Guests hold their runtime, so without this a node dropped while guests ran (a
    /// test's cluster) would keep them, its engine and its address space reservation.
    pub(super) fn stop(&self) {
        let taken = self
            .runtime
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(runtime) = taken {
            // Dropping a runtime waits for its threads, which an async caller may not do.
            runtime.shutdown_background();
        }
    }

    /// Runs `future` (a guest's instance and the host calls it makes) on the guest threads.
    pub(super) fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(future)
    }
}

impl Drop for GuestThreads {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Moves the calling thread into the kernel's idle scheduling class (`SCHED_IDLE`), for
/// threads that do guests' work (theirs, and the one writing their logs). A thread of the
/// control plane that wakes preempts it at once, and it gets the CPU that no other thread
/// wants, as Kubernetes gives BestEffort pods the least CPU weight (`cpu.shares` 2). In six
/// paired runs of `cargo bench --bench store`, the write p99 beside a log flood and a spinner
/// had a median of 16.9 ms (6.9–219) with guests at nice 10, and 7.5 ms (5.3–20.4) with this.
/// Entering the class needs no privilege; if the kernel refuses anyway, the thread raises its
/// nice value instead.
pub(in crate::node) fn lower_priority() {
    let Err(refused) = enter_idle_class() else {
        return;
    };
    let thread = rustix::thread::gettid();
    let current = rustix::process::getpriority_process(Some(thread)).unwrap_or(0);
    if let Err(error) = rustix::process::setpriority_process(Some(thread), current + GUEST_NICENESS)
    {
        tracing::warn!(%refused, %error, "guest threads keep the process's CPU priority");
    }
}

#[allow(unsafe_code)]
fn enter_idle_class() -> std::io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` outlives the call, which only reads it; pid 0 is the calling thread.
    let result = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &raw const param) };
    if result == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The scheduling policy in a thread's `/proc/.../stat` line (its 41st field).
#[cfg(test)]
pub(in crate::node) fn policy_in_stat(stat: &str) -> Option<i32> {
    // After the parenthesised command, which may hold spaces: state is field 3.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    fields.get(41 - 3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own_policy() -> i32 {
        policy_in_stat(&std::fs::read_to_string("/proc/thread-self/stat").unwrap()).unwrap()
    }

    #[test]
    fn guest_threads_run_in_the_idle_class_and_the_caller_does_not() {
        let guests = GuestThreads::start().unwrap();
        let caller = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let theirs = caller
            .block_on(guests.spawn(async { own_policy() }))
            .unwrap();
        assert_eq!(theirs, libc::SCHED_IDLE);
        assert_ne!(own_policy(), libc::SCHED_IDLE);
    }
}
