//! Integration tests: one binary, each module driving a real in-process cluster.

mod api_http;
mod census;
mod cli;
mod cli_nodes;
mod cli_output;
mod cli_replica_sets;
mod cli_workloads;
mod custom_resources;
mod deployments;
mod durability;
mod eviction;
mod extreme_values;
mod garbage_collection;
mod kinds;
mod kubectl;
mod kubectl_writes;
mod multi_node;
mod namespaces;
mod pods;
mod processes;
mod replica_sets;
mod scheduling;
mod server_limits;
mod support;
