//! ReplicaSet (`apps/v1`): the kind, its defaults and validation.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetStatus};
use serde_json::{Value, json};

use super::resource::{Resource, Subresource};
use super::strategy::{Admission, Strategy, encode, schema_of};
use super::{meta, pod};
use crate::api::error::{ApiResult, Bare, Cause};
use crate::api::printers;
use crate::api::selectors::LabelSelector;

pub static REPLICA_SETS: Resource = Resource {
    group: "apps",
    version: "v1",
    kind: "ReplicaSet",
    plural: "replicasets",
    singular: "replicaset",
    short_names: &["rs"],
    categories: &["all"],
    namespaced: true,
    subresources: &[Subresource::Status, Subresource::Scale],
    // Its name prefixes its pods' names, which must be DNS labels.
    label_names: true,
    selectable_fields: &[],
    strategy: &ReplicaSetStrategy,
    printer: &printers::workload::REPLICA_SET_COLUMNS,
};

struct ReplicaSetStrategy;

impl Strategy for ReplicaSetStrategy {
    /// Decodes, defaults and validates a ReplicaSet; a new one starts with an empty status.
    fn admit(&self, admission: &mut Admission<'_>) -> ApiResult<Value> {
        let mut replica_set: ReplicaSet = admission.decode()?;
        default(&mut replica_set);
        match admission.old::<ReplicaSet>()? {
            None => replica_set.status = Some(ReplicaSetStatus::default()),
            Some(old) => validate_update(&old, &replica_set, &mut admission.causes),
        }
        validate(&replica_set, admission.value, &mut admission.causes);
        encode(&replica_set)
    }

    fn schema(&self) -> Value {
        schema_of::<ReplicaSet>()
    }
}

/// One replica, and the pod defaults in the template.
pub fn default(replica_set: &mut ReplicaSet) {
    let spec = &mut replica_set.spec;
    spec.replicas.get_or_insert(1);
    if let Some(pod_spec) = spec.template.as_mut().and_then(|t| t.spec.as_mut()) {
        pod::default_spec(pod_spec);
    }
}

/// Checks a ReplicaSet; `raw` is the JSON as sent (to tell a missing selector from an empty one).
pub fn validate(replica_set: &ReplicaSet, raw: &Value, causes: &mut Vec<Cause>) {
    let spec = &replica_set.spec;
    for (field, value) in [
        ("spec.replicas", spec.replicas),
        ("spec.minReadySeconds", spec.min_ready_seconds),
    ] {
        if let Some(value) = value.filter(|v| *v < 0) {
            causes.push(Cause::invalid(
                field,
                value,
                "must be greater than or equal to 0",
            ));
        }
    }
    let selector = validate_selector(replica_set, raw, causes);
    let Some(template) = spec.template.as_ref() else {
        causes.push(Cause::required("spec.template"));
        return;
    };
    let raw_template = &raw["spec"]["template"];
    meta::validate_labels(
        &raw_template["metadata"]["labels"],
        "spec.template.metadata.labels",
        causes,
    );
    let labels = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    if let Some(selector) = selector
        && !selector.matches(&json!({"metadata": {"labels": labels}}))
    {
        causes.push(Cause::invalid(
            "spec.template.metadata.labels",
            Bare(go_map(&labels)),
            "`selector` does not match template `labels`",
        ));
    }
    let Some(pod_spec) = template.spec.as_ref() else {
        causes.push(Cause::required("spec.template.spec"));
        return;
    };
    pod::validate_spec(
        pod_spec,
        &raw_template["spec"],
        "spec.template.spec",
        causes,
    );
    if let Some(policy) = pod_spec
        .restart_policy
        .as_deref()
        .filter(|p| matches!(*p, "OnFailure" | "Never"))
    {
        causes.push(Cause::unsupported(
            "spec.template.spec.restartPolicy",
            policy,
            &["Always"],
        ));
    }
}

/// The selector is required, non-empty and well formed; returns it when it is.
fn validate_selector(
    replica_set: &ReplicaSet,
    raw: &Value,
    causes: &mut Vec<Cause>,
) -> Option<LabelSelector> {
    if raw.pointer("/spec/selector").is_none_or(Value::is_null) {
        causes.push(Cause::required("spec.selector"));
        return None;
    }
    let selector = &replica_set.spec.selector;
    for (i, expression) in selector.match_expressions.iter().flatten().enumerate() {
        const OPERATORS: &[&str] = &["In", "NotIn", "Exists", "DoesNotExist"];
        if !OPERATORS.contains(&expression.operator.as_str()) {
            let field = format!("spec.selector.matchExpressions[{i}].operator");
            causes.push(Cause::unsupported(field, &expression.operator, OPERATORS));
        }
    }
    meta::validate_labels(
        &raw["spec"]["selector"]["matchLabels"],
        "spec.selector.matchLabels",
        causes,
    );
    match LabelSelector::from_k8s(selector) {
        Ok(parsed) if parsed.is_empty() => {
            causes.push(Cause::invalid(
                "spec.selector",
                "{}",
                "empty selector is invalid for deployment",
            ));
            None
        }
        Ok(parsed) => Some(parsed),
        Err(error) => {
            causes.push(Cause::invalid(
                "spec.selector",
                parsed_text(raw),
                &error.to_string(),
            ));
            None
        }
    }
}

/// The selector may not change (`apps/v1`).
pub fn validate_update(old: &ReplicaSet, new: &ReplicaSet, causes: &mut Vec<Cause>) {
    if old.spec.selector != new.spec.selector {
        let text = LabelSelector::from_k8s(&new.spec.selector)
            .map(|s| s.to_string())
            .unwrap_or_default();
        causes.push(Cause::invalid("spec.selector", text, "field is immutable"));
    }
}

fn parsed_text(raw: &Value) -> String {
    raw.pointer("/spec/selector")
        .map(Value::to_string)
        .unwrap_or_default()
}

/// Labels as the Kubernetes API server prints them in messages: `map[string]string{"a":"b"}`.
fn go_map(labels: &BTreeMap<String, String>) -> String {
    let pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k:?}:{v:?}")).collect();
    format!("map[string]string{{{}}}", pairs.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::kinds::strategy::tests::invalid_fields;
    use crate::api::kinds::{Write, admit as admit_any};

    fn replica_set(selector: Value, labels: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web"},
               "spec": {"selector": selector, "template": {"metadata": {"labels": labels},
                        "spec": {"containers": [{"name": "c", "image": "c.wasm"}]}}}})
    }

    fn fields(value: Value) -> Vec<String> {
        invalid_fields(&REPLICA_SETS, value)
    }

    #[test]
    fn defaults_one_replica_the_pod_defaults_and_an_empty_status() {
        let value = replica_set(
            json!({"matchLabels": {"app": "web"}}),
            json!({"app": "web"}),
        );
        let admitted = admit_any(&REPLICA_SETS, value, Write::Create).unwrap();
        assert_eq!(admitted["spec"]["replicas"], 1);
        assert_eq!(
            admitted["spec"]["template"]["spec"]["restartPolicy"],
            "Always"
        );
        assert_eq!(admitted["status"], json!({"replicas": 0}));
    }

    #[test]
    fn a_selector_that_does_not_match_the_template_labels_is_named() {
        let value = replica_set(
            json!({"matchLabels": {"app": "web"}}),
            json!({"app": "other"}),
        );
        assert_eq!(
            fields(value),
            [
                "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"other\"}: `selector` does not match template `labels`"
            ]
        );
    }

    #[test]
    fn missing_selector_negative_replicas_and_bad_template_are_each_named() {
        let mut value = replica_set(Value::Null, json!({"app": "web"}));
        value["spec"].as_object_mut().unwrap().remove("selector");
        value["spec"]["replicas"] = json!(-1);
        value["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
        value["spec"]["template"]["spec"]["containers"][0]["image"] = json!("");
        let fields: Vec<String> = fields(value)
            .into_iter()
            .map(|f| f.split(':').next().unwrap().to_string())
            .collect();
        assert_eq!(
            fields,
            [
                "spec.replicas",
                "spec.selector",
                "spec.template.spec.containers[0].image",
                "spec.template.spec.restartPolicy"
            ]
        );
    }

    #[test]
    fn match_expressions_are_checked_and_may_select() {
        let expressions = json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "api"]}]});
        assert!(fields(replica_set(expressions, json!({"app": "api"}))).is_empty());
        let bad =
            json!({"matchExpressions": [{"key": "app", "operator": "Near", "values": ["x"]}]});
        assert!(
            fields(replica_set(bad, json!({"app": "x"})))[0]
                .starts_with("spec.selector.matchExpressions[0].operator")
        );
    }

    #[test]
    fn the_selector_is_immutable() {
        let old: ReplicaSet = serde_json::from_value(replica_set(
            json!({"matchLabels": {"app": "web"}}),
            json!({"app": "web"}),
        ))
        .unwrap();
        let mut new = old.clone();
        new.spec.selector.match_labels = Some([("app".to_string(), "api".to_string())].into());
        let mut causes = Vec::new();
        validate_update(&old, &new, &mut causes);
        assert_eq!(causes[0].field, "spec.selector");
    }
}
