//! The columns each kind prints, filled the way kubectl's printers fill them (as
//! kube-apiserver's `pkg/printers/internalversion`): used by the server's Tables and by
//! `wasmkube get` alike, so both agree cell for cell.

pub mod age;
pub mod custom_columns;
pub mod event;
pub mod jsonpath;
pub mod lease;
pub mod limit_range;
pub mod namespace;
pub mod network_policy;
pub mod node;
pub mod pod;
pub mod service;
pub mod workload;

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::jiff::Timestamp;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use age::{now, since};

/// One column of a Table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    pub name: Cow<'static, str>,
    /// 0 for the standard columns, 1 for those only `-o wide` shows.
    pub priority: u8,
}

impl Column {
    pub const fn standard(name: &'static str) -> Self {
        Self {
            name: Cow::Borrowed(name),
            priority: 0,
        }
    }

    pub const fn wide(name: &'static str) -> Self {
        Self {
            name: Cow::Borrowed(name),
            priority: 1,
        }
    }
}

/// How objects of one kind are printed.
pub trait Printer: Send + Sync {
    /// Every column, standard and wide.
    fn columns(&self) -> &[Column];

    /// The cells of `object`, one per column; an object of an unexpected shape gets what can
    /// be read.
    fn cells(&self, object: &Value, now: Timestamp) -> Vec<String>;
}

/// A printer of fixed columns filled by a function.
pub struct Columns {
    pub columns: &'static [Column],
    pub cells: fn(&Value, Timestamp) -> Vec<String>,
}

impl Printer for Columns {
    fn columns(&self) -> &[Column] {
        self.columns
    }

    fn cells(&self, object: &Value, now: Timestamp) -> Vec<String> {
        (self.cells)(object, now)
    }
}

/// NAME and AGE: what kubectl prints for a kind without columns of its own.
pub static NAME_AND_AGE: Columns = Columns {
    columns: &[Column::standard("NAME"), Column::standard("AGE")],
    cells: |object, now| vec![text(object, "/metadata/name"), age(object, now)],
};

/// The labels of an object as `--show-labels` prints them: `a=1,b=2`, or `<none>`.
pub fn labels(object: &Value) -> String {
    let pairs: BTreeMap<&String, &str> = object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| (k, v.as_str().unwrap_or_default()))
        .collect();
    let joined: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    or_none(Some(joined.join(",")))
}

/// The typed form of `object` (read in place, not copied first), or the type's default when
/// it does not fit.
fn decode<T: DeserializeOwned + Default>(object: &Value) -> T {
    T::deserialize(object).unwrap_or_else(|error| {
        tracing::warn!(%error, "object does not have the expected shape");
        T::default()
    })
}

pub fn text(object: &Value, pointer: &str) -> String {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn timestamp(object: &Value, pointer: &str) -> Option<Timestamp> {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .and_then(|t| t.parse().ok())
}

/// The AGE cell: time since creation.
fn age(object: &Value, now: Timestamp) -> String {
    since(timestamp(object, "/metadata/creationTimestamp"), now)
}

fn or_none(value: Option<String>) -> String {
    value
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "<none>".into())
}

#[cfg(test)]
pub(crate) fn test_now() -> Timestamp {
    "2024-01-10T00:00:00Z".parse().expect("a timestamp")
}
