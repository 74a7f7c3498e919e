//! CustomResourceDefinition (`apiextensions.k8s.io/v1`): the kind that adds kinds. The CRD
//! controller serves each definition's versions (`custom_resource`); here are its defaults and
//! rules, as apiextensions-apiserver's `ValidateCustomResourceDefinition` words them.

use std::collections::HashSet;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceDefinitionNames, CustomResourceDefinitionStatus,
};
use serde_json::Value;

use super::meta::dns_label_error;
use super::resource::{Resource, Subresource};
use super::strategy::{Admission, Strategy, encode, schema_of};
use crate::api::error::{ApiResult, Cause};
use crate::api::printers::jsonpath::Template;
use crate::api::printers::{Column, Columns, text};

pub static CUSTOM_RESOURCE_DEFINITIONS: Resource = Resource {
    group: "apiextensions.k8s.io",
    version: "v1",
    kind: "CustomResourceDefinition",
    plural: "customresourcedefinitions",
    singular: "customresourcedefinition",
    short_names: &["crd", "crds"],
    categories: &["api-extensions"],
    namespaced: false,
    subresources: &[Subresource::Status],
    label_names: false,
    selectable_fields: &[],
    strategy: &CustomResourceDefinitionRules,
    printer: &COLUMNS,
};

/// Keeps a definition until its custom resources are gone.
pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

/// kube-apiserver's default columns for a kind without a printer of its own.
static COLUMNS: Columns = Columns {
    columns: &[Column::standard("NAME"), Column::standard("CREATED AT")],
    cells: |object, _| {
        vec![
            text(object, "/metadata/name"),
            text(object, "/metadata/creationTimestamp"),
        ]
    },
};

struct CustomResourceDefinitionRules;

impl Strategy for CustomResourceDefinitionRules {
    fn admit(&self, admission: &mut Admission<'_>) -> ApiResult<Value> {
        let mut crd: CustomResourceDefinition = admission.decode()?;
        default(&mut crd);
        if admission.old::<CustomResourceDefinition>()?.is_none() {
            crd.status = Some(CustomResourceDefinitionStatus {
                accepted_names: Some(CustomResourceDefinitionNames::default()),
                stored_versions: Some(storage_versions(&crd)),
                ..Default::default()
            });
            let finalizers = crd.metadata.finalizers.get_or_insert_with(Vec::new);
            if !finalizers.iter().any(|f| f == CLEANUP_FINALIZER) {
                finalizers.push(CLEANUP_FINALIZER.into());
            }
        }
        validate(&crd, &mut admission.causes);
        encode(&crd)
    }

    fn schema(&self) -> Value {
        schema_of::<CustomResourceDefinition>()
    }
}

/// The singular name and list kind Kubernetes derives from the kind.
fn default(crd: &mut CustomResourceDefinition) {
    let names = &mut crd.spec.names;
    if names.singular.as_deref().is_none_or(str::is_empty) {
        names.singular = Some(names.kind.to_lowercase());
    }
    if names.list_kind.as_deref().is_none_or(str::is_empty) {
        names.list_kind = Some(format!("{}List", names.kind));
    }
}

fn storage_versions(crd: &CustomResourceDefinition) -> Vec<String> {
    crd.spec
        .versions
        .iter()
        .filter(|v| v.storage)
        .map(|v| v.name.clone())
        .collect()
}

fn validate(crd: &CustomResourceDefinition, causes: &mut Vec<Cause>) {
    let spec = &crd.spec;
    let name = crd.metadata.name.clone().unwrap_or_default();
    if name != format!("{}.{}", spec.names.plural, spec.group) {
        causes.push(Cause::invalid(
            "metadata.name",
            &name,
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    if spec.group.is_empty() {
        causes.push(Cause::required("spec.group"));
    } else if !spec.group.contains('.') {
        causes.push(Cause::invalid(
            "spec.group",
            &spec.group,
            "should be a domain with at least one dot",
        ));
    }
    if !matches!(spec.scope.as_str(), "Cluster" | "Namespaced") {
        causes.push(Cause::unsupported(
            "spec.scope",
            &spec.scope,
            &["Cluster", "Namespaced"],
        ));
    }
    for (field, value) in [("plural", &spec.names.plural), ("kind", &spec.names.kind)] {
        let field = format!("spec.names.{field}");
        if value.is_empty() {
            causes.push(Cause::required(field));
        } else if field.ends_with("plural")
            && let Some(error) = dns_label_error(value)
        {
            causes.push(Cause::invalid(field, value, &error));
        }
    }
    validate_versions(crd, causes);
}

fn validate_versions(crd: &CustomResourceDefinition, causes: &mut Vec<Cause>) {
    let versions = &crd.spec.versions;
    if versions.is_empty() {
        causes.push(Cause::required("spec.versions"));
        return;
    }
    if versions.iter().filter(|v| v.storage).count() != 1 {
        causes.push(Cause::invalid(
            "spec.versions",
            versions.len(),
            "must have exactly one version marked as storage version",
        ));
    }
    let mut names = HashSet::new();
    for (i, version) in versions.iter().enumerate() {
        let path = format!("spec.versions[{i}]");
        if let Some(error) = dns_label_error(&version.name) {
            causes.push(Cause::invalid(
                format!("{path}.name"),
                &version.name,
                &error,
            ));
        } else if !names.insert(version.name.as_str()) {
            causes.push(Cause::duplicate(format!("{path}.name"), &version.name));
        }
        let schema = version
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref());
        match schema {
            None => causes.push(Cause {
                field: format!("{path}.schema.openAPIV3Schema"),
                reason: "FieldValueRequired",
                message: "Required value: schemas are required".into(),
            }),
            Some(schema) if schema.type_.as_deref() != Some("object") => causes.push(Cause {
                field: format!("{path}.schema.openAPIV3Schema.type"),
                reason: "FieldValueRequired",
                message: "Required value: must be object at the root".into(),
            }),
            Some(_) => {}
        }
        for (j, column) in version
            .additional_printer_columns
            .iter()
            .flatten()
            .enumerate()
        {
            if let Err(error) = Template::parse(&column.json_path) {
                causes.push(Cause::invalid(
                    format!("{path}.additionalPrinterColumns[{j}].jsonPath"),
                    &column.json_path,
                    &error.to_string(),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::kinds::strategy::tests::invalid_fields;
    use serde_json::json;

    pub(crate) fn widget_crd() -> Value {
        json!({"metadata": {"name": "widgets.example.com"}, "spec": {
            "group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object"}}}]}})
    }

    #[test]
    fn a_definition_gets_its_derived_names_and_the_cleanup_finalizer() {
        let admitted = crate::api::kinds::admit(
            &CUSTOM_RESOURCE_DEFINITIONS,
            widget_crd(),
            super::super::Write::Create,
        )
        .unwrap();
        assert_eq!(admitted["spec"]["names"]["singular"], "widget");
        assert_eq!(admitted["spec"]["names"]["listKind"], "WidgetList");
        assert_eq!(
            admitted["metadata"]["finalizers"],
            json!([CLEANUP_FINALIZER])
        );
        assert_eq!(admitted["status"]["storedVersions"], json!(["v1"]));
    }

    #[test]
    fn definitions_are_refused_in_apiextensions_words() {
        let mut crd = widget_crd();
        crd["metadata"]["name"] = json!("gadgets.example.com");
        crd["spec"]["group"] = json!("example");
        crd["spec"]["versions"][0]["storage"] = json!(false);
        crd["spec"]["versions"][0]["schema"] = json!(null);
        assert_eq!(
            invalid_fields(&CUSTOM_RESOURCE_DEFINITIONS, crd),
            [
                "metadata.name: Invalid value: \"gadgets.example.com\": must be spec.names.plural+\".\"+spec.group",
                "spec.group: Invalid value: \"example\": should be a domain with at least one dot",
                "spec.versions: Invalid value: 1: must have exactly one version marked as storage version",
                "spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required",
            ]
        );
    }
}
