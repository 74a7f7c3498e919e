//! The node's disk housekeeping, as the kubelet's eviction manager does it: every round it
//! measures the data dir's filesystem and each pod's emptyDir volumes and container logs;
//! evicts a pod past an emptyDir `sizeLimit` or its ephemeral-storage limits; reports
//! DiskPressure below the eviction threshold and then evicts the pod using the most; and
//! tells the guests how much room is left above the store's reserve. A pod that writes much
//! between rounds brings the next one forward.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::NodeContext;
use super::container_spec::volume_dir;
use super::disk::{FsStats, fs_stats, usage};
use super::limits::PodShare;
use crate::api::quantity;

/// The least time between two rounds brought forward by writes.
const EARLY_ROUND_GAP: Duration = Duration::from_millis(50);
/// A pod without disk limits is measured again after writing this much, so the room guests
/// have left stays close to the truth.
const MEASURE_AFTER_UNLIMITED: u64 = 256 * 1024 * 1024;

/// Whether the node's disk is under pressure, and since when: its DiskPressure condition.
#[derive(Debug, Default)]
pub struct DiskPressure {
    state: Mutex<Option<(bool, String)>>,
    changed: Notify,
}

impl DiskPressure {
    /// `(under pressure, lastTransitionTime)`, or `None` before the first round.
    pub fn condition(&self) -> Option<(bool, String)> {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Waits until the condition changes.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    fn set(&self, under: bool) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.as_ref().is_none_or(|(was, _)| *was != under) {
            *state = Some((under, crate::api::objects::now()));
            self.changed.notify_one();
        }
    }
}

/// A pod running on the node, as the housekeeping sees it.
pub struct PodOnDisk {
    pub uid: String,
    pub pod: Arc<Pod>,
    pub share: Arc<PodShare>,
}

/// The node's pods, to measure and to evict.
pub trait NodePods: Send + Sync {
    fn on_disk(&self) -> Vec<PodOnDisk>;
    /// Evicts pod `uid` with `message` (it fails with reason `Evicted`).
    fn evict(&self, uid: &str, message: String);
}

/// Runs the rounds until `shutdown`.
pub async fn run(node: Arc<NodeContext>, pods: Arc<dyn NodePods>, shutdown: CancellationToken) {
    let room = node.runtime.budgets().disk.clone();
    loop {
        round(&node, pods.as_ref()).await;
        tokio::select! {
            _ = tokio::time::sleep(node.config.limits.housekeeping_interval) => {}
            _ = room.woken() => tokio::time::sleep(EARLY_ROUND_GAP).await,
            _ = shutdown.cancelled() => return,
        }
    }
}

async fn round(node: &NodeContext, pods: &dyn NodePods) {
    let running = pods.on_disk();
    let data_dir = node.config.data_dir.clone();
    let pod_dirs: Vec<_> = running.iter().map(|p| node.pod_dir(&p.uid)).collect();
    let specs: Vec<_> = running.iter().map(|p| p.pod.clone()).collect();
    let measured = tokio::task::spawn_blocking(move || {
        let usages: Vec<PodUsage> = specs
            .iter()
            .zip(&pod_dirs)
            .map(|(pod, dir)| PodUsage::measure(dir, pod))
            .collect();
        (fs_stats(&data_dir), usages)
    })
    .await;
    let Ok((stats, usages)) = measured else {
        return;
    };
    let limits = &node.config.limits;
    let stats = match stats {
        Ok(stats) => stats,
        Err(error) => {
            tracing::warn!(%error, "cannot measure the data dir's filesystem");
            return;
        }
    };
    node.runtime
        .budgets()
        .disk
        .measured(stats.available_bytes, limits.reserved_storage);
    let mut evicted = false;
    for (pod, usage) in running.iter().zip(&usages) {
        match verdict(&pod.pod, usage) {
            Some(message) => {
                pods.evict(&pod.uid, message);
                evicted = true;
            }
            None => pod.share.writes.measured(headroom(&pod.pod, usage)),
        }
    }
    let threshold = limits.eviction_hard.bytes(stats.capacity_bytes);
    let under = stats.available_bytes < threshold;
    node.disk_pressure.set(under);
    if under && !evicted {
        let largest = running.iter().zip(&usages).max_by_key(|(_, u)| u.total());
        if let Some((pod, usage)) = largest {
            pods.evict(&pod.uid, node_low_message(limits, &stats, usage));
        }
    }
}

/// What one pod holds on the node's disk.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodUsage {
    /// Each emptyDir volume's bytes.
    pub volumes: Vec<(String, u64)>,
    /// Each container's log files, over all its restarts.
    pub logs: Vec<(String, u64)>,
}

impl PodUsage {
    /// Measures the pod whose directory is `pod_dir`. Blocking.
    pub fn measure(pod_dir: &Path, pod: &Pod) -> PodUsage {
        let spec = pod.spec.as_ref();
        let volumes = spec
            .and_then(|s| s.volumes.as_ref())
            .into_iter()
            .flatten()
            .filter(|v| v.empty_dir.is_some())
            .map(|v| (v.name.clone(), usage(&volume_dir(pod_dir, &v.name))))
            .collect();
        let logs = containers(pod)
            .map(|c| (c.name.clone(), usage(&pod_dir.join("logs").join(&c.name))))
            .collect();
        PodUsage { volumes, logs }
    }

    pub fn total(&self) -> u64 {
        self.volumes
            .iter()
            .chain(&self.logs)
            .map(|(_, bytes)| bytes)
            .sum()
    }

    fn logs_of(&self, container: &str) -> u64 {
        self.logs
            .iter()
            .find(|(name, _)| name == container)
            .map_or(0, |(_, bytes)| *bytes)
    }
}

fn containers(pod: &Pod) -> impl Iterator<Item = &Container> {
    let spec = pod.spec.as_ref();
    let app = spec.map(|s| s.containers.iter()).into_iter().flatten();
    let init = spec
        .and_then(|s| s.init_containers.as_ref())
        .into_iter()
        .flatten();
    init.chain(app)
}

/// A volume's `sizeLimit`, as written and in bytes.
fn size_limits(pod: &Pod) -> Vec<(&str, &str, u64)> {
    let volumes = pod.spec.as_ref().and_then(|s| s.volumes.as_ref());
    volumes
        .into_iter()
        .flatten()
        .filter_map(|v| {
            let limit = v.empty_dir.as_ref()?.size_limit.as_ref()?;
            Some((
                v.name.as_str(),
                limit.0.as_str(),
                quantity::bytes(&limit.0)?,
            ))
        })
        .collect()
}

fn storage_limit(container: &Container) -> Option<(&str, u64)> {
    let limit = container.resources.as_ref()?.limits.as_ref()?;
    let text = limit.get("ephemeral-storage")?.0.as_str();
    Some((text, quantity::bytes(text)?))
}

/// The sum of the app containers' ephemeral-storage limits, if any sets one.
fn pod_storage_limit(pod: &Pod) -> Option<u64> {
    let spec = pod.spec.as_ref()?;
    let limits: Vec<u64> = spec
        .containers
        .iter()
        .filter_map(storage_limit)
        .map(|(_, bytes)| bytes)
        .collect();
    (!limits.is_empty()).then(|| limits.iter().sum())
}

/// Why the pod must be evicted for its own disk usage, in the kubelet's words; checked in the
/// kubelet's order: emptyDir size limits, the pod's total, each container's logs.
pub fn verdict(pod: &Pod, usage: &PodUsage) -> Option<String> {
    for (volume, text, limit) in size_limits(pod) {
        let used = usage.volumes.iter().find(|(name, _)| name == volume);
        if used.is_some_and(|(_, bytes)| *bytes > limit) {
            return Some(format!(
                "Usage of EmptyDir volume \"{volume}\" exceeds the limit \"{text}\"."
            ));
        }
    }
    if let Some(limit) = pod_storage_limit(pod)
        && usage.total() > limit
    {
        return Some(format!(
            "Pod ephemeral local storage usage exceeds the total limit of containers {}.",
            format_bytes(limit)
        ));
    }
    containers(pod).find_map(|container| {
        let (text, limit) = storage_limit(container)?;
        (usage.logs_of(&container.name) > limit).then(|| {
            format!(
                "Container {} exceeded its local ephemeral storage limit \"{text}\".",
                container.name
            )
        })
    })
}

/// Bytes the pod may still write before it passes a limit: when its guests have written as
/// much, the next round comes at once.
pub fn headroom(pod: &Pod, usage: &PodUsage) -> u64 {
    let volumes = size_limits(pod).into_iter().map(|(volume, _, limit)| {
        let used = usage.volumes.iter().find(|(name, _)| name == volume);
        limit.saturating_sub(used.map_or(0, |(_, bytes)| *bytes))
    });
    let pod_total = pod_storage_limit(pod).map(|limit| limit.saturating_sub(usage.total()));
    volumes
        .chain(pod_total)
        .min()
        .unwrap_or(MEASURE_AFTER_UNLIMITED)
        .max(1)
}

fn node_low_message(
    limits: &super::allocatable::NodeLimits,
    stats: &FsStats,
    usage: &PodUsage,
) -> String {
    format!(
        "The node was low on resource: ephemeral-storage. Threshold quantity: {}, available: {}. Pod was using {}.",
        limits.eviction_hard.describe(),
        format_bytes(stats.available_bytes),
        format_bytes(usage.total())
    )
}

/// Bytes as a Kubernetes quantity: the largest binary suffix that divides them.
pub fn format_bytes(bytes: u64) -> String {
    const SUFFIXES: [(&str, u32); 4] = [("Ti", 40), ("Gi", 30), ("Mi", 20), ("Ki", 10)];
    SUFFIXES
        .iter()
        .find(|(_, shift)| bytes != 0 && bytes.trailing_zeros() >= *shift)
        .map_or_else(
            || bytes.to_string(),
            |(suffix, shift)| format!("{}{suffix}", bytes >> shift),
        )
}

#[cfg(test)]
mod tests;
