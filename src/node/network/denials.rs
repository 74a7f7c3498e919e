//! What the pod network refused a pod: counted, and told in the pod's events (`NetworkDenied`,
//! one per destination whose count goes up), at most once a second so a guest retrying in a
//! loop cannot flood the API.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Shortest time between two reports of one pod's denials.
const REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// Why a connection to an address outside the cluster (and not allowed out) was refused.
pub const OUTSIDE: &str = "outside the pod network";
/// Why a connection a NetworkPolicy does not allow was refused.
pub const BY_POLICY: &str = "not allowed by the NetworkPolicies of its namespaces";

/// Tells someone (the pod worker, in an event) about a denial; its argument is the message.
pub type Report = Box<dyn Fn(&str) + Send + Sync>;

/// One pod's denied connections.
#[derive(Default)]
pub struct Denials {
    count: AtomicU64,
    last_report: Mutex<Option<Instant>>,
    report: OnceLock<Report>,
}

impl Denials {
    /// Where denials are reported from now on (the first call wins).
    pub fn report_to(&self, report: Report) {
        let _ = self.report.set(report);
    }

    /// Counts a refused connection (or datagram) to `to`, and reports it (saying `why`) unless
    /// one was reported less than a second ago.
    pub fn deny(&self, to: SocketAddr, why: &str) {
        let count = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::debug!(%to, count, "pod network denied a connection");
        let Some(report) = self.report.get() else {
            return;
        };
        {
            let mut last = self.last_report.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            if last.is_some_and(|at| now.duration_since(at) < REPORT_INTERVAL) {
                return;
            }
            *last = Some(now);
        }
        // The same message for the same destination: the event's count goes up.
        report(&format!("connection to {to} denied: {why}"));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_burst_of_denials_is_reported_once() {
        let denials = Denials::default();
        let reports = Arc::new(Mutex::new(Vec::new()));
        let sink = reports.clone();
        denials.deny("10.0.0.1:80".parse().unwrap(), OUTSIDE);
        denials.report_to(Box::new(move |m| sink.lock().unwrap().push(m.to_string())));
        for _ in 0..100 {
            denials.deny("192.168.1.1:22".parse().unwrap(), OUTSIDE);
        }
        let reports = reports.lock().unwrap();
        assert_eq!(reports.len(), 1, "{reports:?}");
        assert!(reports[0].contains("192.168.1.1:22"), "{}", reports[0]);
    }
}
