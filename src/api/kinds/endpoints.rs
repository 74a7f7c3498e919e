//! Endpoints (`v1`) and EndpointSlice (`discovery.k8s.io/v1`): the addresses behind a Service,
//! written by the endpoints controller for Services with a selector and by users for those
//! without.

use std::marker::PhantomData;

use k8s_openapi::api::core::v1::Endpoints;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::Value;

use super::resource::Resource;
use super::strategy::{Admission, Strategy, Typed, encode, schema_of};
use crate::api::error::{ApiResult, Cause};
use crate::api::printers;

pub static ENDPOINTS: Resource = Resource {
    group: "",
    version: "v1",
    kind: "Endpoints",
    plural: "endpoints",
    singular: "endpoints",
    short_names: &["ep"],
    categories: &[],
    namespaced: true,
    subresources: &[],
    label_names: false,
    selectable_fields: &[],
    strategy: &Typed::<Endpoints>(PhantomData),
    printer: &printers::service::ENDPOINTS_COLUMNS,
};

pub static ENDPOINT_SLICES: Resource = Resource {
    group: "discovery.k8s.io",
    version: "v1",
    kind: "EndpointSlice",
    plural: "endpointslices",
    singular: "endpointslice",
    short_names: &[],
    categories: &[],
    namespaced: true,
    subresources: &[],
    label_names: false,
    selectable_fields: &[],
    strategy: &EndpointSliceStrategy,
    printer: &printers::service::ENDPOINT_SLICE_COLUMNS,
};

/// The label naming a slice's Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// The label naming who keeps a slice.
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";

const ADDRESS_TYPES: &[&str] = &["IPv4", "IPv6", "FQDN"];
/// Kubernetes' bounds on one slice.
const MAX_ENDPOINTS: usize = 1000;
const MAX_ADDRESSES: usize = 100;

struct EndpointSliceStrategy;

impl Strategy for EndpointSliceStrategy {
    fn admit(&self, admission: &mut Admission<'_>) -> ApiResult<Value> {
        let slice: EndpointSlice = admission.decode()?;
        let causes = &mut admission.causes;
        let address_type = slice.address_type.as_str();
        if address_type.is_empty() {
            causes.push(Cause::required("addressType"));
        } else if !ADDRESS_TYPES.contains(&address_type) {
            causes.push(Cause::unsupported(
                "addressType",
                address_type,
                ADDRESS_TYPES,
            ));
        }
        let endpoints = slice.endpoints.as_deref().unwrap_or_default();
        if endpoints.len() > MAX_ENDPOINTS {
            let why = format!("must have at most {MAX_ENDPOINTS} items");
            causes.push(Cause::invalid("endpoints", endpoints.len(), &why));
        }
        for (i, endpoint) in endpoints.iter().enumerate() {
            let count = endpoint.addresses.len();
            if !(1..=MAX_ADDRESSES).contains(&count) {
                let why = format!("must have at least 1 and at most {MAX_ADDRESSES} items");
                causes.push(Cause::invalid(
                    format!("endpoints[{i}].addresses"),
                    count,
                    &why,
                ));
            }
        }
        encode(&slice)
    }

    fn schema(&self) -> Value {
        schema_of::<EndpointSlice>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::kinds::strategy::tests::invalid_fields;
    use serde_json::json;

    #[test]
    fn a_slice_needs_a_known_address_type_and_addresses_per_endpoint() {
        let slice = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "web-1", "namespace": "default"}, "addressType": "IPX",
            "endpoints": [{"addresses": []}]});
        let causes = invalid_fields(&ENDPOINT_SLICES, slice);
        let fields: Vec<&str> = causes
            .iter()
            .map(|c| c.split(':').next().unwrap())
            .collect();
        assert_eq!(
            fields,
            ["addressType", "endpoints[0].addresses"],
            "{causes:?}"
        );
    }
}
