//! The Kubernetes API: the object write path (`objects`), watch, and the HTTP server over it.
//!
//! `Api` is shared by the HTTP server and in-process components (node agent, controllers):
//! both go through the same admission and store calls; in-process callers only skip JSON text.

pub mod binding;
pub mod discovery;
pub mod error;
pub mod eviction;
pub mod kinds;
mod limit_ranger;
pub mod logs;
pub mod objects;
pub mod openapi;
pub mod patch;
pub mod printers;
pub mod quantity;
pub mod routes;
pub mod scale;
pub mod selectors;
pub mod server;
pub mod table;
pub mod watch;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde_json::Value;

pub use error::{ApiError, ApiResult, Cause};
pub use kinds::Resource;
pub use objects::{DeleteOptions, ListOptions, Part};

pub use crate::store::Revision;
use crate::store::Store;

/// The API server's core, independent of HTTP.
pub struct Api {
    store: Arc<dyn Store>,
    /// The kinds served, built-in and registered at run time.
    registry: kinds::Registry,
    /// Where each node serves its pods' logs from.
    log_sources: RwLock<HashMap<String, Arc<dyn logs::PodLogs>>>,
}

impl Api {
    pub fn new(store: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(Self {
            store,
            registry: kinds::Registry::default(),
            log_sources: RwLock::new(HashMap::new()),
        })
    }

    /// The kinds this server serves.
    pub fn registry(&self) -> &kinds::Registry {
        &self.registry
    }

    /// The revision of the latest write.
    pub fn current_revision(&self) -> u64 {
        self.store.current_revision()
    }

    /// Applies a merge or strategic-merge patch to the stored object and updates it.
    pub fn patch(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        name: &str,
        patch_body: &Value,
        patch_type: patch::PatchType,
        part: Part,
    ) -> ApiResult<Value> {
        let mut object = self.get(resource, namespace, name)?;
        patch::apply(&mut object, patch_body, patch_type);
        self.update(resource, namespace, name, object, part)
    }

    /// Registers the node agent that serves logs of pods bound to `node`.
    pub fn register_log_source(&self, node: &str, source: Arc<dyn logs::PodLogs>) {
        self.log_sources
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(node.to_string(), source);
    }

    fn log_source(&self, node: &str) -> Option<Arc<dyn logs::PodLogs>> {
        self.log_sources
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(node)
            .cloned()
    }
}

#[cfg(test)]
impl Api {
    /// A bootstrapped API over a SQLite store in a fresh directory (dropped with it); for unit
    /// tests.
    pub(crate) fn scratch() -> (tempfile::TempDir, Arc<Self>) {
        Self::scratch_with_history(crate::store::DEFAULT_HISTORY)
    }

    /// As [`Api::scratch`], keeping `history` revisions for watches.
    pub(crate) fn scratch_with_history(history: u64) -> (tempfile::TempDir, Arc<Self>) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store =
            crate::store::SqliteStore::open_with_history(&dir.path().join("store.db"), history)
                .expect("a store");
        let api = Api::new(Arc::new(store));
        api.bootstrap().expect("the system namespaces");
        (dir, api)
    }
}
