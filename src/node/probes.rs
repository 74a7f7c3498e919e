//! Container probes as the kubelet runs them: the spec with Kubernetes' defaults, the
//! threshold counting that turns results into a verdict, and the `httpGet` and `tcpSocket`
//! checks (an `exec` probe runs a command component in the pod; the pod worker does that);
//! and `preStop` hooks, which run the same handlers or sleep.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::{Container, ExecAction, HTTPGetAction, Probe, TCPSocketAction};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::api::discovery::KUBERNETES_VERSION;

/// Which of a container's probes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeKind {
    Startup,
    Liveness,
    Readiness,
}

impl ProbeKind {
    /// How the kubelet names it in events (`Liveness probe failed: ...`).
    pub fn title(self) -> &'static str {
        match self {
            ProbeKind::Startup => "Startup",
            ProbeKind::Liveness => "Liveness",
            ProbeKind::Readiness => "Readiness",
        }
    }
}

/// What a probe checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    Http {
        port: u16,
        path: String,
        headers: Vec<(String, String)>,
    },
    Tcp {
        port: u16,
    },
    Exec {
        command: Vec<String>,
    },
}

/// A probe with Kubernetes' defaults filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeSpec {
    pub kind: ProbeKind,
    pub check: Check,
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

impl ProbeSpec {
    /// The container's probe of `kind`; `Err` says why it cannot run (a port name the
    /// container does not declare, no handler, an HTTPS check).
    pub fn of(container: &Container, kind: ProbeKind) -> Option<Result<ProbeSpec, String>> {
        let probe = match kind {
            ProbeKind::Startup => container.startup_probe.as_ref(),
            ProbeKind::Liveness => container.liveness_probe.as_ref(),
            ProbeKind::Readiness => container.readiness_probe.as_ref(),
        }?;
        Some(check(container, probe).map(|check| ProbeSpec {
            kind,
            check,
            initial_delay: seconds(probe.initial_delay_seconds, 0),
            period: seconds(probe.period_seconds, 10),
            timeout: seconds(probe.timeout_seconds, 1),
            success_threshold: threshold(probe.success_threshold, 1),
            failure_threshold: threshold(probe.failure_threshold, 3),
        }))
    }
}

/// A count Kubernetes defaults when unset or 0.
fn seconds(value: Option<i32>, default: u64) -> Duration {
    let value = value.filter(|v| *v > 0).map_or(default, |v| v as u64);
    Duration::from_secs(value)
}

fn threshold(value: Option<i32>, default: u32) -> u32 {
    value.filter(|v| *v > 0).map_or(default, |v| v as u32)
}

/// What a container's `preStop` hook does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hook {
    Sleep(Duration),
    Check(Check),
}

impl Hook {
    /// The container's `preStop` hook; `Err` says why it cannot run.
    pub fn pre_stop(container: &Container) -> Option<Result<Hook, String>> {
        let hook = container.lifecycle.as_ref()?.pre_stop.as_ref()?;
        if let Some(sleep) = &hook.sleep {
            let seconds = u64::try_from(sleep.seconds).unwrap_or(0);
            return Some(Ok(Hook::Sleep(Duration::from_secs(seconds))));
        }
        if hook.tcp_socket.is_some() {
            // As the kubelet: the API takes it, nothing runs it.
            return Some(Err("a tcpSocket lifecycle hook is not supported".into()));
        }
        let check = handler(container, hook.http_get.as_ref(), None, hook.exec.as_ref());
        Some(
            check
                .unwrap_or_else(|| Err("the hook names no handler (httpGet, exec or sleep)".into()))
                .map(Hook::Check),
        )
    }
}

fn check(container: &Container, probe: &Probe) -> Result<Check, String> {
    let (http, tcp, exec) = (&probe.http_get, &probe.tcp_socket, &probe.exec);
    handler(container, http.as_ref(), tcp.as_ref(), exec.as_ref())
        .unwrap_or_else(|| Err("the probe names no handler (httpGet, tcpSocket or exec)".into()))
}

/// What a probe's or hook's handler checks; `None` when it names none.
fn handler(
    container: &Container,
    http_get: Option<&HTTPGetAction>,
    tcp_socket: Option<&TCPSocketAction>,
    exec: Option<&ExecAction>,
) -> Option<Result<Check, String>> {
    let checked = if let Some(http) = http_get {
        http_check(container, http)
    } else if let Some(tcp) = tcp_socket {
        port(container, &tcp.port).map(|port| Check::Tcp { port })
    } else {
        let command = exec?.command.clone().unwrap_or_default();
        if command.is_empty() {
            Err("the exec handler has no command".into())
        } else {
            Ok(Check::Exec { command })
        }
    };
    Some(checked)
}

fn http_check(container: &Container, http: &HTTPGetAction) -> Result<Check, String> {
    if http.scheme.as_deref().is_some_and(|s| s != "HTTP") {
        return Err("HTTPS is not supported by this node".into());
    }
    let headers = http.http_headers.iter().flatten();
    Ok(Check::Http {
        port: port(container, &http.port)?,
        path: http
            .path
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or("/".into()),
        headers: headers.map(|h| (h.name.clone(), h.value.clone())).collect(),
    })
}

/// A handler's port: a number, or the name of one of the container's ports.
fn port(container: &Container, port: &IntOrString) -> Result<u16, String> {
    let number = match port {
        IntOrString::Int(number) => Some(*number),
        IntOrString::String(name) => container
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .map(|p| p.container_port),
    };
    number
        .and_then(|n| u16::try_from(n).ok())
        .filter(|n| *n != 0)
        .ok_or_else(|| format!("the port {port:?} is not a port of the container"))
}

/// Consecutive results, and the verdict they add up to under the thresholds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tally {
    /// The verdict so far (`None` before any result turns it).
    pub verdict: Option<bool>,
    last: Option<bool>,
    run: u32,
}

impl Tally {
    pub fn new() -> Tally {
        Tally {
            verdict: None,
            last: None,
            run: 0,
        }
    }

    /// Counts one result; returns the verdict when this result turned it.
    pub fn record(&mut self, success: bool, spec: &ProbeSpec) -> Option<bool> {
        self.run = if self.last == Some(success) {
            self.run.saturating_add(1)
        } else {
            1
        };
        self.last = Some(success);
        let needed = if success {
            spec.success_threshold
        } else {
            spec.failure_threshold
        };
        let turned = self.run >= needed && self.verdict != Some(success);
        if turned {
            self.verdict = Some(success);
        }
        turned.then_some(success)
    }
}

impl Default for Tally {
    fn default() -> Self {
        Tally::new()
    }
}

/// An `httpGet` probe of `port` at `host` from the node's own address `from`: success is a
/// status of 200 to 399 within `timeout`; `Err` says what failed.
pub async fn http_get(
    from: Ipv4Addr,
    host: SocketAddr,
    path: &str,
    headers: &[(String, String)],
    timeout: Duration,
) -> Result<(), String> {
    let attempt = async {
        let stream = connect(from, host).await?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        let (major, minor) = KUBERNETES_VERSION;
        let mut request = http::Request::get(path)
            .header(http::header::HOST, host.to_string())
            .header(
                http::header::USER_AGENT,
                format!("kube-probe/{major}.{minor}"),
            )
            .header(http::header::ACCEPT, "*/*");
        for (name, value) in headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let request = request
            .body(Empty::<bytes::Bytes>::new())
            .map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        if status.is_success() || status.is_redirection() {
            Ok(())
        } else {
            Err(format!(
                "HTTP probe failed with statuscode: {}",
                status.as_u16()
            ))
        }
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "Get \"http://{host}{path}\": context deadline exceeded"
            ))
        })
}

/// A `tcpSocket` probe: success when a connection opens within `timeout`.
pub async fn tcp_connect(
    from: Ipv4Addr,
    host: SocketAddr,
    timeout: Duration,
) -> Result<(), String> {
    tokio::time::timeout(timeout, connect(from, host))
        .await
        .unwrap_or_else(|_| Err(format!("dial tcp {host}: i/o timeout")))
        .map(drop)
}

/// A connection from the node's address (which the pod's guests accept) to `host`.
async fn connect(from: Ipv4Addr, host: SocketAddr) -> Result<tokio::net::TcpStream, String> {
    let socket = tokio::net::TcpSocket::new_v4().map_err(|e| e.to_string())?;
    socket
        .bind(SocketAddr::from((from, 0)))
        .map_err(|e| e.to_string())?;
    socket
        .connect(host)
        .await
        .map_err(|e| format!("dial tcp {host}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn container(probe: serde_json::Value) -> Container {
        serde_json::from_value(
            json!({"name": "c", "ports": [{"name": "web", "containerPort": 8080}],
            "livenessProbe": probe}),
        )
        .unwrap()
    }

    #[test]
    fn a_probe_gets_kubernetes_defaults_and_its_port_by_name() {
        let spec = ProbeSpec::of(
            &container(json!({"httpGet": {"port": "web"}})),
            ProbeKind::Liveness,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            spec.check,
            Check::Http {
                port: 8080,
                path: "/".into(),
                headers: vec![]
            }
        );
        assert_eq!(
            (
                spec.period,
                spec.timeout,
                spec.success_threshold,
                spec.failure_threshold
            ),
            (Duration::from_secs(10), Duration::from_secs(1), 1, 3)
        );
        assert_eq!(spec.initial_delay, Duration::ZERO);
        assert!(ProbeSpec::of(&container(json!({})), ProbeKind::Readiness).is_none());
    }

    #[test]
    fn probes_that_cannot_run_say_why() {
        for (probe, why) in [
            (
                json!({"tcpSocket": {"port": "nope"}}),
                "not a port of the container",
            ),
            (json!({"httpGet": {"port": 80, "scheme": "HTTPS"}}), "HTTPS"),
            (json!({"exec": {"command": []}}), "no command"),
            (json!({"periodSeconds": 3}), "no handler"),
        ] {
            let error = ProbeSpec::of(&container(probe), ProbeKind::Liveness)
                .unwrap()
                .unwrap_err();
            assert!(error.contains(why), "{error}");
        }
    }

    #[test]
    fn the_verdict_turns_only_after_threshold_results_in_a_row() {
        let mut spec = ProbeSpec::of(
            &container(json!({"tcpSocket": {"port": 1}})),
            ProbeKind::Liveness,
        )
        .unwrap()
        .unwrap();
        spec.success_threshold = 2;
        let mut tally = Tally::new();
        assert_eq!(tally.record(true, &spec), None);
        assert_eq!(tally.record(true, &spec), Some(true));
        assert_eq!(tally.record(true, &spec), None, "already ready");
        assert_eq!(tally.record(false, &spec), None);
        assert_eq!(tally.record(true, &spec), None, "a success breaks the run");
        assert_eq!(tally.record(false, &spec), None);
        assert_eq!(tally.record(false, &spec), None);
        assert_eq!(tally.record(false, &spec), Some(false));
        assert_eq!(tally.verdict, Some(false));
    }
}
