//! `wasi:http` in the pod network: the node serving an HTTP component on its container ports
//! (`serve`), and a guest's outgoing requests routed like its sockets (`outgoing`), on
//! connections kept alive (`kept_alive`); and the containers the node's proxy reaches
//! without a connection (`local`).

pub mod kept_alive;
pub mod local;
pub mod outgoing;
pub mod serve;

pub use outgoing::PodHttpHooks;
