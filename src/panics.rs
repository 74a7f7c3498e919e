//! What a caught panic says: the API server and the controller runtime catch panics so one
//! bad request or object cannot take the process down, and report the message.

use std::any::Any;

/// The text a panic was raised with.
pub fn message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}
