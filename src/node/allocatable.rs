//! What a node keeps for itself and lets its pods use, as the kubelet's resource flags say it:
//! memory and disk reserved for the process (which also holds the store and the API server),
//! the default memory limit of containers without one, open files per pod, log rotation, and
//! the disk-eviction threshold.

use std::time::Duration;

use crate::api::quantity;

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;

/// The node's resource settings.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeLimits {
    /// The memory limit of a container that names none, after LimitRange defaults
    /// (`--default-container-memory`); `None`: only the node's memory for pods bounds it.
    pub default_container_memory: Option<u64>,
    /// Kept from pods (`--system-reserved memory=`): allocatable = capacity − this.
    pub reserved_memory: u64,
    /// Kept free on the data dir's filesystem for the store (`--system-reserved
    /// ephemeral-storage=`): guest writes are refused before free space falls below it.
    pub reserved_storage: u64,
    /// Files the containers of one pod may hold open together (`--pod-max-open-files`).
    pub pod_max_open_files: usize,
    /// A container log file is rotated past this size (`--container-log-max-size`).
    pub container_log_max_size: u64,
    /// Log files kept per container, over all its restarts (`--container-log-max-files`).
    pub container_log_max_files: usize,
    /// Below this much free space the node reports DiskPressure and evicts pods
    /// (`--eviction-hard nodefs.available<…`). Bytes by default rather than the kubelet's
    /// 10%: on a large shared disk (a developer's or a CI runner's) 10% free is still many
    /// gigabytes, and a test cluster that evicts every pod there is no use. Above the store's
    /// reserve, so pods are evicted before their writes are refused.
    pub eviction_hard: DiskThreshold,
    /// How often the node measures its disk and its pods' usage (an early round follows a
    /// pod's burst of writes).
    pub housekeeping_interval: Duration,
}

impl Default for NodeLimits {
    fn default() -> Self {
        NodeLimits {
            default_container_memory: Some(512 * MIB),
            reserved_memory: GIB,
            reserved_storage: GIB,
            pod_max_open_files: 1024,
            container_log_max_size: 10 * MIB,
            container_log_max_files: 5,
            eviction_hard: DiskThreshold::Bytes(2 * GIB),
            housekeeping_interval: Duration::from_secs(10),
        }
    }
}

impl NodeLimits {
    /// Memory pods may use together on a machine of `capacity` bytes: the capacity less the
    /// reserve, but never less than a quarter of the machine (a reserve larger than a small
    /// machine would leave pods nothing).
    pub fn allocatable_memory(&self, capacity: u64) -> u64 {
        capacity
            .saturating_sub(self.reserved_memory)
            .max(capacity / 4)
    }
}

/// The free space below which a filesystem is under pressure: a share of its size or bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DiskThreshold {
    Percent(f64),
    Bytes(u64),
}

impl DiskThreshold {
    /// The threshold in bytes on a filesystem of `capacity` bytes.
    pub fn bytes(self, capacity: u64) -> u64 {
        match self {
            DiskThreshold::Percent(percent) => (capacity as f64 * percent / 100.0) as u64,
            DiskThreshold::Bytes(bytes) => bytes,
        }
    }

    /// How the kubelet writes it (`10%`, `1Gi` as bytes).
    pub fn describe(self) -> String {
        match self {
            DiskThreshold::Percent(percent) => format!("{percent}%"),
            DiskThreshold::Bytes(bytes) => bytes.to_string(),
        }
    }
}

/// Parses `--eviction-hard`: `nodefs.available<10%` or `nodefs.available<2Gi`.
///
/// # Errors
/// A message naming what is wrong.
pub fn parse_eviction_hard(text: &str) -> Result<DiskThreshold, String> {
    let value = text
        .trim()
        .strip_prefix("nodefs.available<")
        .ok_or_else(|| {
            format!("unsupported eviction signal in {text:?}: expected nodefs.available<VALUE")
        })?;
    if let Some(percent) = value.strip_suffix('%') {
        return match percent.parse::<f64>() {
            Ok(p) if (0.0..=100.0).contains(&p) => Ok(DiskThreshold::Percent(p)),
            _ => Err(format!("invalid percentage {value:?}: expected 0% to 100%")),
        };
    }
    quantity::bytes(value)
        .map(DiskThreshold::Bytes)
        .ok_or_else(|| format!("invalid quantity {value:?}: expected e.g. 10% or 2Gi"))
}

/// Parses `--system-reserved`: `memory=1Gi,ephemeral-storage=2Gi` (either may be left out).
///
/// # Errors
/// A message naming the entry that is wrong.
pub fn parse_system_reserved(text: &str) -> Result<(Option<u64>, Option<u64>), String> {
    let (mut memory, mut storage) = (None, None);
    for entry in text.split(',').filter(|e| !e.trim().is_empty()) {
        let (name, value) = entry
            .split_once('=')
            .ok_or_else(|| format!("invalid entry {entry:?}: expected NAME=QUANTITY"))?;
        let bytes = quantity::bytes(value.trim())
            .ok_or_else(|| format!("invalid quantity {value:?} for {name}"))?;
        match name.trim() {
            "memory" => memory = Some(bytes),
            "ephemeral-storage" => storage = Some(bytes),
            other => {
                return Err(format!(
                    "unsupported resource {other:?}: expected memory or ephemeral-storage"
                ));
            }
        }
    }
    Ok((memory, storage))
}

/// Raises the process's open-file limit (RLIMIT_NOFILE) to its hard limit and returns the
/// files guests may hold open together: what the limit leaves after a quarter of it (at least
/// 1,024, at most half) kept for the process's own store, listeners and connections.
pub fn raise_open_file_limit() -> usize {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limits = getrlimit(Resource::Nofile);
    if let Some(hard) = limits.maximum
        && limits.current != Some(hard)
    {
        let raised = rustix::process::Rlimit {
            current: Some(hard),
            maximum: Some(hard),
        };
        if let Err(error) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(%error, "cannot raise the open-file limit to its hard limit");
        }
    }
    // Checked again: what holds is what the kernel reports now, not what was asked for.
    let limit = getrlimit(Resource::Nofile)
        .current
        .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX));
    let guests = guest_share_of_files(limit);
    tracing::info!(
        limit,
        guests,
        "open-file limit (RLIMIT_NOFILE) split between the process and its pods"
    );
    if guests < 1024 {
        tracing::warn!(
            limit,
            "few open files are left for pods; raise the hard limit (ulimit -Hn)"
        );
    }
    guests
}

fn guest_share_of_files(limit: usize) -> usize {
    if limit == usize::MAX {
        return usize::MAX;
    }
    let kept = (limit / 4).max(1024).min(limit / 2);
    limit - kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eviction_thresholds_read_as_the_kubelet_writes_them() {
        assert_eq!(
            parse_eviction_hard("nodefs.available<10%"),
            Ok(DiskThreshold::Percent(10.0))
        );
        assert_eq!(
            parse_eviction_hard("nodefs.available<2Gi"),
            Ok(DiskThreshold::Bytes(2 * GIB))
        );
        for bad in [
            "memory.available<1Gi",
            "nodefs.available<150%",
            "nodefs.available<lots",
        ] {
            assert!(parse_eviction_hard(bad).is_err(), "{bad}");
        }
        assert_eq!(DiskThreshold::Percent(10.0).bytes(1000), 100);
    }

    #[test]
    fn system_reserved_names_memory_and_ephemeral_storage() {
        assert_eq!(
            parse_system_reserved("memory=1Gi,ephemeral-storage=512Mi"),
            Ok((Some(GIB), Some(512 * MIB)))
        );
        assert_eq!(
            parse_system_reserved("memory=2Gi"),
            Ok((Some(2 * GIB), None))
        );
        assert!(parse_system_reserved("cpu=1").is_err());
        assert!(parse_system_reserved("memory").is_err());
    }

    #[test]
    fn allocatable_memory_is_capacity_less_the_reserve_but_never_below_a_quarter() {
        let limits = NodeLimits::default();
        assert_eq!(limits.allocatable_memory(16 * GIB), 15 * GIB);
        assert_eq!(limits.allocatable_memory(GIB), GIB / 4);
    }

    #[test]
    fn the_process_keeps_a_quarter_of_its_files_but_at_least_1024_and_at_most_half() {
        assert_eq!(guest_share_of_files(1 << 20), (1 << 20) - (1 << 18));
        assert_eq!(guest_share_of_files(20_000), 15_000);
        assert_eq!(guest_share_of_files(2048), 1024);
        assert_eq!(guest_share_of_files(1024), 512);
    }
}
