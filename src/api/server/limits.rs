//! Requests in flight, capped as kube-apiserver caps them (`--max-requests-inflight`,
//! `--max-mutating-requests-inflight`): past the cap a request gets 429 with `Retry-After`
//! at once instead of queueing without bound. Long-running requests (watches, followed logs)
//! hold a slot only while their response starts.

use std::sync::Arc;

use http::Method;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::api::error::ApiError;

/// Reads at once (kube-apiserver's default).
pub const MAX_READS_IN_FLIGHT: usize = 400;
/// Writes at once (kube-apiserver's default).
pub const MAX_WRITES_IN_FLIGHT: usize = 200;

/// The two caps.
pub struct InFlight {
    reads: Arc<Semaphore>,
    writes: Arc<Semaphore>,
}

impl Default for InFlight {
    fn default() -> Self {
        Self::new(MAX_READS_IN_FLIGHT, MAX_WRITES_IN_FLIGHT)
    }
}

impl InFlight {
    pub fn new(reads: usize, writes: usize) -> Self {
        Self {
            reads: Arc::new(Semaphore::new(reads)),
            writes: Arc::new(Semaphore::new(writes)),
        }
    }

    /// A slot for a request of `method`, held until the permit drops.
    ///
    /// # Errors
    /// `TooManyRequests` when every slot of its kind is taken.
    pub fn admit(&self, method: &Method) -> Result<OwnedSemaphorePermit, ApiError> {
        let slots = if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
            &self.reads
        } else {
            &self.writes
        };
        slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| ApiError::TooManyRequests)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_cap_a_request_is_refused_until_a_slot_frees() {
        let in_flight = InFlight::new(1, 1);
        let read = in_flight.admit(&Method::GET).unwrap();
        let refused = in_flight.admit(&Method::GET).unwrap_err();
        assert_eq!(refused.code(), 429);
        let write = in_flight.admit(&Method::POST).unwrap();
        drop(read);
        let _again = in_flight.admit(&Method::GET).unwrap();
        drop(write);
    }
}
