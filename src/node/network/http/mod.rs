//! `wasi:http` in the pod network: the node serving an HTTP component on its container ports
//! (`serve`), and a guest's outgoing requests routed like its sockets (`outgoing`), on
//! connections kept alive (`kept_alive`).

pub mod kept_alive;
pub mod outgoing;
pub mod serve;

pub use outgoing::PodHttpHooks;
