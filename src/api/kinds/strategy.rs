//! What the write path asks of a kind (kube-apiserver's `RESTCreateStrategy`,
//! `RESTUpdateStrategy` and `RESTDeleteStrategy` in one trait): decode to the real Kubernetes
//! type, default, validate, keep what a write may not change, and decide how a delete goes.
//!
//! Objects are stored as the typed value re-serialized, so unknown fields are dropped the way
//! the Kubernetes API server drops them, and a value of the wrong type is refused with its path.

use std::marker::PhantomData;

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::meta;
use super::resource::{Resource, Subresource};
use crate::api::error::{ApiError, ApiResult, Cause};
use crate::api::objects::{DeleteOptions, Part};

/// Whether the object is being created or replaced (with the stored version).
pub enum Write<'a> {
    Create,
    Update { old: &'a Value },
}

/// One object on its way to the store: what a strategy reads, and where it reports the
/// fields it refuses.
pub struct Admission<'a> {
    pub resource: &'a Resource,
    /// The object as sent (to tell a missing field from a default one).
    pub value: &'a Value,
    pub write: Write<'a>,
    /// One per bad field; the write is refused with all of them.
    pub causes: Vec<Cause>,
}

impl Admission<'_> {
    /// The object as the kind's type.
    ///
    /// # Errors
    /// `BadRequest` naming the first field of the wrong type.
    pub fn decode<T: DeserializeOwned>(&self) -> ApiResult<T> {
        decode(self.resource, self.value)
    }

    /// The stored version as the kind's type, on an update; `None` on a create.
    ///
    /// # Errors
    /// As [`Admission::decode`].
    pub fn old<T: DeserializeOwned>(&self) -> ApiResult<Option<T>> {
        match self.write {
            Write::Create => Ok(None),
            Write::Update { old } => decode(self.resource, old).map(Some),
        }
    }
}

/// JSON pointers of the fields a `Scale` shows: desired and current replicas, and the selector
/// (a label selector object, or its text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScalePaths {
    pub spec_replicas: String,
    pub status_replicas: String,
    pub label_selector: Option<String>,
}

impl Default for ScalePaths {
    /// The ReplicaSet shape.
    fn default() -> Self {
        Self {
            spec_replicas: "/spec/replicas".into(),
            status_replicas: "/status/replicas".into(),
            label_selector: Some("/spec/selector".into()),
        }
    }
}

/// How a delete proceeds.
#[derive(Debug, PartialEq, Eq)]
pub enum Deletion {
    /// Remove the object at once.
    Now,
    /// Set `deletionTimestamp` (and `deletionGracePeriodSeconds` when given) for the
    /// component that finishes the job.
    Mark {
        grace: Option<i64>,
        /// Added to `metadata.finalizers` (Foreground and Orphan propagation).
        finalizer: Option<&'static str>,
    },
    /// Already marked at least as urgently: nothing changes.
    AlreadyMarked,
}

/// The rules of one kind on the write path.
pub trait Strategy: Send + Sync {
    /// Decodes the object as the kind's type, fills defaults on create and validates (a cause
    /// per bad field); returns the object as it would be stored.
    ///
    /// # Errors
    /// `BadRequest` when a field has the wrong type (the message names its path).
    fn admit(&self, admission: &mut Admission<'_>) -> ApiResult<Value>;

    /// The JSON schema of the kind's objects (definitions under `$defs`), for OpenAPI.
    fn schema(&self) -> Value;

    /// Keeps from `current` what a write of `part` may not change (kube-apiserver's
    /// `PrepareForUpdate`): a write of the object keeps the stored status when status is a
    /// subresource; a status write keeps everything but the status.
    fn prepare_for_update(
        &self,
        resource: &Resource,
        current: &Value,
        value: &mut Value,
        part: Part,
    ) {
        let keep_status = |value: &mut Value, status: Option<Value>| match status {
            Some(status) => value["status"] = status,
            None => {
                value.as_object_mut().map(|o| o.remove("status"));
            }
        };
        match part {
            Part::Status => {
                let status = value.get("status").cloned();
                *value = current.clone();
                keep_status(value, status);
            }
            Part::Main if resource.serves(Subresource::Status) => {
                keep_status(value, current.get("status").cloned());
            }
            Part::Main => {}
        }
    }

    /// Refuses the delete of an object that must stay.
    ///
    /// # Errors
    /// `Forbidden` with the reason.
    fn check_delete(&self, _name: &str) -> ApiResult<()> {
        Ok(())
    }

    /// Where the `scale` subresource reads and writes (for kinds that serve it).
    fn scale_paths(&self) -> ScalePaths {
        ScalePaths::default()
    }

    /// Whether a collection of the kind may be deleted at once (the `deletecollection` verb;
    /// Kubernetes serves none for namespaces).
    fn deletes_collections(&self) -> bool {
        true
    }

    /// How deleting `object` proceeds: by default at once, unless finalizers or a
    /// propagation policy make it wait for a controller.
    fn deletion(&self, object: &Value, options: &DeleteOptions) -> Deletion {
        let marked = object.pointer("/metadata/deletionTimestamp").is_some();
        if marked {
            return Deletion::AlreadyMarked;
        }
        match options.propagation_policy.finalizer() {
            Some(finalizer) => Deletion::Mark {
                grace: None,
                finalizer: Some(finalizer),
            },
            None if has_entries(object, "/metadata/finalizers") => Deletion::Mark {
                grace: None,
                finalizer: None,
            },
            None => Deletion::Now,
        }
    }

    /// What else a delete mark changes (a namespace turns `Terminating`).
    fn mark_for_deletion(&self, _object: &mut Value) {}

    /// Whether an object being deleted may now be removed: by default once its last
    /// finalizer is gone.
    fn finalized(&self, object: &Value) -> bool {
        object.pointer("/metadata/deletionTimestamp").is_some()
            && !has_entries(object, "/metadata/finalizers")
    }
}

/// Whether the array at `pointer` has entries.
pub fn has_entries(object: &Value, pointer: &str) -> bool {
    object
        .pointer(pointer)
        .and_then(Value::as_array)
        .is_some_and(|entries| !entries.is_empty())
}

/// The strategy of a kind with no rules beyond its type's shape (Node, Event, Lease).
pub struct Typed<T>(pub PhantomData<fn() -> T>);

impl<T: Serialize + DeserializeOwned + JsonSchema> Strategy for Typed<T> {
    fn admit(&self, admission: &mut Admission<'_>) -> ApiResult<Value> {
        encode(&admission.decode::<T>()?)
    }

    fn schema(&self) -> Value {
        schema_of::<T>()
    }
}

/// The JSON schema of a Kubernetes type, its definitions under `$defs`.
pub fn schema_of<T: JsonSchema>() -> Value {
    let schema = schemars::SchemaGenerator::default().into_root_schema_for::<T>();
    schema.to_value()
}

/// Validates the metadata, then applies the kind's strategy.
///
/// # Errors
/// `BadRequest` when a field has the wrong type (the message names its path), `Invalid` with
/// one cause per bad field otherwise.
pub fn admit(resource: &Resource, value: Value, write: Write<'_>) -> ApiResult<Value> {
    let mut admission = Admission {
        resource,
        value: &value,
        write,
        causes: Vec::new(),
    };
    meta::validate(
        &value["metadata"],
        resource.label_names,
        &mut admission.causes,
    );
    let admitted = resource.strategy.admit(&mut admission)?;
    if admission.causes.is_empty() {
        Ok(admitted)
    } else {
        Err(invalid(resource, &value, admission.causes))
    }
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
///
/// # Errors
/// `BadRequest` naming the field.
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

/// The stored form of a typed object.
///
/// # Errors
/// `Internal` when the type cannot be serialized (never for Kubernetes types).
pub fn encode<T: Serialize>(typed: &T) -> ApiResult<Value> {
    serde_json::to_value(typed).map_err(|e| ApiError::Internal(e.to_string()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::api::kinds::PODS;
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
