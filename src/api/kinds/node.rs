//! Node (`v1`): registered by its agent, which heartbeats through a Lease.

use std::marker::PhantomData;

use k8s_openapi::api::core::v1::Node;

use super::resource::{Resource, Subresource};
use super::strategy::Typed;
use crate::api::printers;

pub static NODES: Resource = Resource {
    group: "",
    version: "v1",
    kind: "Node",
    plural: "nodes",
    singular: "node",
    short_names: &["no"],
    categories: &[],
    namespaced: false,
    subresources: &[Subresource::Status],
    label_names: false,
    selectable_fields: &[],
    strategy: &Typed::<Node>(PhantomData),
    printer: &printers::node::COLUMNS,
};
