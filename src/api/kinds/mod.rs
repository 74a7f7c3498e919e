//! Per-kind rules applied on the write path: decode to the real Kubernetes type, default, validate.
//!
//! Objects are stored as the typed value re-serialized, so unknown fields are dropped the way
//! the Kubernetes API server drops them, and a value of the wrong type is refused with its path.

pub mod deployment;
pub mod meta;
pub mod pod;
pub mod replica_set;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Namespace, NamespaceSpec, NamespaceStatus, Node, Pod};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::{ApiError, ApiResult, Cause};
use super::resources::Resource;

/// Whether the object is being created or replaced (with the stored version).
pub enum Write<'a> {
    Create,
    Update { old: &'a Value },
}

/// Decodes `value` as `resource`'s type, applies defaults on create and validates.
///
/// # Errors
/// `BadRequest` when a field has the wrong type (the message names its path), `Invalid` with
/// one cause per bad field otherwise.
pub fn admit(resource: &Resource, value: Value, write: Write<'_>) -> ApiResult<Value> {
    let mut causes = Vec::new();
    meta::validate(&value["metadata"], resource.label_names, &mut causes);
    let admitted = match resource.kind {
        "Pod" => admit_pod(resource, &value, &write, &mut causes)?,
        "ReplicaSet" => replica_set::admit(resource, &value, &write, &mut causes)?,
        "Deployment" => deployment::admit(resource, &value, &write, &mut causes)?,
        "Namespace" => {
            let mut namespace: Namespace = decode(resource, &value)?;
            if matches!(write, Write::Create) {
                namespace.spec = Some(NamespaceSpec {
                    finalizers: Some(vec!["kubernetes".into()]),
                });
                namespace.status = Some(NamespaceStatus {
                    phase: Some("Active".into()),
                    ..Default::default()
                });
            }
            encode(&namespace)?
        }
        "Node" => encode(&decode::<Node>(resource, &value)?)?,
        "Event" => encode(&decode::<Event>(resource, &value)?)?,
        "Lease" => encode(&decode::<Lease>(resource, &value)?)?,
        other => {
            return Err(ApiError::Internal(format!(
                "no admission rules for kind {other}"
            )));
        }
    };
    if causes.is_empty() {
        Ok(admitted)
    } else {
        Err(invalid(resource, &value, causes))
    }
}

fn admit_pod(
    resource: &Resource,
    value: &Value,
    write: &Write<'_>,
    causes: &mut Vec<Cause>,
) -> ApiResult<Value> {
    let mut pod: Pod = decode(resource, value)?;
    match write {
        Write::Create => pod::default(&mut pod),
        Write::Update { old } => {
            let old: Pod = decode(resource, old)?;
            pod::validate_update(&old, &pod, causes);
        }
    }
    pod::validate(&pod, value, causes);
    encode(&pod)
}

/// The 422 for `causes` on the object `value`.
pub fn invalid(resource: &Resource, value: &Value, causes: Vec<Cause>) -> ApiError {
    ApiError::Invalid {
        kind: resource.kind.to_string(),
        name: value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        causes,
    }
}

/// Decodes with the path of the first field that does not fit, as Kubernetes reports it.
pub fn decode<T: DeserializeOwned>(resource: &Resource, value: &Value) -> ApiResult<T> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        ApiError::BadRequest(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: {path}: {inner}",
            kind = resource.kind,
            version = resource.version,
            inner = error.inner(),
        ))
    })
}

fn encode<T: Serialize>(typed: &T) -> ApiResult<Value> {
    serde_json::to_value(typed).map_err(|e| ApiError::Internal(e.to_string()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::api::resources::PODS;
    use serde_json::json;

    /// The `field: message` of each cause when creating `value` is refused as invalid;
    /// nothing when it is admitted.
    pub(crate) fn invalid_fields(resource: &Resource, value: Value) -> Vec<String> {
        match admit(resource, value, Write::Create) {
            Ok(_) => Vec::new(),
            Err(ApiError::Invalid { causes, .. }) => causes
                .into_iter()
                .map(|c| format!("{}: {}", c.field, c.message))
                .collect(),
            Err(other) => panic!("{other}"),
        }
    }

    #[test]
    fn a_string_where_a_number_belongs_names_the_field() {
        let value = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a", "image": "a.wasm", "ports": [{"containerPort": "eighty"}]}]}});
        let error = admit(&PODS, value, Write::Create).unwrap_err();
        assert_eq!(error.code(), 400);
        assert!(
            error
                .to_string()
                .contains("spec.containers[0].ports[0].containerPort"),
            "{error}"
        );
    }

    #[test]
    fn unknown_fields_are_dropped_and_defaults_filled() {
        let value = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "bogus": 1,
            "spec": {"containers": [{"name": "a", "image": "a.wasm"}]}});
        let admitted = admit(&PODS, value, Write::Create).unwrap();
        assert!(admitted.get("bogus").is_none());
        assert_eq!(admitted["spec"]["restartPolicy"], "Always");
    }
}
