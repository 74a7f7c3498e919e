//! Deployment (`apps/v1`): the kind, its defaults and validation.
//!
//! The selector, template and replica rules are the ReplicaSet's (a Deployment's template
//! becomes its ReplicaSets'), checked on a ReplicaSet built from the same fields; the strategy
//! rules are Kubernetes' `ValidateDeploymentStrategy`.

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentStatus, DeploymentStrategy, ReplicaSet, ReplicaSetSpec,
    RollingUpdateDeployment,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use super::resource::{Resource, Subresource};
use super::strategy::{Admission, Strategy, encode, schema_of};
use super::{pod, replica_set};
use crate::api::error::{ApiResult, Bare, Cause};
use crate::api::printers;

pub static DEPLOYMENTS: Resource = Resource {
    group: "apps",
    version: "v1",
    kind: "Deployment",
    plural: "deployments",
    singular: "deployment",
    short_names: &["deploy"],
    categories: &["all"],
    namespaced: true,
    subresources: &[Subresource::Status, Subresource::Scale],
    // Its name prefixes its ReplicaSets' names, and theirs their pods'.
    label_names: true,
    selectable_fields: &[],
    strategy: &DeploymentRules,
    printer: &printers::workload::DEPLOYMENT_COLUMNS,
};

struct DeploymentRules;

impl Strategy for DeploymentRules {
    /// Decodes, defaults and validates a Deployment; a new one starts with an empty status.
    fn admit(&self, admission: &mut Admission<'_>) -> ApiResult<Value> {
        let mut deployment: Deployment = admission.decode()?;
        default(&mut deployment);
        if let Some(old) = admission.old::<Deployment>()? {
            let (old, new) = (as_replica_set(&old), as_replica_set(&deployment));
            replica_set::validate_update(&old, &new, &mut admission.causes);
        } else {
            deployment.status = Some(DeploymentStatus::default());
        }
        validate(&deployment, admission.value, &mut admission.causes);
        encode(&deployment)
    }

    fn schema(&self) -> Value {
        schema_of::<Deployment>()
    }
}

/// Kubernetes' `apps/v1` defaults: one replica, RollingUpdate with 25% surge and 25%
/// unavailable, ten old ReplicaSets kept, a 600 s progress deadline, and the pod defaults.
pub fn default(deployment: &mut Deployment) {
    let spec = &mut deployment.spec;
    spec.replicas.get_or_insert(1);
    spec.revision_history_limit.get_or_insert(10);
    spec.progress_deadline_seconds.get_or_insert(600);
    let strategy = spec
        .strategy
        .get_or_insert_with(DeploymentStrategy::default);
    let kind = strategy.type_.get_or_insert_with(|| "RollingUpdate".into());
    if kind == "RollingUpdate" {
        let rolling = strategy
            .rolling_update
            .get_or_insert_with(RollingUpdateDeployment::default);
        let quarter = || IntOrString::String("25%".into());
        rolling.max_surge.get_or_insert_with(quarter);
        rolling.max_unavailable.get_or_insert_with(quarter);
    }
    if let Some(pod_spec) = spec.template.spec.as_mut() {
        pod::default_spec(pod_spec);
    }
}

/// Checks a Deployment; `raw` is the JSON as sent.
pub fn validate(deployment: &Deployment, raw: &Value, causes: &mut Vec<Cause>) {
    let spec = &deployment.spec;
    replica_set::validate(&as_replica_set(deployment), raw, causes);
    for (field, value) in [
        ("spec.revisionHistoryLimit", spec.revision_history_limit),
        (
            "spec.progressDeadlineSeconds",
            spec.progress_deadline_seconds,
        ),
    ] {
        if let Some(value) = value.filter(|v| *v < 0) {
            causes.push(Cause::invalid(
                field,
                value,
                "must be greater than or equal to 0",
            ));
        }
    }
    if let Some(deadline) = spec.progress_deadline_seconds
        && deadline <= spec.min_ready_seconds.unwrap_or(0)
    {
        causes.push(Cause::invalid(
            "spec.progressDeadlineSeconds",
            deadline,
            "must be greater than minReadySeconds",
        ));
    }
    if let Some(strategy) = spec.strategy.as_ref() {
        validate_strategy(strategy, causes);
    }
}

fn validate_strategy(strategy: &DeploymentStrategy, causes: &mut Vec<Cause>) {
    const TYPES: &[&str] = &["Recreate", "RollingUpdate"];
    match strategy.type_.as_deref().unwrap_or("RollingUpdate") {
        "Recreate" if strategy.rolling_update.is_some() => causes.push(Cause::forbidden(
            "spec.strategy.rollingUpdate",
            "may not be specified when strategy `type` is 'Recreate'",
        )),
        "Recreate" => {}
        "RollingUpdate" => match strategy.rolling_update.as_ref() {
            Some(rolling) => validate_rolling_update(rolling, causes),
            None => causes.push(Cause::required("spec.strategy.rollingUpdate")),
        },
        other => causes.push(Cause::unsupported("spec.strategy.type", other, TYPES)),
    }
}

fn validate_rolling_update(rolling: &RollingUpdateDeployment, causes: &mut Vec<Cause>) {
    let field = |name: &str| format!("spec.strategy.rollingUpdate.{name}");
    let surge = checked_value(rolling.max_surge.as_ref(), &field("maxSurge"), causes);
    let unavailable = checked_value(
        rolling.max_unavailable.as_ref(),
        &field("maxUnavailable"),
        causes,
    );
    if let Some(IntOrString::String(text)) = rolling.max_unavailable.as_ref()
        && unavailable.is_some_and(|v| v > 100)
    {
        causes.push(Cause::invalid(
            field("maxUnavailable"),
            text,
            "must not be greater than 100%",
        ));
    }
    if surge == Some(0) && unavailable == Some(0) {
        causes.push(Cause::invalid(
            field("maxUnavailable"),
            0,
            "may not be 0 when `maxSurge` is 0",
        ));
    }
}

/// The number (or percentage) in an int-or-percent field, when it is a valid one.
fn checked_value(value: Option<&IntOrString>, field: &str, causes: &mut Vec<Cause>) -> Option<i32> {
    match value? {
        IntOrString::Int(n) if *n < 0 => {
            causes.push(Cause::invalid(
                field,
                n,
                "must be greater than or equal to 0",
            ));
            None
        }
        IntOrString::Int(n) => Some(*n),
        IntOrString::String(text) => match percent(text) {
            Some(n) => Some(n),
            None => {
                causes.push(Cause::invalid(
                    field,
                    Bare(format!("{text:?}")),
                    "a valid percent string must be a numeric string followed by an ending '%' \
                     (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
                ));
                None
            }
        },
    }
}

/// `"25%"` → 25; anything but digits followed by `%` → `None`.
pub fn percent(text: &str) -> Option<i32> {
    let digits = text.strip_suffix('%')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().or(Some(i32::MAX))
}

/// The ReplicaSet this Deployment's shared fields describe, to check them by its rules.
fn as_replica_set(deployment: &Deployment) -> ReplicaSet {
    let spec = deployment.spec.clone();
    ReplicaSet {
        metadata: deployment.metadata.clone(),
        spec: ReplicaSetSpec {
            replicas: spec.replicas,
            min_ready_seconds: spec.min_ready_seconds,
            selector: spec.selector,
            template: Some(spec.template),
        },
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::kinds::strategy::tests::invalid_fields;
    use crate::api::kinds::{Write, admit as admit_any};
    use serde_json::json;

    fn deployment(spec_extra: Value) -> Value {
        let mut value = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": "c.wasm"}]}}}});
        for (key, field) in spec_extra.as_object().unwrap() {
            value["spec"][key] = field.clone();
        }
        value
    }

    fn fields(value: Value) -> Vec<String> {
        invalid_fields(&DEPLOYMENTS, value)
    }

    #[test]
    fn defaults_are_kubernetes_apps_v1_defaults() {
        let admitted = admit_any(&DEPLOYMENTS, deployment(json!({})), Write::Create).unwrap();
        let spec = &admitted["spec"];
        assert_eq!(spec["replicas"], 1);
        assert_eq!(spec["revisionHistoryLimit"], 10);
        assert_eq!(spec["progressDeadlineSeconds"], 600);
        assert_eq!(
            spec["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
        );
        assert_eq!(spec["template"]["spec"]["restartPolicy"], "Always");
        assert_eq!(admitted["status"], json!({}));
    }

    #[test]
    fn selector_and_template_follow_the_replica_set_rules() {
        let mut value = deployment(json!({}));
        value["spec"]["template"]["metadata"]["labels"] = json!({"app": "other"});
        value["spec"]["template"]["spec"]["containers"][0]["image"] = json!("");
        let fields: Vec<String> = fields(value)
            .into_iter()
            .map(|f| f.split(':').next().unwrap().to_string())
            .collect();
        assert_eq!(
            fields,
            [
                "spec.template.metadata.labels",
                "spec.template.spec.containers[0].image"
            ]
        );
        let mut value = deployment(json!({}));
        value["spec"].as_object_mut().unwrap().remove("selector");
        assert!(fields_of(value).contains(&"spec.selector".to_string()));
    }

    fn fields_of(value: Value) -> Vec<String> {
        fields(value)
            .into_iter()
            .map(|f| f.split(':').next().unwrap().to_string())
            .collect()
    }

    #[test]
    fn surge_and_unavailable_may_not_both_be_zero_and_percents_must_be_valid() {
        let zero = json!({"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}}});
        assert_eq!(
            fields(deployment(zero)),
            [
                "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0"
            ]
        );
        let bad =
            json!({"strategy": {"rollingUpdate": {"maxSurge": "ten%", "maxUnavailable": "120%"}}});
        assert_eq!(
            fields_of(deployment(bad)),
            [
                "spec.strategy.rollingUpdate.maxSurge",
                "spec.strategy.rollingUpdate.maxUnavailable"
            ]
        );
        let negative =
            json!({"strategy": {"rollingUpdate": {"maxSurge": -1, "maxUnavailable": 1}}});
        assert_eq!(
            fields_of(deployment(negative)),
            ["spec.strategy.rollingUpdate.maxSurge"]
        );
        let fine =
            json!({"strategy": {"rollingUpdate": {"maxSurge": 3, "maxUnavailable": "100%"}}});
        assert!(fields(deployment(fine)).is_empty());
    }

    #[test]
    fn recreate_takes_no_rolling_update_and_unknown_strategies_are_refused() {
        let recreate = json!({"strategy": {"type": "Recreate"}});
        let admitted = admit_any(&DEPLOYMENTS, deployment(recreate), Write::Create).unwrap();
        assert_eq!(admitted["spec"]["strategy"], json!({"type": "Recreate"}));
        let both = json!({"strategy": {"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}});
        assert_eq!(fields_of(deployment(both)), ["spec.strategy.rollingUpdate"]);
        let other = json!({"strategy": {"type": "BlueGreen"}});
        assert_eq!(fields_of(deployment(other)), ["spec.strategy.type"]);
    }

    #[test]
    fn the_progress_deadline_must_exceed_min_ready_seconds() {
        let value = json!({"minReadySeconds": 30, "progressDeadlineSeconds": 30});
        assert_eq!(
            fields_of(deployment(value)),
            ["spec.progressDeadlineSeconds"]
        );
    }
}
