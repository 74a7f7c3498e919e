//! Container probes and lifecycle hooks: Kubernetes' defaults (`SetDefaults_Probe`,
//! `SetDefaults_HTTPGetAction`) and the rules on their handlers (`validateHandler`,
//! `validateLifecycle`); the probes' numeric bounds are in `bounds`.

use k8s_openapi::api::core::v1::{
    Container, ExecAction, HTTPGetAction, LifecycleHandler, Probe, TCPSocketAction,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::api::error::Cause;
use crate::api::kinds::meta::dns_label_error;

const SCHEMES: &[&str] = &["HTTP", "HTTPS"];

/// The container's probes.
fn probes_mut(container: &mut Container) -> [&mut Option<Probe>; 3] {
    [
        &mut container.liveness_probe,
        &mut container.readiness_probe,
        &mut container.startup_probe,
    ]
}

/// Fills what Kubernetes fills: timeout 1 s, period 10 s, success 1, failure 3; an `httpGet`
/// path of `/` and scheme `HTTP`.
pub fn default(container: &mut Container) {
    for probe in probes_mut(container).into_iter().flatten() {
        for (field, default) in [
            (&mut probe.timeout_seconds, 1),
            (&mut probe.period_seconds, 10),
            (&mut probe.success_threshold, 1),
            (&mut probe.failure_threshold, 3),
        ] {
            if field.is_none_or(|v| v == 0) {
                *field = Some(default);
            }
        }
        if let Some(http) = probe.http_get.as_mut() {
            if http.path.as_deref().is_none_or(str::is_empty) {
                http.path = Some("/".into());
            }
            http.scheme.get_or_insert_with(|| "HTTP".into());
        }
    }
}

/// Each probe names exactly one handler, with a command, a valid port and scheme.
pub fn validate(container: &Container, path: &str, causes: &mut Vec<Cause>) {
    let probes = [
        ("livenessProbe", &container.liveness_probe),
        ("readinessProbe", &container.readiness_probe),
        ("startupProbe", &container.startup_probe),
    ];
    for (name, probe) in probes {
        let Some(probe) = probe else { continue };
        let field = format!("{path}.{name}");
        let handlers = [
            probe.exec.is_some(),
            probe.http_get.is_some(),
            probe.tcp_socket.is_some(),
            probe.grpc.is_some(),
        ];
        count_handlers(&handlers, &field, causes);
        if name == "readinessProbe" && probe.termination_grace_period_seconds.is_some() {
            causes.push(Cause::invalid(
                format!("{field}.terminationGracePeriodSeconds"),
                probe.termination_grace_period_seconds.unwrap_or_default(),
                "must not be set for readinessProbes",
            ));
        }
        let actions = Actions {
            exec: probe.exec.as_ref(),
            http_get: probe.http_get.as_ref(),
            tcp_socket: probe.tcp_socket.as_ref(),
        };
        validate_handler(&actions, &field, causes);
    }
}

/// The actions a probe and a lifecycle hook have in common.
struct Actions<'a> {
    exec: Option<&'a ExecAction>,
    http_get: Option<&'a HTTPGetAction>,
    tcp_socket: Option<&'a TCPSocketAction>,
}

/// Exactly one of `handlers` is set.
fn count_handlers(handlers: &[bool], field: &str, causes: &mut Vec<Cause>) {
    match handlers.iter().filter(|h| **h).count() {
        0 => causes.push(Cause {
            field: field.to_string(),
            reason: "FieldValueRequired",
            message: "Required value: must specify a handler type".into(),
        }),
        1 => {}
        _ => causes.push(Cause::forbidden(
            field.to_string(),
            "may not specify more than 1 handler type",
        )),
    }
}

/// A container's `postStart` and `preStop` hooks: one handler each, valid as a probe's, and a
/// `sleep` within the pod's grace period; init containers have none.
pub fn validate_lifecycle(
    container: &Container,
    path: &str,
    init: bool,
    grace: Option<i64>,
    causes: &mut Vec<Cause>,
) {
    let Some(lifecycle) = &container.lifecycle else {
        return;
    };
    if init {
        causes.push(Cause::forbidden(
            format!("{path}.lifecycle"),
            "may not be set for init containers without restartPolicy=Always",
        ));
        return;
    }
    let hooks = [
        ("postStart", &lifecycle.post_start),
        ("preStop", &lifecycle.pre_stop),
    ];
    for (name, hook) in hooks {
        let Some(hook) = hook else { continue };
        let field = format!("{path}.lifecycle.{name}");
        validate_hook(hook, &field, grace, causes);
    }
}

fn validate_hook(
    hook: &LifecycleHandler,
    field: &str,
    grace: Option<i64>,
    causes: &mut Vec<Cause>,
) {
    let handlers = [
        hook.exec.is_some(),
        hook.http_get.is_some(),
        hook.tcp_socket.is_some(),
        hook.sleep.is_some(),
    ];
    count_handlers(&handlers, field, causes);
    let actions = Actions {
        exec: hook.exec.as_ref(),
        http_get: hook.http_get.as_ref(),
        tcp_socket: hook.tcp_socket.as_ref(),
    };
    validate_handler(&actions, field, causes);
    if let (Some(sleep), Some(grace)) = (&hook.sleep, grace)
        && !(0..=grace).contains(&sleep.seconds)
    {
        causes.push(Cause::invalid(
            format!("{field}.sleep.seconds"),
            sleep.seconds,
            &format!("must be non-negative and less than terminationGracePeriodSeconds ({grace})"),
        ));
    }
}

fn validate_handler(actions: &Actions, field: &str, causes: &mut Vec<Cause>) {
    if let Some(exec) = actions.exec
        && exec.command.as_ref().is_none_or(Vec::is_empty)
    {
        causes.push(Cause::required(format!("{field}.exec.command")));
    }
    if let Some(http) = actions.http_get {
        validate_port(&http.port, &format!("{field}.httpGet.port"), causes);
        if let Some(scheme) = http.scheme.as_deref().filter(|s| !SCHEMES.contains(s)) {
            causes.push(Cause::unsupported(
                format!("{field}.httpGet.scheme"),
                scheme,
                SCHEMES,
            ));
        }
        for (i, header) in http.http_headers.iter().flatten().enumerate() {
            if http::HeaderName::from_bytes(header.name.as_bytes()).is_err() {
                causes.push(Cause::invalid(
                    format!("{field}.httpGet.httpHeaders[{i}].name"),
                    &header.name,
                    "a valid HTTP header must consist of alphanumeric characters or '-'",
                ));
            }
        }
    }
    if let Some(tcp) = actions.tcp_socket {
        validate_port(&tcp.port, &format!("{field}.tcpSocket.port"), causes);
    }
}

/// A port number in 1..=65535, or a valid port name (`ValidatePortNumOrName`).
fn validate_port(port: &IntOrString, field: &str, causes: &mut Vec<Cause>) {
    match port {
        IntOrString::Int(number) if !(1..=65535).contains(number) => causes.push(Cause::invalid(
            field,
            *number,
            "must be between 1 and 65535, inclusive",
        )),
        IntOrString::String(name) if name.len() > 15 || dns_label_error(name).is_some() => causes
            .push(Cause::invalid(
                field,
                name,
                "must contain at most 15 characters, only lower-case letters, digits and '-'",
            )),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn container(probes: serde_json::Value) -> Container {
        let mut container = json!({"name": "c", "image": "c.wasm"});
        container
            .as_object_mut()
            .unwrap()
            .extend(probes.as_object().unwrap().clone());
        serde_json::from_value(container).unwrap()
    }

    fn causes(container: &Container) -> Vec<String> {
        let mut causes = Vec::new();
        validate(container, "spec.containers[0]", &mut causes);
        causes
            .into_iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect()
    }

    #[test]
    fn probes_get_kubernetes_defaults() {
        let mut c =
            container(json!({"readinessProbe": {"httpGet": {"port": 80}, "periodSeconds": 0}}));
        default(&mut c);
        let probe = c.readiness_probe.unwrap();
        assert_eq!(
            (
                probe.timeout_seconds,
                probe.period_seconds,
                probe.success_threshold,
                probe.failure_threshold
            ),
            (Some(1), Some(10), Some(1), Some(3))
        );
        let http = probe.http_get.unwrap();
        assert_eq!(
            (http.path.as_deref(), http.scheme.as_deref()),
            (Some("/"), Some("HTTP"))
        );
    }

    #[test]
    fn a_probe_needs_exactly_one_valid_handler() {
        let c = container(json!({
            "livenessProbe": {"periodSeconds": 3},
            "readinessProbe": {"tcpSocket": {"port": 0}, "exec": {"command": []}, "terminationGracePeriodSeconds": 5},
            "startupProbe": {"httpGet": {"port": "Not_A_Name", "scheme": "FTP", "httpHeaders": [{"name": "bad header", "value": "x"}]}},
        }));
        assert_eq!(
            causes(&c),
            [
                "spec.containers[0].livenessProbe: Required value: must specify a handler type",
                "spec.containers[0].readinessProbe: Forbidden: may not specify more than 1 handler type",
                "spec.containers[0].readinessProbe.terminationGracePeriodSeconds: Invalid value: 5: must not be set for readinessProbes",
                "spec.containers[0].readinessProbe.exec.command: Required value",
                "spec.containers[0].readinessProbe.tcpSocket.port: Invalid value: 0: must be between 1 and 65535, inclusive",
                "spec.containers[0].startupProbe.httpGet.port: Invalid value: \"Not_A_Name\": must contain at most 15 characters, only lower-case letters, digits and '-'",
                "spec.containers[0].startupProbe.httpGet.scheme: Unsupported value: \"FTP\": supported values: \"HTTP\", \"HTTPS\"",
                "spec.containers[0].startupProbe.httpGet.httpHeaders[0].name: Invalid value: \"bad header\": a valid HTTP header must consist of alphanumeric characters or '-'",
            ]
        );
        let fine = container(
            json!({"livenessProbe": {"httpGet": {"port": "web", "path": "/healthz"}},
            "readinessProbe": {"exec": {"command": ["check.wasm"]}}}),
        );
        assert!(causes(&fine).is_empty());
    }

    #[test]
    fn a_lifecycle_hook_needs_one_valid_handler_and_a_sleep_within_the_grace_period() {
        let c = container(json!({"lifecycle": {
            "postStart": {},
            "preStop": {"sleep": {"seconds": 45}, "httpGet": {"port": 0}},
        }}));
        let mut found = Vec::new();
        validate_lifecycle(&c, "spec.containers[0]", false, Some(30), &mut found);
        let found: Vec<String> = found
            .into_iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        assert_eq!(
            found,
            [
                "spec.containers[0].lifecycle.postStart: Required value: must specify a handler type",
                "spec.containers[0].lifecycle.preStop: Forbidden: may not specify more than 1 handler type",
                "spec.containers[0].lifecycle.preStop.httpGet.port: Invalid value: 0: must be between 1 and 65535, inclusive",
                "spec.containers[0].lifecycle.preStop.sleep.seconds: Invalid value: 45: must be non-negative and less than terminationGracePeriodSeconds (30)",
            ]
        );
        let mut on_init = Vec::new();
        validate_lifecycle(&c, "spec.initContainers[0]", true, Some(30), &mut on_init);
        assert_eq!(on_init.len(), 1);
        assert_eq!(on_init[0].field, "spec.initContainers[0].lifecycle");
    }
}
