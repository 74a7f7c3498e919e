//! A pod's containers on this node: init containers in order, then app containers, each
//! loaded, run, and restarted with back-off as the restart policy says.

use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::core::v1::Container;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::probing::Probed;
use super::{LogPair, Worker};
use crate::api::objects::now;
use crate::events::EventType;
use crate::node::container_spec;
use crate::node::logs::{ContainerLog, LogFiles, Rotation};
use crate::node::pod_status::{
    ContainerRecord, ContainerState, PodRecord, Termination, should_restart,
};
use crate::node::runtime::{LoadSource, Loaded};
use crate::node::sandbox::ExitReason;

impl Worker {
    pub(super) async fn run_containers(self: &Arc<Self>, cancel: CancellationToken) {
        let spec = self.pod.spec.clone().unwrap_or_default();
        for volume in spec.volumes.iter().flatten() {
            let dir = container_spec::volume_dir(&self.pod_dir(), &volume.name);
            let created =
                tokio::task::spawn_blocking(move || crate::node::disk::create_private_dir(&dir))
                    .await
                    .unwrap_or_else(|e| Err(std::io::Error::other(e)));
            if let Err(error) = created {
                self.event(
                    None,
                    EventType::Warning,
                    "FailedMount",
                    &format!(
                        "MountVolume.SetUp failed for volume \"{}\": {error}",
                        volume.name
                    ),
                );
                return;
            }
        }
        for (index, container) in spec.init_containers.iter().flatten().enumerate() {
            if !self.run_init(index, container, &cancel).await {
                return;
            }
        }
        self.update(|r| r.initialized = true);
        let mut running = JoinSet::new();
        for (index, container) in spec.containers.iter().enumerate() {
            let this = self.clone();
            let container = container.clone();
            let cancel = cancel.clone();
            running.spawn(async move { this.run_app(index, &container, &cancel).await });
        }
        while running.join_next().await.is_some() {}
    }

    /// Runs init container `index` until it succeeds; false when the pod cannot go on.
    async fn run_init(
        &self,
        index: usize,
        container: &Container,
        cancel: &CancellationToken,
    ) -> bool {
        let Some(loaded) = self.load(container, Slot::Init(index), cancel).await else {
            return false;
        };
        let mut failures: u32 = 0;
        loop {
            let Some(termination) = self
                .run_once(container, Slot::Init(index), &loaded, cancel)
                .await
            else {
                return false;
            };
            let code = termination.exit_code;
            let policy = self.restart_policy();
            if code == 0 {
                return true;
            }
            if policy == "Never" {
                return false;
            }
            if !self
                .back_off(container, Slot::Init(index), termination, failures, cancel)
                .await
            {
                return false;
            }
            failures = failures.saturating_add(1);
        }
    }

    async fn run_app(&self, index: usize, container: &Container, cancel: &CancellationToken) {
        let Some(loaded) = self.load(container, Slot::App(index), cancel).await else {
            return;
        };
        let mut failures: u32 = 0;
        loop {
            let started = Instant::now();
            let Some(termination) = self
                .run_once(container, Slot::App(index), &loaded, cancel)
                .await
            else {
                return;
            };
            let policy = self.restart_policy();
            // A terminating pod's containers end for good (an HTTP container drains and exits).
            if self.terminating() || !should_restart(&policy, termination.exit_code) {
                return;
            }
            // A container that stayed up well past the longest back-off starts over from no wait.
            if started.elapsed() > self.node.config.backoff.max * 2 {
                failures = 0;
            }
            if !self
                .back_off(container, Slot::App(index), termination, failures, cancel)
                .await
            {
                return;
            }
            failures = failures.saturating_add(1);
        }
    }

    /// Waits out the crash-loop back-off before restart number `failures + 1`.
    async fn back_off(
        &self,
        container: &Container,
        slot: Slot,
        last: Termination,
        failures: u32,
        cancel: &CancellationToken,
    ) -> bool {
        let delay = self.node.config.backoff.delay(failures);
        let pod_ref = format!("{}_{}({})", self.name(), self.namespace(), self.uid);
        self.update(|r| {
            let record = slot.get(r);
            record.last_termination = Some(last.clone());
            record.restart_count = record.restart_count.saturating_add(1);
            record.state = if delay.is_zero() {
                ContainerState::Terminated(last)
            } else {
                ContainerState::waiting(
                    "CrashLoopBackOff",
                    Some(format!(
                        "back-off {:?} restarting failed container={} pod={pod_ref}",
                        delay, container.name
                    )),
                )
            };
        });
        if !delay.is_zero() {
            self.event(
                Some(&container.name),
                EventType::Warning,
                "BackOff",
                &format!(
                    "Back-off restarting failed container {} in pod {pod_ref}",
                    container.name
                ),
            );
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => true,
            _ = cancel.cancelled() => false,
        }
    }

    /// Loads the container's component, retrying with back-off; `None` once cancelled.
    async fn load(
        &self,
        container: &Container,
        slot: Slot,
        cancel: &CancellationToken,
    ) -> Option<Loaded> {
        let image = container.image.clone().unwrap_or_default();
        let mut failures: u32 = 0;
        loop {
            let attempt = tokio::select! {
                loaded = self.pull(&image) => loaded,
                _ = cancel.cancelled() => return None,
            };
            match attempt {
                Ok(loaded) => {
                    let message = match loaded.source {
                        LoadSource::Compiled => format!(
                            "Successfully compiled image \"{image}\" in {:?} ({})",
                            loaded.duration, loaded.digest
                        ),
                        _ => format!(
                            "Container image \"{image}\" already present on machine (loaded in {:?})",
                            loaded.duration
                        ),
                    };
                    self.event(Some(&container.name), EventType::Normal, "Pulled", &message);
                    self.update(|r| slot.get(r).image_id = loaded.digest.clone());
                    return Some(loaded);
                }
                Err(error) => {
                    let message = format!("Failed to pull image \"{image}\": {error}");
                    self.event(
                        Some(&container.name),
                        EventType::Warning,
                        "Failed",
                        &message,
                    );
                    let reason = if failures == 0 {
                        "ErrImagePull"
                    } else {
                        "ImagePullBackOff"
                    };
                    self.update(|r| {
                        slot.get(r).state = ContainerState::waiting(reason, Some(message))
                    });
                    let delay = self.node.config.backoff.delay(failures.saturating_add(1));
                    failures = failures.saturating_add(1);
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = cancel.cancelled() => return None,
                    }
                }
            }
        }
    }

    /// The component `image` names, compiled (or from the caches).
    async fn pull(&self, image: &str) -> Result<Loaded, String> {
        let path = crate::node::images::component_file(&self.node, image).await?;
        self.node
            .runtime
            .load(&path)
            .await
            .map_err(|e| e.to_string())
    }

    /// Runs one instance of a container to its end; `None` if the pod is being stopped.
    async fn run_once(
        &self,
        container: &Container,
        slot: Slot,
        loaded: &Loaded,
        cancel: &CancellationToken,
    ) -> Option<Termination> {
        if cancel.is_cancelled() {
            return None;
        }
        let restart = self
            .shared
            .record
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .restart_count_of(slot);
        let log = self.open_log(container, restart).await;
        {
            let mut logs = self.shared.logs.lock().unwrap_or_else(|p| p.into_inner());
            let previous = logs.get(&container.name).map(|pair| pair.current.clone());
            logs.insert(
                container.name.clone(),
                LogPair {
                    current: log.clone(),
                    previous,
                },
            );
        }
        let run = match self.container_run(container, log.clone()).await {
            Ok(run) => run,
            Err(message) => return self.start_failed(container, slot, message),
        };
        let memory_limit = run.memory_limit;
        let started_at = now();
        let probed = Probed::of(container);
        self.update(|r| {
            let record = slot.get(r);
            record.state = ContainerState::Running {
                started_at: started_at.clone(),
            };
            record.started = !probed.startup;
            record.ready = !probed.startup && !probed.readiness;
        });
        self.event(
            Some(&container.name),
            EventType::Normal,
            "Started",
            &format!("Started container {}", container.name),
        );
        // The instance's own token: a failing liveness probe ends it, and its end stops the probes.
        let instance = cancel.child_token();
        let running = async {
            let exit = (self.node.runtime)
                .run(&loaded.component, run, instance.clone())
                .await;
            instance.cancel();
            exit
        };
        let (exit, ()) = tokio::join!(running, self.probe(container, slot, &instance));
        log.close();
        let reason = match exit.reason {
            ExitReason::Completed => "Completed",
            ExitReason::OomKilled => "OOMKilled",
            ExitReason::Error | ExitReason::Killed => "Error",
        };
        let termination = Termination {
            exit_code: exit.code,
            reason: reason.into(),
            message: exit.message.clone(),
            started_at,
            finished_at: now(),
        };
        if exit.reason == ExitReason::OomKilled {
            let limit = memory_limit.unwrap_or_default();
            self.event(
                Some(&container.name),
                EventType::Warning,
                "OOMKilled",
                &format!(
                    "Container {} exceeded its memory limit ({limit} bytes) and was killed",
                    container.name
                ),
            );
        }
        self.update(|r| slot.get(r).state = ContainerState::Terminated(termination.clone()));
        (!cancel.is_cancelled() || exit.reason != ExitReason::Killed).then_some(termination)
    }
}

impl Worker {
    fn terminating(&self) -> bool {
        let record = self.shared.record.lock().unwrap_or_else(|p| p.into_inner());
        record.terminating
    }

    fn restart_policy(&self) -> String {
        let record = self.shared.record.lock().unwrap_or_else(|p| p.into_inner());
        record.restart_policy.clone()
    }

    /// A fresh log for run number `restart` of `container`, written to its rotated files.
    async fn open_log(&self, container: &Container, restart: i32) -> Arc<ContainerLog> {
        let config = &self.node.config;
        let files = LogFiles {
            dir: self.node.log_dir(&self.uid, &container.name),
            restart,
            rotation: Rotation {
                max_size: config.limits.container_log_max_size,
                max_files: config.limits.container_log_max_files,
            },
            room: Some(self.node.runtime.budgets().disk.clone()),
        };
        let (capacity, writer) = (config.log_capacity, self.node.log_writer.clone());
        let opened = tokio::task::spawn_blocking(move || {
            ContainerLog::with_files(capacity, Some((files, writer)))
        });
        opened.await.unwrap_or_else(|_| ContainerLog::new(capacity))
    }

    /// A container that could not be set up (a bad sub path): it ends at once with the
    /// kubelet's start-failure code and says why, and the restart policy decides what next.
    fn start_failed(
        &self,
        container: &Container,
        slot: Slot,
        message: String,
    ) -> Option<Termination> {
        self.event(
            Some(&container.name),
            EventType::Warning,
            "Failed",
            &format!("Error: {message}"),
        );
        let termination = Termination {
            exit_code: crate::node::sandbox::EXIT_CODE_START_FAILED,
            reason: "StartError".into(),
            message: Some(message),
            started_at: now(),
            finished_at: now(),
        };
        self.update(|r| slot.get(r).state = ContainerState::Terminated(termination.clone()));
        Some(termination)
    }
}

/// Which container of the pod record a worker step is about.
#[derive(Clone, Copy, Debug)]
pub(super) enum Slot {
    Init(usize),
    App(usize),
}

impl Slot {
    pub(super) fn get(self, record: &mut PodRecord) -> &mut ContainerRecord {
        match self {
            Slot::Init(i) => &mut record.init[i],
            Slot::App(i) => &mut record.app[i],
        }
    }
}

impl PodRecord {
    fn restart_count_of(&mut self, slot: Slot) -> i32 {
        slot.get(self).restart_count
    }
}
