//! The controller manager's controllers.

pub mod namespace;
