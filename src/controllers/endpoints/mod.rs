//! The endpoints controller: keeps each Service's Endpoints and EndpointSlices in line with
//! the pods its selector matches (kube-controller-manager's endpoints and endpointslice
//! controllers in one). Services without a selector are their users' to describe: their
//! Endpoints and slices are left alone.

mod desired;

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, Service};
use serde::Serialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::api::kinds::{
    ENDPOINT_SLICES, ENDPOINTS, MANAGED_BY_LABEL, PODS, Resource, SERVICE_NAME_LABEL, SERVICES,
};
use crate::api::selectors::LabelSelector;
use crate::api::{Api, ApiError, DeleteOptions, Part};
use crate::controller_runtime::cache::{Cache, Change, ObjectKey};
use crate::controller_runtime::informer::Informer;
use crate::controller_runtime::queue::{DEFAULT_BACKOFF, WorkQueue};
use crate::controller_runtime::reconcile::{Action, run_workers};
use crate::events::Recorder;

pub use desired::MANAGER;

/// Services reconciled at once (kube-controller-manager's `--concurrent-endpoint-syncs`).
const WORKERS: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("writing {resource} {name} for Service {service} failed: {source}")]
    WriteFailed {
        resource: &'static str,
        name: String,
        service: ObjectKey,
        source: Box<ApiError>,
    },
    #[error("Service {service} does not decode: {source}")]
    Undecodable {
        service: ObjectKey,
        source: serde_json::Error,
    },
}

/// What every reconcile shares: the API and the caches.
struct Context {
    api: Arc<Api>,
    services: Cache,
    pods: Cache,
    endpoints: Cache,
    slices: Cache,
}

/// Runs the controller until `shutdown`.
pub async fn run(api: Arc<Api>, shutdown: CancellationToken) {
    let informers = [&SERVICES, &PODS, &ENDPOINTS, &ENDPOINT_SLICES]
        .map(|resource| Informer::new(api.clone(), resource));
    let [services, pods, endpoints, slices] = &informers;
    let context = Arc::new(Context {
        api: api.clone(),
        services: services.cache(),
        pods: pods.cache(),
        endpoints: endpoints.cache(),
        slices: slices.cache(),
    });
    let queue = Arc::new(WorkQueue::new(DEFAULT_BACKOFF));
    let recorder = Recorder::new(api, "endpoint-controller", "");
    let workers = {
        let (context, queue, shutdown) = (context.clone(), queue.clone(), shutdown.clone());
        async move {
            tokio::select! {
                _ = wait_synced(&context) => {}
                _ = shutdown.cancelled() => return,
            }
            let report = context.clone();
            let reconcile = move |key| reconcile(context.clone(), key);
            let report_panic = move |key: &ObjectKey, message: &str| {
                if let Some(service) = report.services.get(key) {
                    recorder.reconcile_panicked(&service, message);
                }
            };
            run_workers(
                "endpoints",
                queue,
                WORKERS,
                shutdown,
                reconcile,
                report_panic,
            )
            .await;
        }
    };
    let [services, pods, endpoints, slices] = informers;
    let wake_service = |queue: Arc<WorkQueue<ObjectKey>>| {
        move |change: &Change| {
            ObjectKey::of(change.object())
                .into_iter()
                .for_each(|k| queue.add(k))
        }
    };
    let wake_owner = |queue: Arc<WorkQueue<ObjectKey>>| {
        let services = context.services.clone();
        move |change: &Change| {
            service_of_output(change)
                .filter(|key| services.get(key).is_some())
                .into_iter()
                .for_each(|k| queue.add(k))
        }
    };
    let on_pod = {
        let (queue, services) = (queue.clone(), context.services.clone());
        move |change: &Change| {
            services_to_wake(&services, change)
                .into_iter()
                .for_each(|k| queue.add(k))
        }
    };
    tokio::join!(
        services.run(shutdown.clone(), wake_service(queue.clone())),
        pods.run(shutdown.clone(), on_pod),
        endpoints.run(shutdown.clone(), wake_owner(queue.clone())),
        slices.run(shutdown.clone(), wake_owner(queue.clone())),
        workers,
    );
}

async fn wait_synced(context: &Context) {
    for cache in [
        &context.services,
        &context.pods,
        &context.endpoints,
        &context.slices,
    ] {
        cache.wait_synced().await;
    }
}

/// The Service an Endpoints (same name) or a slice (its service-name label) belongs to, so
/// a hand edit of what the controller keeps is put back (only while that Service exists: an
/// Endpoints with no Service is its writer's).
fn service_of_output(change: &Change) -> Option<ObjectKey> {
    let object = change.object();
    let namespace = object["metadata"]["namespace"].as_str();
    let name = match object["metadata"]["labels"][SERVICE_NAME_LABEL].as_str() {
        Some(service) => service,
        None => object["metadata"]["name"].as_str()?,
    };
    Some(ObjectKey::new(namespace, name))
}

/// The Services whose selector matches the pod before or after the change.
fn services_to_wake(services: &Cache, change: &Change) -> Vec<ObjectKey> {
    let versions = match change {
        Change::Applied { old, new } => [old.as_deref(), Some(&**new)],
        Change::Deleted(pod) => [None, Some(&**pod)],
    };
    let mut keys = Vec::new();
    for pod in versions.into_iter().flatten() {
        let namespace = pod["metadata"]["namespace"].as_str().unwrap_or_default();
        let matching = services
            .list_in(namespace)
            .into_iter()
            .filter(|service| selector_of(service).is_some_and(|s| s.matches(pod)));
        keys.extend(matching.filter_map(|service| ObjectKey::of(&service)));
    }
    keys.sort();
    keys.dedup();
    keys
}

/// The selector of a Service that has one.
fn selector_of(service: &Value) -> Option<LabelSelector> {
    let labels = serde::Deserialize::deserialize(&service["spec"]["selector"]).ok()?;
    let selector = LabelSelector::from_map(&labels);
    (!selector.is_empty()).then_some(selector)
}

/// Writes the Endpoints and slices the Service's pods call for, and removes those of a
/// Service that is gone.
async fn reconcile(context: Arc<Context>, key: ObjectKey) -> Result<Action, Error> {
    let Some(object) = context.services.get(&key) else {
        context.remove_outputs(&key)?;
        return Ok(Action::Done);
    };
    let Some(selector) = selector_of(&object) else {
        return Ok(Action::Done);
    };
    let service: Service =
        serde::Deserialize::deserialize(&*object).map_err(|source| Error::Undecodable {
            service: key.clone(),
            source,
        })?;
    let namespace = key.namespace.as_deref().unwrap_or_default();
    let pods: Vec<Pod> = context
        .pods
        .list_in(namespace)
        .into_iter()
        .filter(|pod| selector.matches(pod))
        .filter_map(|pod| serde::Deserialize::deserialize(&*pod).ok())
        .collect();
    let endpoints = desired::endpoints(&service, &pods);
    context.put(&ENDPOINTS, &context.endpoints, &key, &endpoints)?;
    let slices = desired::slices(&service, &pods);
    let mut wanted = Vec::new();
    for slice in &slices {
        wanted.push(slice.metadata.name.clone().unwrap_or_default());
        context.put(&ENDPOINT_SLICES, &context.slices, &key, slice)?;
    }
    context.remove_slices(&key, &wanted)?;
    Ok(Action::Done)
}

impl Context {
    /// Creates or updates `object` unless the cache already holds it as wanted.
    fn put(
        &self,
        resource: &'static Resource,
        cache: &Cache,
        service: &ObjectKey,
        object: &impl Serialize,
    ) -> Result<(), Error> {
        let mut wanted = serde_json::to_value(object).expect("Kubernetes types serialize");
        let name = wanted["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let namespace = service.namespace.as_deref();
        let failed = |source| Error::WriteFailed {
            resource: resource.kind,
            name: name.clone(),
            service: service.clone(),
            source: Box::new(source),
        };
        let Some(current) = cache.get(&ObjectKey::new(namespace, &name)) else {
            return match self.api.create(resource, namespace, wanted) {
                Ok(_) | Err(ApiError::AlreadyExists { .. }) => Ok(()),
                Err(source) => Err(failed(source)),
            };
        };
        if same_content(&current, &wanted) {
            return Ok(());
        }
        wanted["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"].clone();
        match self
            .api
            .update(resource, namespace, &name, wanted, Part::Main)
        {
            // The cache is behind a write it has yet to see; that write's event wakes the
            // Service again (as for AlreadyExists above), so this is no failure to warn of.
            Ok(_) | Err(ApiError::Conflict { .. }) => Ok(()),
            Err(source) => Err(failed(source)),
        }
    }

    /// Deletes the slices this controller keeps for the Service but does not want.
    fn remove_slices(&self, service: &ObjectKey, wanted: &[String]) -> Result<(), Error> {
        let namespace = service.namespace.as_deref();
        for slice in self.slices.list_in(namespace.unwrap_or_default()) {
            let labels = &slice["metadata"]["labels"];
            let ours = labels[SERVICE_NAME_LABEL] == service.name.as_str()
                && labels[MANAGED_BY_LABEL] == MANAGER;
            let name = slice["metadata"]["name"].as_str().unwrap_or_default();
            if ours && !wanted.iter().any(|w| w == name) {
                self.delete(&ENDPOINT_SLICES, service, name)?;
            }
        }
        Ok(())
    }

    /// Removes what the controller kept for a Service that is gone.
    fn remove_outputs(&self, service: &ObjectKey) -> Result<(), Error> {
        if self.endpoints.get(service).is_some() {
            self.delete(&ENDPOINTS, service, &service.name)?;
        }
        self.remove_slices(service, &[])
    }

    fn delete(
        &self,
        resource: &'static Resource,
        service: &ObjectKey,
        name: &str,
    ) -> Result<(), Error> {
        let namespace = service.namespace.as_deref();
        match self
            .api
            .delete(resource, namespace, name, &DeleteOptions::default())
        {
            Ok(_) | Err(ApiError::NotFound { .. }) => Ok(()),
            Err(source) => Err(Error::WriteFailed {
                resource: resource.kind,
                name: name.into(),
                service: service.clone(),
                source: Box::new(source),
            }),
        }
    }
}

/// Whether the stored object already says what `wanted` says (labels, owners and content;
/// server-set metadata aside).
fn same_content(current: &Value, wanted: &Value) -> bool {
    let content = |object: &Value| {
        let mut object = object.clone();
        let metadata = object["metadata"].take();
        object["metadata"] = serde_json::json!({
            "labels": metadata.get("labels"),
            "ownerReferences": metadata.get("ownerReferences"),
        });
        if let Some(fields) = object.as_object_mut() {
            fields.remove("apiVersion");
            fields.remove("kind");
        }
        object
    };
    content(current) == content(wanted)
}
