//! Crash-loop back-off: how long a node waits before starting a failed container again.

use std::time::Duration;

/// Exponential back-off: no wait before the first restart, then `initial`, doubling up to `max`
/// (Kubernetes: 10 s doubling to 5 min).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(10),
            max: Duration::from_secs(300),
        }
    }
}

impl Backoff {
    /// The wait before restart number `restarts + 1`.
    pub fn delay(&self, restarts: u32) -> Duration {
        if restarts == 0 {
            return Duration::ZERO;
        }
        let factor = 1u32.checked_shl(restarts - 1).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_the_second_restart_and_stop_at_the_cap() {
        let backoff = Backoff::default();
        let delays: Vec<u64> = (0..8).map(|n| backoff.delay(n).as_secs()).collect();
        assert_eq!(delays, [0, 10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(backoff.delay(200), Duration::from_secs(300));
    }
}
