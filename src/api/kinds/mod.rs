//! The kinds the API serves, each declared once in its own file here (as kube-apiserver's
//! `pkg/registry/<group>/<kind>/strategy.go`): its identity, its strategy and its printer.
//!
//! [`BUILT_IN`] lists them. Discovery, OpenAPI, Tables, admission, the CLI's name lookup and
//! the client's paths all read it (the server through its [`Registry`], which also takes
//! kinds at run time); nothing else matches on kind names. Adding a kind is one file here and
//! one line in [`BUILT_IN`].

pub mod custom_resource;
mod custom_resource_definition;
mod deployment;
mod endpoints;
mod event;
mod lease;
mod limit_range;
pub mod meta;
mod namespace;
mod network_policy;
mod node;
pub mod pod;
pub mod registry;
mod replica_set;
mod resource;
pub mod service;
pub mod strategy;

pub use custom_resource_definition::{CLEANUP_FINALIZER, CUSTOM_RESOURCE_DEFINITIONS};
pub use deployment::{DEPLOYMENTS, percent};
pub use endpoints::{ENDPOINT_SLICES, ENDPOINTS, MANAGED_BY_LABEL, SERVICE_NAME_LABEL};
pub use event::EVENTS;
pub use lease::{LEASES, NODE_LEASE_NAMESPACE};
pub use limit_range::LIMIT_RANGES;
pub use namespace::{NAMESPACES, SYSTEM_NAMESPACES};
pub use network_policy::NETWORK_POLICIES;
pub use node::NODES;
pub use pod::PODS;
pub use registry::{Registry, for_manifest, lookup};
pub use replica_set::REPLICA_SETS;
pub use resource::{Resource, Subresource, SubresourceInfo, percent_encode};
pub use service::SERVICES;
pub use strategy::{
    Admission, Deletion, ScalePaths, Strategy, Typed, Write, admit, decode, encode, invalid,
    schema_of,
};

/// Every kind a server serves from its start.
pub static BUILT_IN: &[&Resource] = &[
    &NAMESPACES,
    &PODS,
    &NODES,
    &EVENTS,
    &REPLICA_SETS,
    &DEPLOYMENTS,
    &LEASES,
    &LIMIT_RANGES,
    &SERVICES,
    &ENDPOINTS,
    &ENDPOINT_SLICES,
    &NETWORK_POLICIES,
    &CUSTOM_RESOURCE_DEFINITIONS,
];
