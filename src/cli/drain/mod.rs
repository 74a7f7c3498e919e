//! `drain NODE`: cordon the node, then evict its pods through `pods/{name}/eviction` and
//! wait until they are gone, refusing (as kubectl does) pods whose loss the user must accept.

mod filters;

use std::time::Duration;

use anyhow::anyhow;
use clap::Args;
use serde_json::{Value, json};
use tokio::time::Instant;

use self::filters::{name_and_namespace, namespaced_name, plan};
use super::{Reported, Session, cordon, print};
use crate::api::kinds::{NODES, PODS};
use crate::client::{ClientError, ListParams};

/// How often the pods being evicted are looked up again.
const POLL: Duration = Duration::from_millis(500);

#[derive(Clone, Debug, Default, Args)]
pub struct DrainArgs {
    /// The node to drain
    #[arg(value_name = "NODE")]
    pub node: String,
    /// Leave DaemonSet-managed pods in place instead of refusing to drain
    #[arg(long)]
    pub ignore_daemonsets: bool,
    /// Evict pods using emptyDir volumes too (their data is deleted)
    #[arg(long)]
    pub delete_emptydir_data: bool,
    /// Evict pods that declare no controller too (nothing recreates them)
    #[arg(long)]
    pub force: bool,
    /// Seconds each pod gets to terminate; negative uses the pod's own grace period
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub grace_period: i64,
    /// Give up after this long (0: wait for ever)
    #[arg(long, value_parser = super::parse_duration, default_value = "0")]
    pub timeout: Duration,
    /// Only evict the pods matching this label selector
    #[arg(long, value_name = "SELECTOR")]
    pub pod_selector: Option<String>,
}

/// Cordons the node, evicts its pods and waits for them to go.
///
/// # Errors
/// For an unknown node, refused pods (nothing is evicted then), a failed eviction or the
/// timeout; each reported in kubectl's words.
pub async fn run(session: &Session, args: DrainArgs) -> anyhow::Result<()> {
    let node = args.node.as_str();
    let cordoned = cordon::set_unschedulable(session, node, true).await?;
    print(&format!("{cordoned}\n"))?;
    let plan = plan(pods_on(session, &args).await?, &args);
    if !plan.errors.is_empty() {
        return Err(unable_to_drain(node, &plan.errors));
    }
    if !plan.warnings.is_empty() {
        eprintln!("Warning: {}", plan.warnings.join("; "));
    }
    let errors = evict_all(session, plan.evict, &args).await?;
    if errors.is_empty() {
        return print(&format!("{} drained\n", NODES.object_name(node)));
    }
    print_pending(session, &args, &errors).await?;
    Err(unable_to_drain(node, &errors))
}

/// Evicts the pods and waits (until `--timeout`) for them to go; returns kubectl's error
/// line for each pod that could not be evicted or did not go.
async fn evict_all(
    session: &Session,
    pods: Vec<Value>,
    args: &DrainArgs,
) -> anyhow::Result<Vec<String>> {
    let deadline = (!args.timeout.is_zero()).then(|| Instant::now() + args.timeout);
    let grace = (args.grace_period >= 0).then_some(args.grace_period);
    let mut errors = Vec::new();
    let mut evicted = Vec::new();
    for pod in pods {
        match evict(session, &pod, grace).await {
            Ok(()) => evicted.push(pod),
            Err(error) => {
                let (name, namespace) = name_and_namespace(&pod);
                let cause = server_message(&error);
                errors.push(format!(
                    "error when evicting pods/{name:?} -n {namespace:?}: {cause}"
                ));
            }
        }
    }
    for pod in wait_until_gone(session, evicted, deadline).await? {
        let (name, namespace) = name_and_namespace(&pod);
        errors.push(format!(
            "error when waiting for pod {name:?} in namespace {namespace:?} to terminate: context deadline exceeded"
        ));
    }
    Ok(errors)
}

/// After a failure, kubectl names the pods drain would still have to evict.
async fn print_pending(
    session: &Session,
    args: &DrainArgs,
    errors: &[String],
) -> anyhow::Result<()> {
    let left = plan(pods_on(session, args).await?, args).evict;
    eprintln!(
        "There are pending pods in node {:?} when an error occurred: {}",
        args.node,
        aggregate(errors)
    );
    for pod in left {
        let (name, _) = name_and_namespace(&pod);
        eprintln!("{}", PODS.object_name(name));
    }
    Ok(())
}

/// The pods on the node that `--pod-selector` selects.
async fn pods_on(session: &Session, args: &DrainArgs) -> anyhow::Result<Vec<Value>> {
    let params = ListParams {
        label_selector: args.pod_selector.clone(),
        field_selector: Some(format!("spec.nodeName={}", args.node)),
    };
    let list = session.client.list(&PODS.path(None, None), &params).await?;
    Ok(list["items"].as_array().cloned().unwrap_or_default())
}

/// The server's message for a refused request, as Go's `%v` of a StatusError prints it.
fn server_message(error: &anyhow::Error) -> String {
    match error
        .downcast_ref::<ClientError>()
        .and_then(ClientError::status)
    {
        Some(status) => status.full_message(),
        None => format!("{error:#}"),
    }
}

/// Posts an Eviction of `pod`; a pod already gone counts as evicted.
async fn evict(session: &Session, pod: &Value, grace: Option<i64>) -> anyhow::Result<()> {
    print(&format!("evicting pod {}\n", namespaced_name(pod)))?;
    let meta = &pod["metadata"];
    let mut delete_options = json!({});
    if let Some(grace) = grace {
        delete_options["gracePeriodSeconds"] = json!(grace);
    }
    let eviction = json!({
        "apiVersion": "policy/v1", "kind": "Eviction",
        "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
        "deleteOptions": delete_options,
    });
    let path = format!(
        "{}/eviction",
        PODS.path(meta["namespace"].as_str(), meta["name"].as_str())
    );
    match session.client.create(&path, &eviction).await {
        Ok(_) => Ok(()),
        Err(error) if error.is_not_found() => Ok(()),
        Err(error) => Err(error.into()),
    }
}

/// Polls the pods until each is gone (or replaced by a namesake with another uid),
/// printing `pod/NAME evicted` for each; returns those still there at the deadline.
async fn wait_until_gone(
    session: &Session,
    mut pending: Vec<Value>,
    deadline: Option<Instant>,
) -> anyhow::Result<Vec<Value>> {
    loop {
        let mut still = Vec::new();
        for pod in pending {
            let meta = &pod["metadata"];
            let path = PODS.path(meta["namespace"].as_str(), meta["name"].as_str());
            let gone = match session.client.get(&path).await {
                Ok(current) => current["metadata"]["uid"] != meta["uid"],
                Err(error) if error.is_not_found() => true,
                Err(error) => return Err(error.into()),
            };
            if gone {
                let name = meta["name"].as_str().unwrap_or_default();
                print(&format!("{} evicted\n", PODS.object_name(name)))?;
            } else {
                still.push(pod);
            }
        }
        pending = still;
        let now = Instant::now();
        if pending.is_empty() || deadline.is_some_and(|d| now >= d) {
            return Ok(pending);
        }
        let nap = deadline.map_or(POLL, |d| POLL.min(d - now));
        tokio::time::sleep(nap).await;
    }
}

/// kubectl's report of a failed drain: the errors and the node left pending. The returned
/// error is the last line: `error: CAUSE` for one cause, else each cause on its own line.
fn unable_to_drain(node: &str, errors: &[String]) -> anyhow::Error {
    eprintln!(
        "error: unable to drain node {node:?} due to error: {}, continuing command...",
        aggregate(errors)
    );
    eprintln!("There are pending nodes to be drained:\n {node}");
    if let [one] = errors {
        return anyhow!("{one}");
    }
    for error in errors {
        eprintln!("{error}");
    }
    Reported.into()
}

/// One error as itself, several as `[a, b]` (Go's aggregate error).
fn aggregate(errors: &[String]) -> String {
    match errors {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_causes_aggregate_as_go_prints_them() {
        let one = ["a: ns/x".to_string()];
        assert_eq!(aggregate(&one), "a: ns/x");
        let two = ["a: ns/x".to_string(), "b: ns/y, ns/z".to_string()];
        assert_eq!(aggregate(&two), "[a: ns/x, b: ns/y, ns/z]");
    }
}
