//! Kubernetes' bounds on a pod spec's numbers and the enums beside them: deadlines, ports,
//! tolerations, probes, security IDs, affinity weights and spread skews — what
//! `ValidatePodSpec` refuses, in its words.

use k8s_openapi::api::core::v1::{Container, PodSpec, Probe, Toleration, WeightedPodAffinityTerm};

use crate::api::error::Cause;

const TAINT_EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];
const TOLERATION_OPERATORS: &[&str] = &["Equal", "Exists"];
const MAX_INT32: i64 = i32::MAX as i64;

/// Checks the bounded fields of the pod spec at `path`.
pub fn validate(spec: &PodSpec, path: &str, causes: &mut Vec<Cause>) {
    if let Some(deadline) = spec.active_deadline_seconds
        && !(1..=MAX_INT32).contains(&deadline)
    {
        causes.push(Cause::invalid(
            format!("{path}.activeDeadlineSeconds"),
            deadline,
            "must be between 1 and 2147483647, inclusive",
        ));
    }
    for (i, toleration) in spec.tolerations.iter().flatten().enumerate() {
        validate_toleration(toleration, &format!("{path}.tolerations[{i}]"), causes);
    }
    if let Some(context) = spec.security_context.as_ref() {
        let context_path = format!("{path}.securityContext");
        let groups = context.supplemental_groups.iter().flatten().copied();
        for (field, id) in [
            ("runAsUser", context.run_as_user),
            ("runAsGroup", context.run_as_group),
            ("fsGroup", context.fs_group),
        ]
        .into_iter()
        .chain(groups.map(|g| ("supplementalGroups", Some(g))))
        {
            id_in_range(&format!("{context_path}.{field}"), id, causes);
        }
    }
    validate_affinity_weights(spec, path, causes);
    for (i, spread) in spec
        .topology_spread_constraints
        .iter()
        .flatten()
        .enumerate()
    {
        let field = format!("{path}.topologySpreadConstraints[{i}]");
        if spread.max_skew <= 0 {
            causes.push(Cause::invalid(
                format!("{field}.maxSkew"),
                spread.max_skew,
                "must be greater than zero",
            ));
        }
        if let Some(domains) = spread.min_domains.filter(|d| *d <= 0) {
            causes.push(Cause::invalid(
                format!("{field}.minDomains"),
                domains,
                "must be greater than zero",
            ));
        }
    }
    let init = spec.init_containers.iter().flatten().enumerate();
    let init = init.map(|(i, c)| (format!("{path}.initContainers[{i}]"), c));
    let app = spec.containers.iter().enumerate();
    let app = app.map(|(i, c)| (format!("{path}.containers[{i}]"), c));
    for (container_path, container) in init.chain(app) {
        validate_container(container, &container_path, causes);
    }
}

fn validate_container(container: &Container, path: &str, causes: &mut Vec<Cause>) {
    for (i, port) in container.ports.iter().flatten().enumerate() {
        if let Some(host_port) = port
            .host_port
            .filter(|p| *p != 0 && !(1..=65535).contains(p))
        {
            causes.push(Cause::invalid(
                format!("{path}.ports[{i}].hostPort"),
                host_port,
                "must be between 1 and 65535, inclusive",
            ));
        }
    }
    for (name, probe, single_success) in [
        ("livenessProbe", &container.liveness_probe, true),
        ("readinessProbe", &container.readiness_probe, false),
        ("startupProbe", &container.startup_probe, true),
    ] {
        if let Some(probe) = probe {
            validate_probe(probe, &format!("{path}.{name}"), single_success, causes);
        }
    }
    if let Some(context) = container.security_context.as_ref() {
        for (field, id) in [
            ("runAsUser", context.run_as_user),
            ("runAsGroup", context.run_as_group),
        ] {
            id_in_range(&format!("{path}.securityContext.{field}"), id, causes);
        }
    }
}

/// Probe timings are non-negative; liveness and startup probes succeed after one success.
fn validate_probe(probe: &Probe, path: &str, single_success: bool, causes: &mut Vec<Cause>) {
    for (field, value) in [
        ("initialDelaySeconds", probe.initial_delay_seconds),
        ("timeoutSeconds", probe.timeout_seconds),
        ("periodSeconds", probe.period_seconds),
        ("successThreshold", probe.success_threshold),
        ("failureThreshold", probe.failure_threshold),
    ] {
        if let Some(value) = value.filter(|v| *v < 0) {
            causes.push(Cause::invalid(
                format!("{path}.{field}"),
                value,
                "must be greater than or equal to 0",
            ));
        }
    }
    if single_success && let Some(threshold) = probe.success_threshold.filter(|t| *t != 1) {
        causes.push(Cause::invalid(
            format!("{path}.successThreshold"),
            threshold,
            "must be 1",
        ));
    }
    if let Some(grace) = probe.termination_grace_period_seconds.filter(|g| *g <= 0) {
        causes.push(Cause::invalid(
            format!("{path}.terminationGracePeriodSeconds"),
            grace,
            "must be greater than 0",
        ));
    }
}

fn validate_toleration(toleration: &Toleration, path: &str, causes: &mut Vec<Cause>) {
    let operator = toleration.operator.as_deref().unwrap_or("Equal");
    if !TOLERATION_OPERATORS.contains(&operator) {
        causes.push(Cause::unsupported(
            format!("{path}.operator"),
            operator,
            TOLERATION_OPERATORS,
        ));
    }
    if operator == "Exists" && toleration.value.as_deref().is_some_and(|v| !v.is_empty()) {
        causes.push(Cause::invalid(
            format!("{path}.operator"),
            operator,
            "value must be empty when `operator` is 'Exists'",
        ));
    }
    let effect = toleration.effect.as_deref().unwrap_or_default();
    if !effect.is_empty() && !TAINT_EFFECTS.contains(&effect) {
        causes.push(Cause::unsupported(
            format!("{path}.effect"),
            effect,
            TAINT_EFFECTS,
        ));
    }
    if toleration.toleration_seconds.is_some() && effect != "NoExecute" {
        causes.push(Cause::invalid(
            format!("{path}.effect"),
            effect,
            "effect must be 'NoExecute' when `tolerationSeconds` is set",
        ));
    }
}

fn validate_affinity_weights(spec: &PodSpec, path: &str, causes: &mut Vec<Cause>) {
    let Some(affinity) = spec.affinity.as_ref() else {
        return;
    };
    let node = affinity.node_affinity.as_ref().and_then(|a| {
        let terms = a
            .preferred_during_scheduling_ignored_during_execution
            .as_ref()?;
        Some(terms.iter().map(|t| t.weight).collect())
    });
    let pod_terms = |terms: Option<&Vec<WeightedPodAffinityTerm>>| {
        terms.map(|terms| terms.iter().map(|t| t.weight).collect::<Vec<_>>())
    };
    let pod = affinity.pod_affinity.as_ref().and_then(|a| {
        pod_terms(
            a.preferred_during_scheduling_ignored_during_execution
                .as_ref(),
        )
    });
    let anti = affinity.pod_anti_affinity.as_ref().and_then(|a| {
        pod_terms(
            a.preferred_during_scheduling_ignored_during_execution
                .as_ref(),
        )
    });
    for (kind, weights) in [
        ("nodeAffinity", node),
        ("podAffinity", pod),
        ("podAntiAffinity", anti),
    ] {
        for (i, weight) in weights.into_iter().flatten().enumerate() {
            if !(1..=100).contains(&weight) {
                causes.push(Cause::invalid(
                    format!("{path}.affinity.{kind}.preferredDuringSchedulingIgnoredDuringExecution[{i}].weight"),
                    weight,
                    "must be in the range 1-100",
                ));
            }
        }
    }
}

/// User and group IDs fit a non-negative 32-bit integer.
fn id_in_range(field: &str, id: Option<i64>, causes: &mut Vec<Cause>) {
    if let Some(id) = id.filter(|id| !(0..=MAX_INT32).contains(id)) {
        causes.push(Cause::invalid(
            field,
            id,
            "must be between 0 and 2147483647, inclusive",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn check(spec: Value) -> Vec<String> {
        let spec: PodSpec = serde_json::from_value(spec).unwrap();
        let mut causes = Vec::new();
        validate(&spec, "spec", &mut causes);
        causes
            .into_iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect()
    }

    #[test]
    fn numbers_out_of_kubernetes_bounds_are_named() {
        let causes = check(json!({
            "activeDeadlineSeconds": 0,
            "securityContext": {"runAsUser": -1, "supplementalGroups": [4294967296i64]},
            "topologySpreadConstraints": [{"maxSkew": 0, "topologyKey": "k", "whenUnsatisfiable": "DoNotSchedule"}],
            "containers": [{"name": "a", "ports": [{"containerPort": 80, "hostPort": 70000}],
                "livenessProbe": {"periodSeconds": -1, "successThreshold": 2, "terminationGracePeriodSeconds": 0}}],
        }));
        assert_eq!(
            causes,
            [
                "spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive",
                "spec.securityContext.runAsUser: Invalid value: -1: must be between 0 and 2147483647, inclusive",
                "spec.securityContext.supplementalGroups: Invalid value: 4294967296: must be between 0 and 2147483647, inclusive",
                "spec.topologySpreadConstraints[0].maxSkew: Invalid value: 0: must be greater than zero",
                "spec.containers[0].ports[0].hostPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
                "spec.containers[0].livenessProbe.periodSeconds: Invalid value: -1: must be greater than or equal to 0",
                "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
                "spec.containers[0].livenessProbe.terminationGracePeriodSeconds: Invalid value: 0: must be greater than 0",
            ]
        );
    }

    #[test]
    fn toleration_seconds_need_the_no_execute_effect() {
        let causes = check(json!({"containers": [{"name": "a"}], "tolerations": [
            {"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 9223372036854775807i64},
            {"key": "k", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 5},
            {"key": "k", "operator": "Above", "value": "v", "effect": "Sometimes"},
        ]}));
        assert_eq!(
            causes,
            [
                "spec.tolerations[1].effect: Invalid value: \"NoSchedule\": effect must be 'NoExecute' when `tolerationSeconds` is set",
                "spec.tolerations[2].operator: Unsupported value: \"Above\": supported values: \"Equal\", \"Exists\"",
                "spec.tolerations[2].effect: Unsupported value: \"Sometimes\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"",
            ]
        );
    }

    #[test]
    fn a_spec_within_bounds_passes() {
        assert!(
            check(
                json!({"activeDeadlineSeconds": 2147483647, "containers": [{"name": "a",
                "readinessProbe": {"periodSeconds": 0, "successThreshold": 3}}],
                "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 100, "preference": {}}]}}})
            )
            .is_empty()
        );
    }
}
