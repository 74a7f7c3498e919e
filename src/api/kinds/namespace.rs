//! Namespace (`v1`): created `Active` with the `kubernetes` finalizer; deleting one marks it
//! `Terminating` for the namespace controller, which empties it and clears the finalizer.

use k8s_openapi::api::core::v1::{Namespace, NamespaceSpec, NamespaceStatus};
use serde_json::{Value, json};

use super::resource::{Resource, Subresource};
use super::strategy::{Admission, Deletion, Strategy, Write, encode, has_entries, schema_of};
use crate::api::error::{ApiError, ApiResult};
use crate::api::objects::DeleteOptions;
use crate::api::printers;

pub static NAMESPACES: Resource = Resource {
    group: "",
    version: "v1",
    kind: "Namespace",
    plural: "namespaces",
    singular: "namespace",
    short_names: &["ns"],
    categories: &[],
    namespaced: false,
    subresources: &[Subresource::Status, Subresource::Finalize],
    label_names: true,
    selectable_fields: &["status.phase"],
    strategy: &NamespaceStrategy,
    printer: &printers::namespace::COLUMNS,
};

/// Namespaces that exist from the start and cannot be deleted.
pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", super::lease::NODE_LEASE_NAMESPACE];

/// The finalizer in `spec.finalizers` the namespace controller clears once it is empty.
pub const FINALIZER: &str = "kubernetes";

struct NamespaceStrategy;

impl Strategy for NamespaceStrategy {
    fn admit(&self, admission: &mut Admission<'_>) -> ApiResult<Value> {
        let mut namespace: Namespace = admission.decode()?;
        if matches!(admission.write, Write::Create) {
            namespace.spec = Some(NamespaceSpec {
                finalizers: Some(vec![FINALIZER.into()]),
            });
            namespace.status = Some(NamespaceStatus {
                phase: Some("Active".into()),
                ..Default::default()
            });
        }
        encode(&namespace)
    }

    fn schema(&self) -> Value {
        schema_of::<Namespace>()
    }

    fn deletes_collections(&self) -> bool {
        false
    }

    fn check_delete(&self, name: &str) -> ApiResult<()> {
        if SYSTEM_NAMESPACES.contains(&name) {
            return Err(ApiError::Forbidden(format!(
                "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
            )));
        }
        Ok(())
    }

    fn deletion(&self, object: &Value, _options: &DeleteOptions) -> Deletion {
        if object.pointer("/metadata/deletionTimestamp").is_some() {
            Deletion::AlreadyMarked
        } else {
            Deletion::Mark {
                grace: None,
                finalizer: None,
            }
        }
    }

    fn mark_for_deletion(&self, object: &mut Value) {
        object["status"]["phase"] = json!("Terminating");
    }

    fn finalized(&self, object: &Value) -> bool {
        object.pointer("/metadata/deletionTimestamp").is_some()
            && !has_entries(object, "/metadata/finalizers")
            && !has_entries(object, "/spec/finalizers")
    }
}
