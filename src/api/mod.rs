//! The Kubernetes API: the object write path (`objects`), watch, and the HTTP server over it.
//!
//! `Api` is shared by the HTTP server and in-process components (node agent, controllers):
//! both go through the same admission and store calls; in-process callers only skip JSON text.

pub mod apply;
pub mod binding;
pub mod clock;
pub mod discovery;
pub mod error;
pub mod eviction;
pub mod field_validation;
pub mod images;
pub mod kinds;
pub mod kubelet_client;
mod limit_ranger;
pub mod list_options;
pub mod logs;
pub mod objects;
pub mod openapi;
pub mod patch;
pub mod printers;
pub mod protobuf;
pub mod quantity;
pub mod routes;
pub mod scale;
pub mod selectors;
pub mod server;
mod service_allocation;
pub mod service_network;
pub mod table;
pub mod types;
pub mod watch;
pub mod write;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock, Weak};

use serde_json::Value;

pub use error::{ApiError, ApiResult, Cause};
pub use kinds::Resource;
pub use list_options::ListOptions;
pub use objects::{DeleteOptions, Part};
pub use write::{WriteOptions, Written};

pub use crate::store::Revision;
use crate::store::Store;

/// How often a patch or scale is tried again on a newer version after a conflict
/// (kube-apiserver's `maxRetryWhenPatchConflicts`).
const MAX_CONFLICT_RETRIES: u32 = 5;

/// Runs `attempt` again after a conflict with a concurrent write (`MAX_CONFLICT_RETRIES`
/// times), unless `pinned`: the client named the version it wrote against.
fn retry_conflicts<T>(pinned: bool, mut attempt: impl FnMut() -> ApiResult<T>) -> ApiResult<T> {
    let mut attempts = 0;
    loop {
        match attempt() {
            Err(ApiError::Conflict { .. }) if !pinned && attempts < MAX_CONFLICT_RETRIES => {
                attempts += 1;
            }
            outcome => return outcome,
        }
    }
}

/// The API server's core, independent of HTTP.
pub struct Api {
    store: Arc<dyn Store>,
    /// The kinds served, built-in and registered at run time.
    registry: kinds::Registry,
    /// Where each node in this process serves its pods' logs from.
    /// Held weakly: an in-process node holds the API, and must not be kept by it.
    log_sources: RwLock<HashMap<String, Weak<dyn logs::PodLogs>>>,
    /// How the API server reaches the endpoints of nodes in other processes.
    kubelet: OnceLock<kubelet_client::KubeletClient>,
    /// Where Services' cluster IPs and node ports come from.
    services: service_allocation::ServiceAllocator,
}

impl Api {
    pub fn new(store: Arc<dyn Store>) -> Arc<Self> {
        Self::with_service_network(store, service_network::ServiceNetwork::default())
    }

    /// An API whose Services take their cluster IPs and node ports from `network`.
    pub fn with_service_network(
        store: Arc<dyn Store>,
        network: service_network::ServiceNetwork,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            registry: kinds::Registry::default(),
            log_sources: RwLock::new(HashMap::new()),
            kubelet: OnceLock::new(),
            services: service_allocation::ServiceAllocator::new(network),
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

    /// Applies a JSON, merge or strategic-merge patch to the stored object and updates it. A
    /// conflict with a concurrent write is retried on the newer object, as kube-apiserver's
    /// patcher does, unless the patch names the `resourceVersion` it was made against.
    pub fn patch(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        name: &str,
        patch_body: &Value,
        patch_type: patch::PatchType,
        part: Part,
    ) -> ApiResult<Value> {
        let options = WriteOptions::default();
        let written = self.patch_with(
            resource, namespace, name, patch_body, patch_type, part, &options,
        )?;
        Ok(written.object)
    }

    /// [`Api::patch`] as a client asked (see [`Api::create_with`]).
    ///
    /// # Errors
    /// As [`Api::patch`]; 400 for unknown fields in the patched object under Strict validation.
    #[allow(clippy::too_many_arguments)] // the object's address, the patch, and the options
    pub fn patch_with(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        name: &str,
        patch_body: &Value,
        patch_type: patch::PatchType,
        part: Part,
        options: &WriteOptions,
    ) -> ApiResult<Written> {
        let pinned = patch_body.pointer("/metadata/resourceVersion").is_some();
        let message = apply::managed::message_of(resource);
        let target = (resource, namespace, name, part);
        self.update_retrying(target, pinned, options, |object| {
            patch::apply(object, patch_body, patch_type, message)
        })
    }

    /// Reads the object, changes it with `change` and writes it back; on a conflict with a
    /// concurrent write, starts over from the newer object (`MAX_CONFLICT_RETRIES` times)
    /// unless `pinned` (the client asked for its version to be checked).
    ///
    /// # Errors
    /// What `change` or the update answers; `Conflict` once the retries are spent.
    pub fn update_retrying(
        &self,
        (resource, namespace, name, part): (&Resource, Option<&str>, &str, Part),
        pinned: bool,
        options: &WriteOptions,
        mut change: impl FnMut(&mut Value) -> ApiResult<()>,
    ) -> ApiResult<Written> {
        retry_conflicts(pinned, || {
            let mut object = self.get(resource, namespace, name)?;
            change(&mut object)?;
            self.update_with(resource, namespace, name, object, part, options)
        })
    }

    /// Registers the node agent that serves logs of pods bound to `node`.
    pub fn register_log_source(&self, node: &str, source: &Arc<dyn logs::PodLogs>) {
        self.log_sources
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(node.to_string(), Arc::downgrade(source));
    }

    /// Sets how the API server reaches nodes' endpoints (once; later calls change nothing).
    pub fn set_kubelet_client(&self, client: kubelet_client::KubeletClient) {
        let _ = self.kubelet.set(client);
    }

    fn kubelet_client(&self) -> Option<&kubelet_client::KubeletClient> {
        self.kubelet.get()
    }

    fn log_source(&self, node: &str) -> Option<Arc<dyn logs::PodLogs>> {
        self.log_sources
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(node)
            .and_then(Weak::upgrade)
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

#[cfg(test)]
mod tests {
    use super::kinds::REPLICA_SETS;
    use super::*;
    use serde_json::json;

    fn replica_set(api: &Api) {
        let rs = json!({"metadata": {"name": "web"}, "spec": {"replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "c", "image": "c.wasm"}]}}}});
        api.create(&REPLICA_SETS, Some("default"), rs).unwrap();
    }

    /// A status write lands between the read and the write of a patch, as a controller's do.
    fn status_write_between(api: &Api) {
        let mut current = api.get(&REPLICA_SETS, Some("default"), "web").unwrap();
        current["status"]["replicas"] =
            json!(current["status"]["replicas"].as_i64().unwrap_or(0) + 1);
        api.update(&REPLICA_SETS, Some("default"), "web", current, Part::Status)
            .unwrap();
    }

    #[test]
    fn a_patch_racing_a_status_write_is_retried_on_the_newer_object() {
        let (_dir, api) = Api::scratch();
        replica_set(&api);
        let mut raced = false;
        let patched = api
            .update_retrying(
                (&REPLICA_SETS, Some("default"), "web", Part::Main),
                false,
                &WriteOptions::default(),
                |rs| {
                    if !raced {
                        raced = true;
                        status_write_between(&api);
                    }
                    rs["spec"]["replicas"] = json!(3);
                    Ok(())
                },
            )
            .unwrap()
            .object;
        assert_eq!(patched["spec"]["replicas"], 3);
        assert_eq!(patched["status"]["replicas"], 1);
    }

    #[test]
    fn a_patch_pinned_to_its_version_reports_the_conflict() {
        let (_dir, api) = Api::scratch();
        replica_set(&api);
        let error = api
            .update_retrying(
                (&REPLICA_SETS, Some("default"), "web", Part::Main),
                true,
                &WriteOptions::default(),
                |rs| {
                    status_write_between(&api);
                    rs["spec"]["replicas"] = json!(3);
                    Ok(())
                },
            )
            .unwrap_err();
        assert_eq!(error.code(), 409);
    }
}
