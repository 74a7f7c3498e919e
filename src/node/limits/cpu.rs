//! CPU limits: epoch-deadline accounting and throttling of a container's guests.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use wasmtime::UpdateDeadline;

/// How often the runtime's ticker advances the engine epoch.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);
/// Ticks between yields for a guest without a CPU limit: a spinning guest
/// gives its worker thread back to tokio every few milliseconds.
const UNLIMITED_SLICE_TICKS: u64 = 5;
/// Ticks between checks for a CPU-limited guest (fine-grained throttling).
const LIMITED_SLICE_TICKS: u64 = 1;
/// CPU accounting restarts this often, so an idle guest banks at most one
/// window's worth of burst.
const ACCOUNTING_WINDOW: Duration = Duration::from_secs(1);

/// The time a guest occupies a worker thread: the wall time of every poll of its future,
/// which is its own code and the host calls it makes (writing its logs, reading files), but
/// not the time it sleeps — throttled, or waiting on I/O a host call started.
#[derive(Debug)]
pub struct BusyClock {
    base: Instant,
    /// Nanoseconds after `base` when the current poll (or the last charge inside it) began;
    /// 0 between polls.
    polling_since: AtomicU64,
    /// Busy time of the polls that ended since the last charge.
    banked_nanos: AtomicU64,
}

impl BusyClock {
    pub fn new() -> Arc<BusyClock> {
        Arc::new(BusyClock {
            base: Instant::now(),
            polling_since: AtomicU64::new(0),
            banked_nanos: AtomicU64::new(0),
        })
    }

    fn nanos(&self, at: Instant) -> u64 {
        let nanos = at.saturating_duration_since(self.base).as_nanos();
        u64::try_from(nanos).unwrap_or(u64::MAX).max(1)
    }

    fn poll_started(&self, at: Instant) {
        self.polling_since.store(self.nanos(at), Ordering::Relaxed);
    }

    fn poll_ended(&self, at: Instant) {
        let since = self.polling_since.swap(0, Ordering::Relaxed);
        if since != 0 {
            let busy = self.nanos(at).saturating_sub(since);
            self.banked_nanos.fetch_add(busy, Ordering::Relaxed);
        }
    }

    /// The busy time since the last call (the current poll's so far included).
    fn take(&self, now: Instant) -> Duration {
        let mut nanos = self.banked_nanos.swap(0, Ordering::Relaxed);
        let since = self.polling_since.load(Ordering::Relaxed);
        if since != 0 {
            let now_nanos = self.nanos(now);
            nanos = nanos.saturating_add(now_nanos.saturating_sub(since));
            self.polling_since.store(now_nanos, Ordering::Relaxed);
        }
        Duration::from_nanos(nanos)
    }

    /// `future` with each of its polls timed on this clock.
    pub fn meter<F: Future>(self: &Arc<Self>, future: F) -> Metered<F> {
        Metered {
            future: Box::pin(future),
            clock: Arc::clone(self),
        }
    }
}

/// A future whose polls a [`BusyClock`] times.
pub struct Metered<F> {
    future: Pin<Box<F>>,
    clock: Arc<BusyClock>,
}

impl<F: Future> Future for Metered<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.clock.poll_started(Instant::now());
        let polled = self.future.as_mut().poll(cx);
        self.clock.poll_ended(Instant::now());
        polled
    }
}

/// The CPU share of one container, which all its instances (an HTTP container's concurrent
/// requests) draw on together: guest time is booked in a window of wall time, and whoever runs
/// past the share pauses until the window has caught up.
#[derive(Debug)]
pub struct CpuShare {
    /// Share of one core, `millicores / 1000`; `None` = unlimited.
    share: Option<f64>,
    window: Mutex<Window>,
}

#[derive(Debug)]
struct Window {
    start: Instant,
    used: Duration,
}

impl CpuShare {
    pub fn new(millicores: Option<u64>) -> Arc<CpuShare> {
        Arc::new(CpuShare {
            share: millicores.map(|m| m.max(1) as f64 / 1000.0),
            window: Mutex::new(Window {
                start: Instant::now(),
                used: Duration::ZERO,
            }),
        })
    }

    /// Books `ran` of guest time at `now`; returns how long to pause so that guest time stays
    /// within the share of wall time over the window.
    fn charge(&self, now: Instant, ran: Duration) -> Option<Duration> {
        let share = self.share?;
        let mut window = self.window.lock().unwrap_or_else(|p| p.into_inner());
        if now.saturating_duration_since(window.start) > ACCOUNTING_WINDOW {
            window.start = now.checked_sub(ran).unwrap_or(now);
            window.used = Duration::ZERO;
        }
        window.used += ran;
        let earned_at = window.used.div_f64(share);
        let elapsed = now.saturating_duration_since(window.start);
        earned_at.checked_sub(elapsed).filter(|d| !d.is_zero())
    }
}

/// Decides, at each epoch deadline, whether a guest must pause to keep its container within
/// its CPU share.
///
/// What it charges is what the guest's [`BusyClock`] counted since the last deadline — guest
/// code and the host calls in between, however long — plus the time the node spent on the
/// guest's behalf off its thread (writing its logs). A guest that makes the host work for it
/// pays for that work, so a `10m` guest writing newlines uses about 10m of the machine.
pub struct CpuThrottle {
    share: Arc<CpuShare>,
    clock: Arc<BusyClock>,
    total_guest: Duration,
}

impl CpuThrottle {
    pub fn new(share: Arc<CpuShare>, clock: Arc<BusyClock>) -> CpuThrottle {
        CpuThrottle {
            share,
            clock,
            total_guest: Duration::ZERO,
        }
    }

    /// Ticks until the first deadline.
    pub fn slice_ticks(&self) -> u64 {
        if self.share.share.is_some() {
            LIMITED_SLICE_TICKS
        } else {
            UNLIMITED_SLICE_TICKS
        }
    }

    /// CPU time the guest has been charged so far.
    pub fn guest_time(&self) -> Duration {
        self.total_guest
    }

    /// The epoch-deadline decision: always yield to tokio, sleeping first when the guest is
    /// ahead of its CPU share. `host_time` is work done for the guest elsewhere since the last
    /// deadline.
    pub fn on_deadline(&mut self, host_time: Duration) -> UpdateDeadline {
        let now = Instant::now();
        let ran = self.clock.take(now) + host_time;
        let pause = self.charge(now, ran);
        let pause_then_resume = async move {
            match pause {
                Some(pause) => tokio::time::sleep(pause).await,
                None => tokio::task::yield_now().await,
            }
        };
        UpdateDeadline::YieldCustom(self.slice_ticks(), Box::pin(pause_then_resume))
    }

    fn charge(&mut self, now: Instant, ran: Duration) -> Option<Duration> {
        self.total_guest += ran;
        self.share.charge(now, ran)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window_start(cpu: &CpuThrottle) -> Instant {
        cpu.share.window.lock().unwrap().start
    }

    #[test]
    fn unlimited_guest_is_never_paused() {
        let mut cpu = CpuThrottle::new(CpuShare::new(None), BusyClock::new());
        let start = Instant::now();
        for i in 1..100 {
            assert_eq!(cpu.charge(start + EPOCH_TICK * i, EPOCH_TICK), None);
        }
    }

    #[test]
    fn guest_limited_to_100m_pauses_nine_times_as_long_as_it_ran() {
        let mut cpu = CpuThrottle::new(CpuShare::new(Some(100)), BusyClock::new());
        let start = window_start(&cpu);
        let pause = cpu.charge(start + EPOCH_TICK, EPOCH_TICK).unwrap();
        assert_eq!(pause, EPOCH_TICK * 9);
        // After the pause it may run one more tick before pausing again.
        let now = start + EPOCH_TICK * 11;
        assert_eq!(cpu.charge(now, EPOCH_TICK), Some(EPOCH_TICK * 9));
    }

    #[test]
    fn time_between_polls_is_not_charged_and_time_inside_them_is() {
        let clock = BusyClock::new();
        let t0 = clock.base + Duration::from_secs(1);
        let ms = Duration::from_millis;
        clock.poll_started(t0);
        clock.poll_ended(t0 + ms(2));
        // 100 ms asleep (throttled, or waiting for I/O a host call started).
        clock.poll_started(t0 + ms(102));
        assert_eq!(clock.take(t0 + ms(105)), ms(5));
        assert_eq!(
            clock.take(t0 + ms(106)),
            ms(1),
            "a charge restarts the count"
        );
        clock.poll_ended(t0 + ms(107));
        assert_eq!(clock.take(t0 + ms(500)), ms(1));
    }

    #[test]
    fn a_long_host_call_is_charged_in_full_and_a_10m_guest_pays_for_it() {
        let mut cpu = CpuThrottle::new(CpuShare::new(Some(10)), BusyClock::new());
        let start = window_start(&cpu);
        let ran = Duration::from_millis(50);
        let pause = cpu.charge(start + ran, ran).unwrap();
        assert_eq!(pause, Duration::from_secs(5) - ran);
        assert_eq!(cpu.guest_time(), ran);
    }

    #[test]
    fn instances_of_a_container_share_its_cpu() {
        let share = CpuShare::new(Some(500));
        let mut first = CpuThrottle::new(share.clone(), BusyClock::new());
        let mut second = CpuThrottle::new(share.clone(), BusyClock::new());
        let start = window_start(&first);
        let ran = Duration::from_millis(10);
        assert_eq!(first.charge(start + Duration::from_millis(20), ran), None);
        // Alone, the second would be within its half core; together they are ahead.
        let pause = second
            .charge(start + Duration::from_millis(20), ran)
            .unwrap();
        assert_eq!(pause, Duration::from_millis(20));
    }
}
