//! How one front of a Service chooses among its ready endpoints: round robin or least
//! requests (ties taken in turn), with `sessionAffinity: ClientIP` sticking a client to its
//! endpoint first.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use tokio::time::Instant;

use crate::api::kinds::service::LOAD_BALANCER_ALGORITHM;

/// How a Service's endpoints take turns (annotation [`LOAD_BALANCER_ALGORITHM`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Algorithm {
    #[default]
    RoundRobin,
    /// The endpoint with the fewest requests (HTTP) or connections (TCP) the proxy has in
    /// flight to it; connections of pods to a cluster IP follow the counts but add none, as
    /// the proxy does not see them end.
    LeastRequests,
}

impl Algorithm {
    /// The Service's algorithm: validation refuses other values, so an unknown one (a
    /// Service stored before) is round robin.
    pub fn of(service: &Service) -> Algorithm {
        let annotation = service
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(LOAD_BALANCER_ALGORITHM));
        match annotation.map(String::as_str) {
            Some("least-requests") => Algorithm::LeastRequests,
            _ => Algorithm::RoundRobin,
        }
    }
}

/// A request or connection counted against its endpoint until dropped.
#[derive(Debug, Default)]
pub struct InFlight(Option<Arc<AtomicUsize>>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(count) = &self.0 {
            count.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Kept over updates of the Service, so turns, counts and stickiness survive them.
#[derive(Debug, Default)]
pub struct Balance {
    pub algorithm: Algorithm,
    next: AtomicUsize,
    /// With `sessionAffinity: ClientIP`: how long a client sticks, and where it sticks.
    pub affinity: Option<(Duration, Mutex<Stickiness>)>,
    /// Endpoint → what the proxy has in flight to it (least requests only).
    in_flight: Mutex<HashMap<SocketAddr, Arc<AtomicUsize>>>,
}

/// Client → (endpoint, last used).
type Stickiness = HashMap<IpAddr, (SocketAddr, Instant)>;

impl Balance {
    pub fn new(algorithm: Algorithm, affinity: Option<Duration>) -> Balance {
        Balance {
            algorithm,
            affinity: affinity.map(|timeout| (timeout, Mutex::default())),
            ..Balance::default()
        }
    }

    /// Whether a Service asking for `algorithm` and `affinity` may keep this balance.
    pub fn fits(&self, algorithm: Algorithm, affinity: Option<Duration>) -> bool {
        self.algorithm == algorithm && self.affinity.as_ref().map(|a| a.0) == affinity
    }

    /// Forgets the counts of endpoints no longer there (requests still in flight to them
    /// hold their own count).
    pub fn keep_counts_of(&self, endpoints: &[SocketAddr]) {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        in_flight.retain(|endpoint, _| endpoints.contains(endpoint));
    }

    /// The endpoint for `client` among `candidates`; `carried`: the proxy carries the
    /// request, so it counts until the [`InFlight`] is dropped.
    pub fn choose(
        &self,
        candidates: &[SocketAddr],
        client: IpAddr,
        carried: bool,
    ) -> Option<(SocketAddr, InFlight)> {
        if candidates.is_empty() {
            return None;
        }
        let endpoint = match &self.affinity {
            None => self.next_of(candidates),
            Some((timeout, clients)) => {
                let mut clients = clients.lock().unwrap_or_else(|p| p.into_inner());
                let now = Instant::now();
                clients.retain(|_, (_, used)| now.duration_since(*used) < *timeout);
                let endpoint = match clients.get(&client) {
                    Some((endpoint, _)) if candidates.contains(endpoint) => *endpoint,
                    _ => self.next_of(candidates),
                };
                clients.insert(client, (endpoint, now));
                endpoint
            }
        };
        Some((endpoint, self.count(endpoint, carried)))
    }

    /// The next endpoint by the algorithm: in turn, or the least loaded from the turn's
    /// place on (so ties go round).
    fn next_of(&self, candidates: &[SocketAddr]) -> SocketAddr {
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        if self.algorithm == Algorithm::RoundRobin {
            return candidates[turn % candidates.len()];
        }
        let in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        let load = |endpoint: &SocketAddr| {
            in_flight
                .get(endpoint)
                .map_or(0, |count| count.load(Ordering::Relaxed))
        };
        (0..candidates.len())
            .map(|i| candidates[(turn + i) % candidates.len()])
            .min_by_key(load)
            .expect("candidates are not empty")
    }

    fn count(&self, endpoint: SocketAddr, carried: bool) -> InFlight {
        if !carried || self.algorithm != Algorithm::LeastRequests {
            return InFlight::default();
        }
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        let count = in_flight.entry(endpoint).or_default().clone();
        count.fetch_add(1, Ordering::Relaxed);
        InFlight(Some(count))
    }
}
