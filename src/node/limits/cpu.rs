//! CPU limits: epoch-deadline accounting and throttling of one guest.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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

/// Measures how long a guest has run and decides when it must pause.
///
/// Called from the epoch-deadline callback. Guest time is the wall time from
/// the moment the guest resumed (recorded by the yield future) to the next
/// deadline, capped at one slice plus a tick so time spent blocked in host
/// calls (which never hit a deadline) is not charged as CPU.
pub struct CpuThrottle {
    /// Share of one core, `millicores / 1000`; `None` = unlimited.
    share: Option<f64>,
    base: Instant,
    /// Nanoseconds after `base` at which the guest last resumed.
    resumed_at: Arc<AtomicU64>,
    window_start: Instant,
    guest_in_window: Duration,
    total_guest: Duration,
}

impl CpuThrottle {
    pub fn new(millicores: Option<u64>) -> CpuThrottle {
        let now = Instant::now();
        CpuThrottle {
            share: millicores.map(|m| m.max(1) as f64 / 1000.0),
            base: now,
            resumed_at: Arc::new(AtomicU64::new(0)),
            window_start: now,
            guest_in_window: Duration::ZERO,
            total_guest: Duration::ZERO,
        }
    }

    /// Ticks until the first deadline.
    pub fn slice_ticks(&self) -> u64 {
        if self.share.is_some() {
            LIMITED_SLICE_TICKS
        } else {
            UNLIMITED_SLICE_TICKS
        }
    }

    /// Approximate CPU time the guest has used so far.
    pub fn guest_time(&self) -> Duration {
        self.total_guest
    }

    /// The epoch-deadline decision: always yield to tokio, sleeping first
    /// when the guest is ahead of its CPU share.
    pub fn on_deadline(&mut self) -> UpdateDeadline {
        let now = Instant::now();
        let resumed = self.base + Duration::from_nanos(self.resumed_at.load(Ordering::Relaxed));
        let pause = self.charge(now, now.saturating_duration_since(resumed));
        let resumed_at = Arc::clone(&self.resumed_at);
        let base = self.base;
        let pause_then_resume = async move {
            match pause {
                Some(pause) => tokio::time::sleep(pause).await,
                None => tokio::task::yield_now().await,
            }
            let nanos = Instant::now().saturating_duration_since(base).as_nanos();
            resumed_at.store(u64::try_from(nanos).unwrap_or(u64::MAX), Ordering::Relaxed);
        };
        UpdateDeadline::YieldCustom(self.slice_ticks(), Box::pin(pause_then_resume))
    }

    /// Books `ran` of guest time at `now`; returns how long to pause so that
    /// guest time stays within `share` of wall time over the window.
    fn charge(&mut self, now: Instant, ran: Duration) -> Option<Duration> {
        let ran = ran.min(EPOCH_TICK * (self.slice_ticks() as u32 + 1));
        self.total_guest += ran;
        let share = self.share?;
        if now.saturating_duration_since(self.window_start) > ACCOUNTING_WINDOW {
            self.window_start = now.checked_sub(ran).unwrap_or(now);
            self.guest_in_window = Duration::ZERO;
        }
        self.guest_in_window += ran;
        let earned_at = self.guest_in_window.div_f64(share);
        let elapsed = now.saturating_duration_since(self.window_start);
        earned_at.checked_sub(elapsed).filter(|d| !d.is_zero())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlimited_guest_is_never_paused() {
        let mut cpu = CpuThrottle::new(None);
        let start = Instant::now();
        for i in 1..100 {
            assert_eq!(cpu.charge(start + EPOCH_TICK * i, EPOCH_TICK), None);
        }
    }

    #[test]
    fn guest_limited_to_100m_pauses_nine_times_as_long_as_it_ran() {
        let mut cpu = CpuThrottle::new(Some(100));
        let start = cpu.window_start;
        let pause = cpu.charge(start + EPOCH_TICK, EPOCH_TICK).unwrap();
        assert_eq!(pause, EPOCH_TICK * 9);
        // After the pause it may run one more tick before pausing again.
        let now = start + EPOCH_TICK * 11;
        assert_eq!(cpu.charge(now, EPOCH_TICK), Some(EPOCH_TICK * 9));
    }

    #[test]
    fn time_blocked_in_host_calls_is_not_charged_as_cpu() {
        let mut cpu = CpuThrottle::new(Some(500));
        let start = cpu.window_start;
        let pause = cpu.charge(
            start + Duration::from_millis(100),
            Duration::from_millis(100),
        );
        assert_eq!(pause, None, "a guest that mostly slept is under its share");
        assert!(cpu.guest_time() <= EPOCH_TICK * 2);
    }
}
