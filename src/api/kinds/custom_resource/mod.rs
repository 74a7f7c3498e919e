//! The kinds a CustomResourceDefinition serves: one `Resource` per served version, made at run
//! time from the definition, with a strategy that prunes, defaults and validates by the
//! version's structural schema and a printer of its declared columns.
//!
//! A registered kind lives as long as the process (the registry hands out `&'static`
//! resources), so each is leaked once: the CRD controller keeps the kinds it made and makes
//! new ones only when a definition changes.

pub mod schema;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceDefinitionVersion,
};
use serde_json::{Value, json};

use super::resource::{Resource, Subresource};
use super::strategy::{Admission, ScalePaths, Strategy};
use crate::api::error::{ApiError, ApiResult};
use crate::api::printers::custom_columns::{CustomColumns, DeclaredColumn};
use crate::api::printers::jsonpath::Template;

/// Objects of one served version of a custom resource.
struct CustomResource {
    /// The version's `openAPIV3Schema`.
    schema: Value,
    scale: Option<ScalePaths>,
}

impl Strategy for CustomResource {
    fn admit(&self, admission: &mut Admission<'_>) -> ApiResult<Value> {
        let mut object = admission.value.clone();
        if !object.is_object() {
            return Err(ApiError::BadRequest(
                "the object must be a JSON object".into(),
            ));
        }
        schema::prune(&self.schema, &mut object);
        schema::default(&self.schema, &mut object);
        schema::validate(&self.schema, &object, "", &mut admission.causes);
        Ok(object)
    }

    /// The version's schema with the identity fields every object has, as kube-apiserver
    /// publishes it.
    fn schema(&self) -> Value {
        let mut schema = self.schema.clone();
        let identity = json!({
            "apiVersion": {"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object."},
            "kind": {"type": "string", "description": "Kind is a string value representing the REST resource this object represents."},
            "metadata": {"type": "object"},
        });
        if let (Some(properties), Some(identity)) = (
            schema
                .as_object_mut()
                .map(|s| s.entry("properties").or_insert_with(|| json!({}))),
            identity.as_object(),
        ) && let Some(properties) = properties.as_object_mut()
        {
            for (name, field) in identity {
                properties
                    .entry(name.clone())
                    .or_insert_with(|| field.clone());
            }
        }
        schema
    }

    fn scale_paths(&self) -> ScalePaths {
        self.scale.clone().unwrap_or_default()
    }
}

/// The kinds `crd` serves, one per served version.
///
/// # Errors
/// A message for a definition that cannot be served (a bad printer column path).
pub fn served_kinds(crd: &CustomResourceDefinition) -> Result<Vec<&'static Resource>, String> {
    crd.spec
        .versions
        .iter()
        .filter(|v| v.served)
        .map(|version| served_kind(crd, version))
        .collect()
}

fn served_kind(
    crd: &CustomResourceDefinition,
    version: &CustomResourceDefinitionVersion,
) -> Result<&'static Resource, String> {
    let spec = &crd.spec;
    let names = &spec.names;
    let schema = version
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .map(|s| serde_json::to_value(s).unwrap_or_default())
        .unwrap_or_else(|| json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}));
    let subresources = version.subresources.as_ref();
    let scale = subresources
        .and_then(|s| s.scale.as_ref())
        .map(|scale| ScalePaths {
            spec_replicas: pointer(&scale.spec_replicas_path),
            status_replicas: pointer(&scale.status_replicas_path),
            label_selector: scale.label_selector_path.as_deref().map(pointer),
        });
    let mut served = Vec::new();
    if subresources.is_some_and(|s| s.status.is_some()) {
        served.push(Subresource::Status);
    }
    if scale.is_some() {
        served.push(Subresource::Scale);
    }
    let mut declared = Vec::new();
    for column in version.additional_printer_columns.iter().flatten() {
        let path = Template::parse(&column.json_path)
            .map_err(|e| format!("additionalPrinterColumns {:?}: {e}", column.name))?;
        declared.push(DeclaredColumn {
            name: column.name.clone(),
            kind: column.type_.clone(),
            path,
            priority: u8::try_from(column.priority.unwrap_or(0).clamp(0, 1)).unwrap_or(0),
        });
    }
    let singular = names
        .singular
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| names.kind.to_lowercase());
    Ok(Box::leak(Box::new(Resource {
        group: leak(spec.group.clone()),
        version: leak(version.name.clone()),
        kind: leak(names.kind.clone()),
        plural: leak(names.plural.clone()),
        singular: leak(singular),
        short_names: leak_all(names.short_names.clone().unwrap_or_default()),
        categories: leak_all(names.categories.clone().unwrap_or_default()),
        namespaced: spec.scope == "Namespaced",
        subresources: Box::leak(served.into_boxed_slice()),
        label_names: false,
        selectable_fields: &[],
        strategy: Box::leak(Box::new(CustomResource { schema, scale })),
        printer: Box::leak(Box::new(CustomColumns::new(declared))),
    })))
}

/// `.spec.replicas` → `/spec/replicas`.
fn pointer(json_path: &str) -> String {
    json_path.replace('.', "/")
}

fn leak(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

fn leak_all(texts: Vec<String>) -> &'static [&'static str] {
    Box::leak(
        texts
            .into_iter()
            .map(leak)
            .collect::<Vec<_>>()
            .into_boxed_slice(),
    )
}
