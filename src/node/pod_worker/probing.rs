//! The probes of one running container instance, as the kubelet's prober runs them: the startup
//! probe first, then liveness and readiness side by side, each on its own period. Readiness sets
//! the container's `ready`; a liveness or startup probe that fails its threshold kills the
//! instance (events `Unhealthy`, `Killing`), and the restart policy decides what comes next.

use std::time::Duration;

use k8s_openapi::api::core::v1::Container;
use tokio_util::sync::CancellationToken;

use super::Worker;
use super::containers::Slot;
use crate::events::EventType;
use crate::node::container_spec::image_path;
use crate::node::logs::ContainerLog;
use crate::node::probes::{self, Check, ProbeKind, ProbeSpec, Tally};

/// Output of an `exec` probe kept for its failure message.
const EXEC_OUTPUT_BYTES: usize = 16 * 1024;

/// Which probes a container has (what its `ready` and `started` are at its start).
pub(super) struct Probed {
    pub startup: bool,
    pub readiness: bool,
}

impl Probed {
    pub fn of(container: &Container) -> Probed {
        Probed {
            startup: container.startup_probe.is_some(),
            readiness: container.readiness_probe.is_some(),
        }
    }
}

/// What to do when a probe's verdict turns.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

impl Worker {
    /// Probes app container `slot` until `instance` ends (or a probe ends it).
    pub(super) async fn probe(
        &self,
        container: &Container,
        slot: Slot,
        instance: &CancellationToken,
    ) {
        let Slot::App(_) = slot else { return };
        let spec = |kind| match ProbeSpec::of(container, kind)? {
            Ok(spec) => Some(spec),
            Err(why) => {
                let message = format!("{} probe cannot run: {why}", kind.title());
                self.event(
                    Some(&container.name),
                    EventType::Warning,
                    "Unhealthy",
                    &message,
                );
                None
            }
        };
        let (startup, liveness, readiness) = (
            spec(ProbeKind::Startup),
            spec(ProbeKind::Liveness),
            spec(ProbeKind::Readiness),
        );
        if let Some(startup) = startup {
            let mut started = false;
            self.run_probe(&startup, container, instance, |success| {
                started = success;
                if !success {
                    self.kill(container, ProbeKind::Startup, instance);
                }
                Flow::Stop
            })
            .await;
            if !started {
                return;
            }
            let ready = container.readiness_probe.is_none();
            self.update(|r| {
                let record = slot.get(r);
                record.started = true;
                record.ready = ready;
            });
        }
        let live = async {
            let Some(liveness) = &liveness else { return };
            self.run_probe(liveness, container, instance, |success| {
                if success {
                    return Flow::Continue;
                }
                self.kill(container, ProbeKind::Liveness, instance);
                Flow::Stop
            })
            .await;
        };
        let ready = async {
            let Some(readiness) = &readiness else { return };
            self.run_probe(readiness, container, instance, |success| {
                self.update(|r| slot.get(r).ready = success);
                Flow::Continue
            })
            .await;
        };
        tokio::join!(live, ready);
    }

    /// Runs `spec` every period until `instance` ends or `turned` says stop, calling it each
    /// time the results add up to a new verdict.
    async fn run_probe(
        &self,
        spec: &ProbeSpec,
        container: &Container,
        instance: &CancellationToken,
        mut turned: impl FnMut(bool) -> Flow,
    ) {
        if !pause(spec.initial_delay, instance).await {
            return;
        }
        let mut tally = Tally::new();
        loop {
            let result = tokio::select! {
                result = self.check(spec, container) => result,
                () = instance.cancelled() => return,
            };
            if let Err(why) = &result {
                let message = format!("{} probe failed: {why}", spec.kind.title());
                self.event(
                    Some(&container.name),
                    EventType::Warning,
                    "Unhealthy",
                    &message,
                );
            }
            if let Some(verdict) = tally.record(result.is_ok(), spec)
                && turned(verdict) == Flow::Stop
            {
                return;
            }
            if !pause(spec.period, instance).await {
                return;
            }
        }
    }

    /// Ends the instance for its failed `kind` probe, saying so.
    fn kill(&self, container: &Container, kind: ProbeKind, instance: &CancellationToken) {
        let message = format!(
            "Container {} failed {} probe, will be restarted",
            container.name,
            kind.title().to_ascii_lowercase()
        );
        self.event(
            Some(&container.name),
            EventType::Normal,
            "Killing",
            &message,
        );
        instance.cancel();
    }

    /// One probe of the container; `Err` says what failed.
    async fn check(&self, spec: &ProbeSpec, container: &Container) -> Result<(), String> {
        self.run_check(&spec.check, container, spec.timeout).await
    }

    /// Runs `check` (of a probe or a hook) against the container within `timeout`.
    pub(super) async fn run_check(
        &self,
        check: &Check,
        container: &Container,
        timeout: Duration,
    ) -> Result<(), String> {
        let pod = &self.shared.net.address;
        let from = self
            .shared
            .net
            .node()
            .node_loopback()
            .ok_or("the node's network is not up")?;
        match check {
            Check::Http {
                port,
                path,
                headers,
            } => probes::http_get(from, pod.on_host(*port), path, headers, timeout).await,
            Check::Tcp { port } => probes::tcp_connect(from, pod.on_host(*port), timeout).await,
            Check::Exec { command } => self.exec(container, command, timeout).await,
        }
    }

    /// An `exec` probe: `command[0]` names a component (`*.wasm`, a path or `file://` URL) run
    /// with the rest as arguments, or else the container's own component is run with `command`
    /// as its argv — in the container's sandbox (its volumes, environment, limits, the pod's
    /// network). Exit code 0 is success.
    async fn exec(
        &self,
        container: &Container,
        command: &[String],
        timeout: Duration,
    ) -> Result<(), String> {
        let names_component = command[0].ends_with(".wasm") || command[0].starts_with("file://");
        let image = if names_component {
            image_path(&command[0])
        } else {
            image_path(container.image.as_deref().unwrap_or_default())
        };
        let loaded = self
            .node
            .runtime
            .load(&image)
            .await
            .map_err(|e| format!("exec probe: {e}"))?;
        if loaded.component.is_http() {
            return Err(format!(
                "exec probe: {} is an HTTP component, not a command",
                image.display()
            ));
        }
        let output = ContainerLog::new(EXEC_OUTPUT_BYTES);
        let mut run = self.container_run(container, output.clone()).await?;
        run.name = command[0].clone();
        run.args = command[1..].to_vec();
        run.ports = Vec::new();
        let stop = CancellationToken::new();
        let exit = tokio::select! {
            exit = self.node.runtime.run(&loaded.component, run, stop.clone()) => exit,
            () = tokio::time::sleep(timeout) => {
                stop.cancel();
                return Err(format!("command {command:?} timed out after {timeout:?}"));
            }
        };
        if exit.code == 0 {
            return Ok(());
        }
        let printed: Vec<String> = output
            .lines(None, None)
            .into_iter()
            .map(|l| l.text)
            .collect();
        Err(format!(
            "command {command:?} exited with {}: {}",
            exit.code,
            printed.join("\n")
        ))
    }
}

/// Waits `delay` unless `instance` ends first; false when it did.
async fn pause(delay: Duration, instance: &CancellationToken) -> bool {
    tokio::select! {
        () = tokio::time::sleep(delay) => true,
        () = instance.cancelled() => false,
    }
}
