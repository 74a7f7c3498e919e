//! wasmkube: a Kubernetes-style orchestrator whose containers are WebAssembly components.
//!
//! Layout (see DESIGN.md and the README): `store` keeps objects and their history, `api` is
//! the Kubernetes REST surface, its kinds and the one write path, `controller_runtime` is the
//! loop controllers and the scheduler share, `client` reaches the API in process or over
//! HTTPS, `node` runs pods in wasmtime, `cli` is the kubectl-style client, `cluster` wires
//! them together for `up`, and `testing` starts a throwaway cluster for test suites.
#![deny(unsafe_code)]

pub mod api;
pub mod atomic_file;
pub mod cidr;
pub mod cli;
pub mod client;
pub mod cluster;
pub mod controller_runtime;
pub mod controllers;
pub mod dns;
pub mod events;
pub mod http_limits;
pub mod images;
pub mod manifest;
pub mod node;
pub mod panics;
pub mod proxy;
pub mod scheduler;
pub mod store;
pub mod testing;
pub mod tls;
