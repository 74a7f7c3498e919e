//! Lease (`coordination.k8s.io/v1`): node heartbeats, one Lease per node in
//! [`NODE_LEASE_NAMESPACE`], renewed by its agent and read by the node lifecycle controller.

use std::marker::PhantomData;

use k8s_openapi::api::coordination::v1::Lease;

use super::resource::Resource;
use super::strategy::Typed;
use crate::api::printers;

pub static LEASES: Resource = Resource {
    group: "coordination.k8s.io",
    version: "v1",
    kind: "Lease",
    plural: "leases",
    singular: "lease",
    short_names: &[],
    categories: &[],
    namespaced: true,
    subresources: &[],
    label_names: false,
    selectable_fields: &[],
    strategy: &Typed::<Lease>(PhantomData),
    printer: &printers::lease::COLUMNS,
};

/// Where nodes' heartbeat Leases live.
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";
