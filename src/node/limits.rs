//! Per-container resource limits: memory through wasmtime's `ResourceLimiter`, CPU through
//! epoch-deadline accounting and throttling, open files through counts the pod and the node
//! share.

mod cpu;
mod files;
mod memory;

use std::sync::Arc;

use std::sync::atomic::{AtomicU64, Ordering};

pub use cpu::{BusyClock, CpuShare, CpuThrottle, EPOCH_TICK, Metered};
pub use files::{GuestFiles, LimitExceeded};
pub use memory::{MemoryCap, MemoryLimiter};

use super::disk::DiskWrites;

/// An amount whoever shares it may hold together: the node's memory for pods, a pod's or the
/// node's open files.
#[derive(Debug)]
pub struct Budget {
    limit: u64,
    used: AtomicU64,
}

impl Budget {
    pub fn new(limit: u64) -> Arc<Budget> {
        Arc::new(Budget {
            limit,
            used: AtomicU64::new(0),
        })
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// What is held now.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// Takes `amount`; false (and nothing taken) when that would pass the limit.
    fn take(&self, amount: u64) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(amount).filter(|next| *next <= self.limit)
            })
            .is_ok()
    }

    /// Gives `amount` back (never below nothing).
    fn give_back(&self, amount: u64) {
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                Some(used.saturating_sub(amount))
            });
    }
}

/// What all instances of one container draw from together (an HTTP container's concurrent
/// requests): its memory limit and its CPU share.
#[derive(Debug)]
pub struct ContainerShare {
    pub memory: Option<Arc<Budget>>,
    pub cpu: Arc<CpuShare>,
}

impl ContainerShare {
    pub fn new(memory_limit: Option<u64>, cpu_millicores: Option<u64>) -> ContainerShare {
        ContainerShare {
            memory: memory_limit.map(Budget::new),
            cpu: CpuShare::new(cpu_millicores),
        }
    }
}

/// What the containers of one pod draw from together: open files, and the bytes written since
/// the node last measured the pod's disk.
#[derive(Debug)]
pub struct PodShare {
    pub files: Arc<Budget>,
    pub writes: Arc<DiskWrites>,
}

impl PodShare {
    /// A pod whose containers may hold `open_files` files open together.
    pub fn new(open_files: usize) -> Arc<PodShare> {
        Arc::new(PodShare {
            files: Budget::new(open_files as u64),
            writes: DiskWrites::new(),
        })
    }
}
