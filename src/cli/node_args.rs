//! The node's resource flags, for `up` and `agent`, named as the kubelet names them.

use std::time::Duration;

use clap::Args;

use super::parse_duration;
use crate::api::quantity;
use crate::node::allocatable::{
    DiskThreshold, NodeLimits, parse_eviction_hard, parse_system_reserved,
};

#[derive(Clone, Debug, Args)]
pub struct NodeArgs {
    /// The memory limit of containers that set none (after LimitRange defaults); `none` for
    /// no default (the node's memory for pods still bounds them)
    #[arg(long, default_value = "512Mi", value_parser = parse_memory, value_name = "QUANTITY")]
    pub default_container_memory: DefaultMemory,
    /// Kept from pods, for this process (store, API server) and the system:
    /// memory=QUANTITY,ephemeral-storage=QUANTITY (guest writes stop before free disk space
    /// falls below the latter)
    #[arg(long, default_value = "memory=1Gi,ephemeral-storage=1Gi", value_parser = parse_system_reserved, value_name = "LIST")]
    pub system_reserved: (Option<u64>, Option<u64>),
    /// Files the containers of one pod may hold open together
    #[arg(long, default_value_t = 1024, value_name = "N")]
    pub pod_max_open_files: usize,
    /// A container log file is rotated past this size
    #[arg(long, default_value = "10Mi", value_parser = parse_size, value_name = "QUANTITY")]
    pub container_log_max_size: u64,
    /// Log files kept per container, over all its restarts
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(2..), value_name = "N")]
    pub container_log_max_files: u16,
    /// Free disk space below which the node reports DiskPressure and evicts pods (a quantity
    /// by default, not the kubelet's 10%: a large shared disk 91% full still has room)
    #[arg(long, default_value = "nodefs.available<2Gi", value_parser = parse_eviction_hard, value_name = "SIGNAL<VALUE")]
    pub eviction_hard: DiskThreshold,
    /// How often the node measures its disk and its pods' disk usage
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub housekeeping_interval: Duration,
    /// Where the node serves other nodes' tunnels and the API server's log reads (0: any free
    /// port; the Node's status says which)
    #[arg(long, default_value_t = crate::node::DEFAULT_KUBELET_PORT, value_name = "PORT")]
    pub kubelet_port: u16,
}

impl NodeArgs {
    /// The node's limits these flags describe.
    pub fn limits(&self) -> NodeLimits {
        let defaults = NodeLimits::default();
        let (memory, storage) = self.system_reserved;
        NodeLimits {
            default_container_memory: self.default_container_memory.0,
            reserved_memory: memory.unwrap_or(defaults.reserved_memory),
            reserved_storage: storage.unwrap_or(defaults.reserved_storage),
            pod_max_open_files: self.pod_max_open_files,
            container_log_max_size: self.container_log_max_size,
            container_log_max_files: usize::from(self.container_log_max_files),
            eviction_hard: self.eviction_hard,
            housekeeping_interval: self.housekeeping_interval.max(Duration::from_millis(100)),
        }
    }
}

/// `--default-container-memory`: bytes, or `none`.
#[derive(Clone, Copy, Debug)]
pub struct DefaultMemory(Option<u64>);

fn parse_memory(text: &str) -> Result<DefaultMemory, String> {
    if text == "none" {
        return Ok(DefaultMemory(None));
    }
    parse_size(text).map(|bytes| DefaultMemory(Some(bytes)))
}

fn parse_size(text: &str) -> Result<u64, String> {
    quantity::bytes(text)
        .filter(|bytes| *bytes > 0)
        .ok_or_else(|| format!("invalid quantity {text:?}: expected e.g. 512Mi"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        node: NodeArgs,
    }

    #[test]
    fn the_defaults_are_the_nodes_defaults() {
        let command = Command::try_parse_from(["x"]).unwrap();
        assert_eq!(command.node.limits(), NodeLimits::default());
    }

    #[test]
    fn flags_set_the_limits_and_bad_values_are_refused() {
        let command = Command::try_parse_from([
            "x",
            "--default-container-memory",
            "none",
            "--system-reserved",
            "ephemeral-storage=5Gi",
            "--eviction-hard",
            "nodefs.available<2Gi",
        ])
        .unwrap();
        let limits = command.node.limits();
        assert_eq!(limits.default_container_memory, None);
        assert_eq!(limits.reserved_storage, 5 << 30);
        assert_eq!(
            limits.reserved_memory,
            NodeLimits::default().reserved_memory
        );
        assert_eq!(limits.eviction_hard, DiskThreshold::Bytes(2 << 30));
        for bad in [
            ["--default-container-memory", "lots"],
            ["--container-log-max-files", "1"],
            ["--eviction-hard", "memory.available<1Gi"],
        ] {
            assert!(
                Command::try_parse_from(["x", bad[0], bad[1]]).is_err(),
                "{bad:?}"
            );
        }
    }
}
