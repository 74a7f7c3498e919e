//! Memory limits: each store's linear memory under its container's limit (shared by all the
//! container's instances — an HTTP container's concurrent requests) and, together with every
//! other guest's, under the node's memory for pods.

use std::sync::Arc;

use wasmtime::ResourceLimiter;

use super::Budget;

/// Most element slots in any one table of a guest.
const MAX_TABLE_ELEMENTS: usize = 1_000_000;
const MAX_INSTANCES: usize = 64;
const MAX_TABLES: usize = 64;
const MAX_MEMORIES: usize = 16;

/// Which limit denied a guest memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryCap {
    /// The container's own `limits.memory` (or the node's default for containers without one).
    Container,
    /// The node's memory for all pods.
    Node,
}

/// Draws the linear memory of one store from its container's limit and the node's memory for
/// pods, and remembers which cap stopped the guest. What the store holds goes back to both when
/// the limiter is dropped with it.
#[derive(Debug, Default)]
pub struct MemoryLimiter {
    container: Option<Arc<Budget>>,
    node: Option<Arc<Budget>>,
    used: usize,
    /// The growth approved last, undone if the allocation itself fails.
    pending: usize,
    hit: Option<MemoryCap>,
}

impl MemoryLimiter {
    /// A store of a container whose instances share `container` (its `limits.memory`).
    pub fn new(container: Option<Arc<Budget>>, node: Option<Arc<Budget>>) -> MemoryLimiter {
        MemoryLimiter {
            container,
            node,
            ..MemoryLimiter::default()
        }
    }

    /// The cap that denied a growth request, if one did.
    pub fn limit_hit(&self) -> Option<MemoryCap> {
        self.hit
    }

    /// The container's own limit, in bytes.
    pub fn limit_bytes(&self) -> Option<u64> {
        self.container.as_ref().map(|container| container.limit())
    }

    /// The node's memory for pods, in bytes.
    pub fn node_limit_bytes(&self) -> Option<u64> {
        self.node.as_ref().map(|node| node.limit())
    }

    /// Linear memory currently held by the guest, in bytes.
    pub fn used_bytes(&self) -> usize {
        self.used
    }
}

impl MemoryLimiter {
    fn budgets(&self) -> impl Iterator<Item = &Arc<Budget>> {
        self.container.iter().chain(self.node.iter())
    }
}

impl Drop for MemoryLimiter {
    fn drop(&mut self) {
        for budget in self.budgets() {
            budget.give_back(self.used as u64);
        }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let growth = desired.saturating_sub(current);
        if let Some(container) = &self.container
            && !container.take(growth as u64)
        {
            self.hit = Some(MemoryCap::Container);
            return Ok(false);
        }
        if let Some(node) = &self.node
            && !node.take(growth as u64)
        {
            if let Some(container) = &self.container {
                container.give_back(growth as u64);
            }
            self.hit = Some(MemoryCap::Node);
            return Ok(false);
        }
        self.used = self.used.saturating_add(growth);
        self.pending = growth;
        Ok(true)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        let pending = std::mem::take(&mut self.pending);
        self.used -= pending;
        for budget in self.budgets() {
            budget.give_back(pending as u64);
        }
        Ok(())
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1024 * 1024;

    #[test]
    fn memory_growth_past_the_limit_is_denied_and_remembered() {
        let mut limiter = MemoryLimiter::new(Some(Budget::new(64 * MIB as u64)), None);
        assert!(limiter.memory_growing(0, 16 * MIB, None).unwrap());
        assert!(limiter.memory_growing(16 * MIB, 48 * MIB, None).unwrap());
        assert_eq!(limiter.limit_hit(), None);
        assert!(!limiter.memory_growing(48 * MIB, 80 * MIB, None).unwrap());
        assert_eq!(limiter.limit_hit(), Some(MemoryCap::Container));
        assert_eq!(limiter.used_bytes(), 48 * MIB);
    }

    #[test]
    fn memory_of_all_instances_counts_toward_one_limit() {
        let mut limiter = MemoryLimiter::new(Some(Budget::new(10 * MIB as u64)), None);
        assert!(limiter.memory_growing(0, 6 * MIB, None).unwrap());
        assert!(!limiter.memory_growing(0, 6 * MIB, None).unwrap());
    }

    #[test]
    fn instances_of_one_container_share_its_limit_and_give_it_back() {
        let container = Budget::new(10 * MIB as u64);
        let node = Budget::new(100 * MIB as u64);
        let mut first = MemoryLimiter::new(Some(container.clone()), Some(node.clone()));
        let mut second = MemoryLimiter::new(Some(container.clone()), Some(node.clone()));
        assert!(first.memory_growing(0, 6 * MIB, None).unwrap());
        assert!(!second.memory_growing(0, 6 * MIB, None).unwrap());
        assert_eq!(second.limit_hit(), Some(MemoryCap::Container));
        assert_eq!(node.used(), 6 * MIB as u64, "a refusal takes nothing");
        drop(first);
        assert_eq!((container.used(), node.used()), (0, 0));
        assert!(second.memory_growing(0, 6 * MIB, None).unwrap());
    }

    #[test]
    fn failed_allocation_returns_its_budget() {
        let mut limiter = MemoryLimiter::new(None, None);
        assert!(limiter.memory_growing(0, 8 * MIB, None).unwrap());
        limiter
            .memory_grow_failed(wasmtime::format_err!("mmap failed"))
            .unwrap();
        assert_eq!(limiter.used_bytes(), 0);
    }

    #[test]
    fn guests_together_stay_under_the_nodes_memory_and_give_it_back_when_they_end() {
        let node = Budget::new(100 * MIB as u64);
        let mut first = MemoryLimiter::new(None, Some(node.clone()));
        let mut second = MemoryLimiter::new(Some(Budget::new(1 << 40)), Some(node.clone()));
        assert!(first.memory_growing(0, 60 * MIB, None).unwrap());
        assert!(!second.memory_growing(0, 60 * MIB, None).unwrap());
        assert_eq!(second.limit_hit(), Some(MemoryCap::Node));
        assert_eq!(node.used(), 60 * MIB as u64);
        drop(first);
        assert_eq!(node.used(), 0);
        assert!(second.memory_growing(0, 60 * MIB, None).unwrap());
    }

    #[test]
    fn a_failed_allocation_returns_its_share_of_the_node_too() {
        let node = Budget::new(100 * MIB as u64);
        let mut limiter = MemoryLimiter::new(None, Some(node.clone()));
        assert!(limiter.memory_growing(0, 8 * MIB, None).unwrap());
        limiter
            .memory_grow_failed(wasmtime::format_err!("mmap failed"))
            .unwrap();
        assert_eq!(node.used(), 0);
    }
}
