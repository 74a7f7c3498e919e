//! The control plane's components — controllers and scheduler — started unless disabled.

use std::sync::Arc;

use anyhow::bail;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::ClusterConfig;
use crate::api::Api;
use crate::controllers;

/// The components `--disable` can name.
pub const COMPONENTS: &[&str] = &[
    "scheduler",
    "namespace",
    "replicaset",
    "deployment",
    "garbage-collector",
    "node-lifecycle",
];

/// Refuses a `--disable` of something that does not exist (a typo would otherwise run it).
pub fn check_disabled(disabled: &[String]) -> anyhow::Result<()> {
    if let Some(unknown) = disabled
        .iter()
        .find(|name| !COMPONENTS.contains(&name.as_str()))
    {
        bail!(
            "--disable: unknown component {unknown:?}; expected one of: {}",
            COMPONENTS.join(", ")
        );
    }
    Ok(())
}

/// Starts every component `config` does not disable.
pub fn start(
    api: &Arc<Api>,
    config: &ClusterConfig,
    shutdown: &CancellationToken,
) -> Vec<JoinHandle<()>> {
    let enabled = |name: &str| !config.disabled.iter().any(|d| d == name);
    let (api, stop) = (api.clone(), shutdown.clone());
    let mut tasks = Vec::new();
    if enabled("scheduler") {
        tasks.push(tokio::spawn(crate::scheduler::run(
            api.clone(),
            stop.clone(),
        )));
    }
    if enabled("namespace") {
        tasks.push(tokio::spawn(controllers::namespace::run(
            api.clone(),
            stop.clone(),
        )));
    }
    if enabled("replicaset") {
        tasks.push(tokio::spawn(controllers::replica_set::run(
            api.clone(),
            stop.clone(),
        )));
    }
    if enabled("deployment") {
        tasks.push(tokio::spawn(controllers::deployment::run(
            api.clone(),
            stop.clone(),
        )));
    }
    if enabled("garbage-collector") {
        let gc = controllers::garbage_collector::run(api.clone(), stop.clone());
        tasks.push(tokio::spawn(gc));
    }
    if enabled("node-lifecycle") {
        let lifecycle = controllers::node_lifecycle::run(api, config.node_lifecycle, stop);
        tasks.push(tokio::spawn(lifecycle));
    }
    tasks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_component_is_refused_with_the_known_ones() {
        assert!(check_disabled(&["scheduler".into(), "node-lifecycle".into()]).is_ok());
        let error = check_disabled(&["schedular".into()])
            .unwrap_err()
            .to_string();
        assert!(error.contains("\"schedular\""), "{error}");
        assert!(error.contains("garbage-collector"), "{error}");
    }
}
