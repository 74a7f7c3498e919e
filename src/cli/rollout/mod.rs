//! `rollout status|history|undo|pause|resume|restart` on Deployments, as kubectl's.

mod history;

use std::time::Duration;

use anyhow::bail;
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use self::history::{history, undo};
use super::Session;
use super::scale::parse_workload;
use crate::api::kinds::{DEPLOYMENTS, Resource};

const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";
/// How often `rollout status` rereads the Deployment; a poll keeps it simple and a
/// missed watch event cannot stall it.
const POLL: Duration = Duration::from_millis(500);

#[derive(Clone, Debug, Args)]
pub struct RolloutArgs {
    #[command(subcommand)]
    pub action: RolloutAction,
}

/// The Deployment a rollout subcommand works on: `deployment/NAME` or `deployment NAME`.
#[derive(Clone, Debug, Args)]
pub struct Target {
    #[arg(required = true, num_args = 1..=2, value_name = "TYPE NAME | TYPE/NAME")]
    pub target: Vec<String>,
}

#[derive(Clone, Debug, Subcommand)]
pub enum RolloutAction {
    /// Wait until the rollout finishes, printing its progress
    Status {
        #[command(flatten)]
        target: Target,
        /// Give up after this long (0: wait for ever)
        #[arg(long, value_parser = super::parse_duration, default_value = "0")]
        timeout: Duration,
    },
    /// List the revisions of the rollout, or show the pod template of one
    History {
        #[command(flatten)]
        target: Target,
        /// Show the pod template of this revision (0: list them all)
        #[arg(long, default_value_t = 0)]
        revision: i64,
    },
    /// Return to an earlier revision (the previous one by default)
    Undo {
        #[command(flatten)]
        target: Target,
        #[arg(long, default_value_t = 0)]
        to_revision: i64,
    },
    /// Stop the controller from rolling out template changes
    Pause {
        #[command(flatten)]
        target: Target,
    },
    /// Let a paused rollout continue
    Resume {
        #[command(flatten)]
        target: Target,
    },
    /// Roll out the same template again, replacing every pod
    Restart {
        #[command(flatten)]
        target: Target,
    },
}

/// Where a rollout stands, as kubectl's deployment status viewer reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    Waiting(String),
    Done(String),
    Failed(String),
}

/// Reads a Deployment's progress from its spec and status (pure; tested below).
pub fn progress(deployment: &Value) -> Progress {
    let name = deployment["metadata"]["name"].as_str().unwrap_or_default();
    let int = |pointer: &str| {
        deployment
            .pointer(pointer)
            .and_then(Value::as_i64)
            .unwrap_or(0)
    };
    if int("/metadata/generation") > int("/status/observedGeneration") {
        return Progress::Waiting("Waiting for deployment spec update to be observed...".into());
    }
    let deadline_exceeded = deployment["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Progressing" && c["reason"] == "ProgressDeadlineExceeded");
    if deadline_exceeded {
        return Progress::Failed(format!(
            "deployment {name:?} exceeded its progress deadline"
        ));
    }
    let desired = deployment
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let (updated, replicas, available) = (
        int("/status/updatedReplicas"),
        int("/status/replicas"),
        int("/status/availableReplicas"),
    );
    let waiting = |what: String| {
        Progress::Waiting(format!(
            "Waiting for deployment {name:?} rollout to finish: {what}..."
        ))
    };
    if updated < desired {
        waiting(format!(
            "{updated} out of {desired} new replicas have been updated"
        ))
    } else if replicas > updated {
        waiting(format!(
            "{} old replicas are pending termination",
            replicas - updated
        ))
    } else if available < updated {
        waiting(format!(
            "{available} of {updated} updated replicas are available"
        ))
    } else {
        Progress::Done(format!("deployment {name:?} successfully rolled out"))
    }
}

/// Runs one `rollout` subcommand.
///
/// # Errors
/// For an unknown target, a server error, a failed or timed-out rollout.
pub async fn run(session: &Session, args: RolloutArgs) -> anyhow::Result<()> {
    let target = match &args.action {
        RolloutAction::Status { target, .. }
        | RolloutAction::History { target, .. }
        | RolloutAction::Undo { target, .. }
        | RolloutAction::Pause { target }
        | RolloutAction::Resume { target }
        | RolloutAction::Restart { target } => target,
    };
    let (kind, name) = parse_workload(&target.target, &[&DEPLOYMENTS])?;
    let path = kind.path(Some(&session.namespace), Some(&name));
    match args.action {
        RolloutAction::Status { timeout, .. } => wait(session, &path, timeout).await,
        RolloutAction::History { revision, .. } => {
            history(session, kind, &name, &path, revision).await
        }
        RolloutAction::Undo { to_revision, .. } => {
            undo(session, kind, &name, &path, to_revision).await
        }
        RolloutAction::Pause { .. } => set_paused(session, kind, &name, &path, true).await,
        RolloutAction::Resume { .. } => set_paused(session, kind, &name, &path, false).await,
        RolloutAction::Restart { .. } => {
            let now = crate::api::printers::now().to_string();
            let patch =
                json!({"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}});
            session.client.patch(&path, &patch).await?;
            super::print(&format!("{} restarted\n", kind.object_name(&name)))
        }
    }
}

/// Polls the Deployment, printing each new progress line, until it is done or fails.
async fn wait(session: &Session, path: &str, timeout: Duration) -> anyhow::Result<()> {
    let start = tokio::time::Instant::now();
    let mut last = String::new();
    loop {
        let deployment = session.client.get(path).await?;
        match progress(&deployment) {
            Progress::Done(message) => return super::print(&format!("{message}\n")),
            Progress::Failed(message) => bail!(message),
            Progress::Waiting(message) => {
                if message != last {
                    super::print(&format!("{message}\n"))?;
                    last = message;
                }
            }
        }
        if !timeout.is_zero() && start.elapsed() >= timeout {
            bail!("timed out waiting for the condition");
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn set_paused(
    session: &Session,
    kind: &Resource,
    name: &str,
    path: &str,
    paused: bool,
) -> anyhow::Result<()> {
    let deployment = session.client.get(path).await?;
    let object = kind.object_name(name);
    let (word, already) = if paused {
        ("paused", "is already paused")
    } else {
        ("resumed", "is not paused")
    };
    if deployment["spec"]["paused"].as_bool().unwrap_or(false) == paused {
        bail!("{object} {already}");
    }
    session
        .client
        .patch(path, &json!({"spec": {"paused": paused}}))
        .await?;
    super::print(&format!("{object} {word}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(status: Value) -> Value {
        json!({"metadata": {"name": "web", "generation": 2},
               "spec": {"replicas": 3}, "status": status})
    }

    #[test]
    fn progress_reads_like_kubectls_status_viewer() {
        let cases = [
            (
                json!({"observedGeneration": 1}),
                "Waiting for deployment spec update to be observed...",
            ),
            (
                json!({"observedGeneration": 2, "updatedReplicas": 1, "replicas": 3}),
                "Waiting for deployment \"web\" rollout to finish: 1 out of 3 new replicas have been updated...",
            ),
            (
                json!({"observedGeneration": 2, "updatedReplicas": 3, "replicas": 4}),
                "Waiting for deployment \"web\" rollout to finish: 1 old replicas are pending termination...",
            ),
            (
                json!({"observedGeneration": 2, "updatedReplicas": 3, "replicas": 3, "availableReplicas": 1}),
                "Waiting for deployment \"web\" rollout to finish: 1 of 3 updated replicas are available...",
            ),
        ];
        for (status, message) in cases {
            assert_eq!(
                progress(&deployment(status)),
                Progress::Waiting(message.into())
            );
        }
        let done = json!({"observedGeneration": 2, "updatedReplicas": 3, "replicas": 3, "availableReplicas": 3});
        assert_eq!(
            progress(&deployment(done)),
            Progress::Done("deployment \"web\" successfully rolled out".into())
        );
        let stuck = json!({"observedGeneration": 2, "conditions": [
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]});
        assert_eq!(
            progress(&deployment(stuck)),
            Progress::Failed("deployment \"web\" exceeded its progress deadline".into())
        );
    }
}
