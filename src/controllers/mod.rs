//! The controller manager's controllers, and the machinery they share.
//!
//! Every controller has the same shape (DESIGN §7): informers keep caches of the objects it
//! reads (`informer`, `cache`), their changes put keys on a work queue (`queue`), and a bounded
//! pool of workers runs an idempotent `reconcile(key) -> Action` for each (`reconcile`).

pub mod cache;
pub mod deployment;
pub mod garbage_collector;
pub mod informer;
pub mod namespace;
pub mod node_lifecycle;
pub mod queue;
pub mod reconcile;
pub mod replica_set;
