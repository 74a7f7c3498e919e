//! Pod (`v1`): the kind, its graceful deletion, and (in `validation`) its defaults and rules.

mod bounds;
mod probes;
pub mod validation;

use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;

pub use validation::{default_spec, validate_spec};

use super::resource::{Resource, Subresource};
use super::strategy::{Admission, Deletion, Strategy, encode, has_entries, schema_of};
use crate::api::error::ApiResult;
use crate::api::objects::DeleteOptions;
use crate::api::printers;

pub static PODS: Resource = Resource {
    group: "",
    version: "v1",
    kind: "Pod",
    plural: "pods",
    singular: "pod",
    short_names: &["po"],
    categories: &["all"],
    namespaced: true,
    subresources: &[
        Subresource::Status,
        Subresource::Log,
        Subresource::Binding,
        Subresource::Eviction,
    ],
    label_names: true,
    selectable_fields: &[
        "spec.nodeName",
        "status.phase",
        "spec.restartPolicy",
        "status.podIP",
    ],
    strategy: &PodStrategy,
    printer: &printers::pod::COLUMNS,
};

/// The grace period of a pod that names none (Kubernetes' default).
pub const DEFAULT_GRACE_PERIOD_SECONDS: i64 = 30;

struct PodStrategy;

impl Strategy for PodStrategy {
    fn admit(&self, admission: &mut Admission<'_>) -> ApiResult<Value> {
        let mut pod: Pod = admission.decode()?;
        match admission.old::<Pod>()? {
            None => validation::default(&mut pod),
            Some(old) => validation::validate_update(&old, &pod, &mut admission.causes),
        }
        validation::validate(&pod, admission.value, &mut admission.causes);
        encode(&pod)
    }

    fn schema(&self) -> Value {
        schema_of::<Pod>()
    }

    /// A pod on a node is marked with its grace period, for the node to stop its containers;
    /// one that never reached a node, or with no grace, goes at once.
    fn deletion(&self, object: &Value, options: &DeleteOptions) -> Deletion {
        let spec_grace = object
            .pointer("/spec/terminationGracePeriodSeconds")
            .and_then(Value::as_i64);
        let grace = options
            .grace_period_seconds
            .or(spec_grace)
            .unwrap_or(DEFAULT_GRACE_PERIOD_SECONDS)
            .max(0);
        let unscheduled = object
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty();
        let marked = object.pointer("/metadata/deletionTimestamp").is_some();
        let current_grace = object
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64);
        if (grace == 0 || unscheduled) && !has_entries(object, "/metadata/finalizers") {
            Deletion::Now
        } else if marked && current_grace.is_some_and(|g| g <= grace) {
            Deletion::AlreadyMarked
        } else {
            Deletion::Mark {
                grace: Some(grace),
                finalizer: None,
            }
        }
    }

    /// Pods are removed by their node once their containers have stopped.
    fn finalized(&self, _object: &Value) -> bool {
        false
    }
}
