//! Integration tests: one binary, each module driving a real in-process cluster.

mod api_http;
mod cli;
mod cli_workloads;
mod deployments;
mod durability;
mod garbage_collection;
mod kubectl;
mod namespaces;
mod pods;
mod replica_sets;
mod scheduling;
mod support;
