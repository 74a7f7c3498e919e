//! The threads guests run on: a tokio runtime of their own whose workers run at a lower OS
//! priority than the control plane's, so a spinning or log-flooding guest takes only the CPU
//! the API server, the store and the controllers leave over.
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

/// How much nicer than the rest of the process guests' threads are: at nice 10 the kernel
/// gives a thread of the control plane about ten times a guest thread's share of a contended
/// core, and an idle control plane leaves guests the whole machine.
const GUEST_NICENESS: i32 = 10;

/// A multi-thread tokio runtime, one worker per core, at [`GUEST_NICENESS`].
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

/// Raises the calling thread's nice value (Linux keeps one per thread) to that of guests, for
/// threads that do guests' work (theirs, and the one writing their logs). Raising it needs no
/// privilege; if the kernel refuses anyway, the thread keeps the process's priority.
pub(in crate::node) fn lower_priority() {
    let thread = rustix::thread::gettid();
    let current = rustix::process::getpriority_process(Some(thread)).unwrap_or(0);
    if let Err(error) = rustix::process::setpriority_process(Some(thread), current + GUEST_NICENESS)
    {
        tracing::warn!(%error, "guest threads keep the process's CPU priority");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_threads_run_at_a_lower_priority_than_the_caller() {
        let guests = GuestThreads::start().unwrap();
        let own = rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap();
        let caller = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let theirs = caller
            .block_on(guests.spawn(async {
                rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap()
            }))
            .unwrap();
        assert_eq!(theirs, (own + GUEST_NICENESS).min(19));
    }
}
