//! The controller runtime every control loop shares (kube-runtime is the model): informers
//! keep caches of the objects a loop reads (`informer`, `cache`), their changes put keys on a
//! work queue (`queue`), and a bounded pool of workers runs an idempotent
//! `reconcile(key) -> Action` for each (`reconcile`), backing off per key (`backoff`).
//!
//! Controllers, the scheduler, and the proxy and DNS that follow Services use it; it reaches
//! the cluster only through the API.

pub mod backoff;
pub mod cache;
pub mod informer;
pub mod queue;
pub mod reconcile;
pub mod services;
pub mod supervisor;
