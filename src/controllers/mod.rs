//! The controller manager's controllers, each a loop over the shared `controller_runtime`.

pub mod custom_resource_definitions;
pub mod deployment;
pub mod endpoints;
pub mod garbage_collector;
pub mod namespace;
pub mod node_ipam;
pub mod node_lifecycle;
pub mod replica_set;
