//! Integration tests: one binary, each module driving a real in-process cluster.

mod api_http;
mod census;
mod cli;
mod cli_nodes;
mod cli_replica_sets;
mod cli_workloads;
mod deployments;
mod durability;
mod eviction;
mod garbage_collection;
mod kinds;
mod kubectl;
mod multi_node;
mod namespaces;
mod pods;
mod power_loss;
mod processes;
mod replica_sets;
mod scheduling;
mod store_blocking;
mod support;
