//! Following Services together with their EndpointSlices: what cluster DNS and the service
//! proxy both keep, each as its own table, rebuilt per Service whenever it or a slice changes.

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use tokio_util::sync::CancellationToken;

use super::cache::{Cache, Change, ObjectKey};
use super::informer::Informer;
use crate::api::kinds::{ENDPOINT_SLICES, SERVICE_NAME_LABEL, SERVICES};
use crate::client::control_plane::ControlPlane;

/// One Service as it is now: `None` once deleted (or before it exists), with the slices
/// labelled as its own.
pub struct ServiceState<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub service: Option<&'a Service>,
    pub slices: &'a [EndpointSlice],
}

/// Calls `refresh` with a Service's state each time the Service or one of its slices changes,
/// until `shutdown`.
pub async fn follow(
    api: impl Into<ControlPlane>,
    shutdown: CancellationToken,
    refresh: impl Fn(ServiceState<'_>) + Clone,
) {
    let api = api.into();
    let services = Informer::new(api.clone(), &SERVICES);
    let slices = Informer::new(api, &ENDPOINT_SLICES);
    let caches = (services.cache(), slices.cache());
    let on_change = |by_label: bool| {
        let (caches, refresh) = (caches.clone(), refresh.clone());
        move |change: &Change| {
            let object = change.object();
            let namespace = object["metadata"]["namespace"].as_str().unwrap_or_default();
            let name = match by_label {
                true => object["metadata"]["labels"][SERVICE_NAME_LABEL].as_str(),
                false => object["metadata"]["name"].as_str(),
            };
            if let Some(name) = name {
                refresh_one(&caches.0, &caches.1, namespace, name, &refresh);
            }
        }
    };
    tokio::join!(
        services.run(shutdown.clone(), on_change(false)),
        slices.run(shutdown, on_change(true)),
    );
}

/// Reads the Service `namespace/name` and its slices from the caches and hands them over.
fn refresh_one(
    services: &Cache,
    slices: &Cache,
    namespace: &str,
    name: &str,
    refresh: &impl Fn(ServiceState<'_>),
) {
    let key = ObjectKey::new(Some(namespace), name);
    let service: Option<Service> = services
        .get(&key)
        .and_then(|s| serde::Deserialize::deserialize(&*s).ok());
    let own: Vec<EndpointSlice> = slices
        .list_in(namespace)
        .into_iter()
        .filter(|s| s["metadata"]["labels"][SERVICE_NAME_LABEL] == name)
        .filter_map(|s| serde::Deserialize::deserialize(&*s).ok())
        .collect();
    refresh(ServiceState {
        namespace,
        name,
        service: service.as_ref(),
        slices: &own,
    });
}
