//! The control plane's components — controllers and scheduler — started unless disabled.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use anyhow::bail;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::ClusterConfig;
use crate::api::Api;
use crate::controller_runtime::supervisor::supervise;
use crate::controllers;

/// A running component.
type Component = Pin<Box<dyn Future<Output = ()> + Send>>;

/// How to start a component.
type Start = fn(Arc<Api>, &ClusterConfig, CancellationToken) -> Component;

/// The components, by the names `--disable` takes.
pub const COMPONENTS: &[(&str, Start)] = &[
    ("scheduler", |api, _, stop| {
        Box::pin(crate::scheduler::run(api, stop))
    }),
    ("namespace", |api, _, stop| {
        Box::pin(controllers::namespace::run(api, stop))
    }),
    ("replicaset", |api, _, stop| {
        Box::pin(controllers::replica_set::run(api, stop))
    }),
    ("deployment", |api, _, stop| {
        Box::pin(controllers::deployment::run(api, stop))
    }),
    ("endpoints", |api, _, stop| {
        Box::pin(controllers::endpoints::run(api, stop))
    }),
    ("dns", |api, config, stop| {
        Box::pin(crate::dns::run(api, config.dns.clone(), stop))
    }),
    ("garbage-collector", |api, _, stop| {
        Box::pin(controllers::garbage_collector::run(api, stop))
    }),
    ("apiextensions", |api, _, stop| {
        Box::pin(controllers::custom_resource_definitions::run(api, stop))
    }),
    ("node-ipam", |api, config, stop| {
        Box::pin(controllers::node_ipam::run(api, config.node_ipam, stop))
    }),
    ("node-lifecycle", |api, config, stop| {
        Box::pin(controllers::node_lifecycle::run(
            api,
            config.node_lifecycle,
            stop,
        ))
    }),
];

/// Refuses a `--disable` of something that does not exist (a typo would otherwise run it).
pub fn check_disabled(disabled: &[String]) -> anyhow::Result<()> {
    let names: Vec<&str> = COMPONENTS.iter().map(|(name, _)| *name).collect();
    if let Some(unknown) = disabled.iter().find(|name| !names.contains(&name.as_str())) {
        bail!(
            "--disable: unknown component {unknown:?}; expected one of: {}",
            names.join(", ")
        );
    }
    Ok(())
}

/// Starts every component `config` does not disable, each supervised (restarted after a
/// panic).
pub fn start(
    api: &Arc<Api>,
    config: &ClusterConfig,
    shutdown: &CancellationToken,
) -> Vec<JoinHandle<()>> {
    COMPONENTS
        .iter()
        .filter(|(name, _)| !config.disabled.iter().any(|d| d == name))
        .map(|&(name, start)| {
            let (api, config, stop) = (api.clone(), config.clone(), shutdown.clone());
            tokio::spawn(async move {
                let run = || start(api.clone(), &config, stop.clone());
                supervise(name, stop.clone(), run).await;
            })
        })
        .collect()
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
