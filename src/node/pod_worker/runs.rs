//! What one run of a container gets from its pod and its node: arguments and environment, its
//! volumes, its limits, the pod's files and network. A container's runs and its `exec` probes
//! are made the same way.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Container;

use super::Worker;
use crate::node::container_spec::{self, arguments, environment, limits, mounts};
use crate::node::logs::ContainerLog;
use crate::node::sandbox::ContainerRun;

impl Worker {
    /// A run of `container` writing to `log`; the memory limit is the node's default when the
    /// container sets none.
    ///
    /// # Errors
    /// Why a volume mount (a sub path) cannot be set up.
    pub(super) async fn container_run(
        &self,
        container: &Container,
        log: Arc<ContainerLog>,
    ) -> Result<ContainerRun, String> {
        let host_ip = &self.node.config.host_ip;
        let pod_ip = self.shared.net.address.pod_ip.to_string();
        let env = environment(&self.pod, container, &pod_ip, host_ip);
        let (memory_limit, cpu_limit_millicores) = limits(container);
        let memory_limit = memory_limit.or(self.node.config.limits.default_container_memory);
        let mounts = {
            let (pod_dir, container, env) = (self.pod_dir(), container.clone(), env.clone());
            tokio::task::spawn_blocking(move || mounts(&pod_dir, &container, &env))
                .await
                .unwrap_or_else(|e| Err(e.to_string()))?
        };
        Ok(ContainerRun {
            name: container.name.clone(),
            args: arguments(container, &env),
            env,
            mounts,
            memory_limit,
            cpu_limit_millicores,
            pod: self.shared.share.clone(),
            network: Some(self.shared.net.clone()),
            ports: container_spec::tcp_ports(container),
            log,
        })
    }
}
