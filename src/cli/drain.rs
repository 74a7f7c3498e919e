//! `drain NODE`: cordon the node, then evict its pods through `pods/{name}/eviction` and
//! wait until they are gone, refusing (as kubectl does) pods whose loss the user must accept.

use std::time::Duration;

use anyhow::anyhow;
use clap::Args;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::client::ListParams;
use super::kinds::{NODE, POD};
use super::{Session, cordon, print};

/// How often the pods being evicted are looked up again.
const POLL: Duration = Duration::from_millis(500);

const DAEMON_SET_FATAL: &str =
    "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore)";
const DAEMON_SET_WARNING: &str = "ignoring DaemonSet-managed Pods";
const LOCAL_STORAGE_FATAL: &str =
    "cannot delete Pods with local storage (use --delete-emptydir-data to override)";
const LOCAL_STORAGE_WARNING: &str = "deleting Pods with local storage";
const UNMANAGED_FATAL: &str =
    "cannot delete Pods that declare no controller (use --force to override)";
const UNMANAGED_WARNING: &str = "deleting Pods that declare no controller";

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

/// What drain does with one pod, as kubectl's drain filters decide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Evict,
    /// Evict, warning about it.
    EvictWithWarning(&'static str),
    /// Leave it, warning about it.
    Skip(&'static str),
    /// Drain nothing: the user must accept this pod's loss with a flag.
    Refuse(&'static str),
}

fn verdict(pod: &Value, args: &DrainArgs) -> Verdict {
    // A finished pod has nothing left to lose.
    if matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    ) {
        return Verdict::Evict;
    }
    let controller = pod["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|owner| owner["controller"] == true);
    if controller.is_some_and(|owner| owner["kind"] == "DaemonSet") {
        return match args.ignore_daemonsets {
            true => Verdict::Skip(DAEMON_SET_WARNING),
            false => Verdict::Refuse(DAEMON_SET_FATAL),
        };
    }
    let local_storage = pod["spec"]["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|volume| volume.get("emptyDir").is_some());
    if local_storage && !args.delete_emptydir_data {
        return Verdict::Refuse(LOCAL_STORAGE_FATAL);
    }
    match (controller, args.force) {
        (None, true) => Verdict::EvictWithWarning(UNMANAGED_WARNING),
        (None, false) => Verdict::Refuse(UNMANAGED_FATAL),
        (Some(_), _) if local_storage => Verdict::EvictWithWarning(LOCAL_STORAGE_WARNING),
        (Some(_), _) => Verdict::Evict,
    }
}

/// The node's pods sorted by [`verdict`]: those to evict, and kubectl's warning and error
/// lines (`message: ns/a, ns/b`).
#[derive(Debug, Default)]
struct Plan {
    evict: Vec<Value>,
    warnings: Vec<String>,
    errors: Vec<String>,
}

fn plan(pods: Vec<Value>, args: &DrainArgs) -> Plan {
    let mut warned: Vec<(&str, String)> = Vec::new();
    let mut refused: Vec<(&str, String)> = Vec::new();
    let mut evict = Vec::new();
    for pod in pods {
        let key = namespaced_name(&pod);
        match verdict(&pod, args) {
            Verdict::Evict => evict.push(pod),
            Verdict::EvictWithWarning(message) => {
                warned.push((message, key));
                evict.push(pod);
            }
            Verdict::Skip(message) => warned.push((message, key)),
            Verdict::Refuse(message) => refused.push((message, key)),
        }
    }
    Plan {
        evict,
        warnings: grouped(&warned),
        errors: grouped(&refused),
    }
}

/// `message: a, b` per message, in the order the messages first appear.
fn grouped(entries: &[(&str, String)]) -> Vec<String> {
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for (message, pod) in entries {
        match groups.iter_mut().find(|(m, _)| m == message) {
            Some((_, pods)) => pods.push(pod),
            None => groups.push((message, vec![pod])),
        }
    }
    groups
        .into_iter()
        .map(|(message, pods)| format!("{message}: {}", pods.join(", ")))
        .collect()
}

fn namespaced_name(pod: &Value) -> String {
    let text = |field: &str| pod["metadata"][field].as_str().unwrap_or_default();
    format!("{}/{}", text("namespace"), text("name"))
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
    let params = ListParams {
        label_selector: args.pod_selector.clone(),
        field_selector: Some(format!("spec.nodeName={node}")),
    };
    let list = session.client.list(&POD.path(None, None), &params).await?;
    let pods = list["items"].as_array().cloned().unwrap_or_default();
    let plan = plan(pods, &args);
    if !plan.errors.is_empty() {
        return Err(unable_to_drain(node, &aggregate(&plan.errors)));
    }
    if !plan.warnings.is_empty() {
        eprintln!("Warning: {}", plan.warnings.join("; "));
    }
    let deadline = (!args.timeout.is_zero()).then(|| Instant::now() + args.timeout);
    let grace = (args.grace_period >= 0).then_some(args.grace_period);
    let evicted = async {
        for pod in &plan.evict {
            evict(session, pod, grace).await?;
        }
        wait_until_gone(session, plan.evict.clone()).await
    };
    let outcome = match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, evicted)
            .await
            .unwrap_or_else(|_| {
                Err(anyhow!(
                    "drain did not complete within {}",
                    go_duration(args.timeout)
                ))
            }),
        None => evicted.await,
    };
    match outcome {
        Ok(()) => print(&format!("{} drained\n", NODE.object_name(node))),
        Err(error) => Err(unable_to_drain(node, &format!("{error:#}"))),
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
    let path = eviction_path(pod);
    match session.client.create(&path, &eviction).await {
        Ok(_) => Ok(()),
        Err(error) if error.is_not_found() => Ok(()),
        Err(error) => Err(error.into()),
    }
}

fn eviction_path(pod: &Value) -> String {
    let meta = &pod["metadata"];
    let pod_path = POD.path(meta["namespace"].as_str(), meta["name"].as_str());
    format!("{pod_path}/eviction")
}

/// Polls the pods until each is gone (or replaced by a namesake with another uid),
/// printing `pod/NAME evicted` for each.
async fn wait_until_gone(session: &Session, mut pending: Vec<Value>) -> anyhow::Result<()> {
    while !pending.is_empty() {
        let mut still = Vec::new();
        for pod in pending {
            let meta = &pod["metadata"];
            let path = POD.path(meta["namespace"].as_str(), meta["name"].as_str());
            let gone = match session.client.get(&path).await {
                Ok(current) => current["metadata"]["uid"] != meta["uid"],
                Err(error) if error.is_not_found() => true,
                Err(error) => return Err(error.into()),
            };
            if gone {
                let name = meta["name"].as_str().unwrap_or_default();
                print(&format!("{} evicted\n", POD.object_name(name)))?;
            } else {
                still.push(pod);
            }
        }
        pending = still;
        if !pending.is_empty() {
            tokio::time::sleep(POLL).await;
        }
    }
    Ok(())
}

/// kubectl's report of a failed drain: what went wrong and which node is left pending;
/// the returned error repeats the cause as `error: ...`.
fn unable_to_drain(node: &str, cause: &str) -> anyhow::Error {
    eprintln!("error: unable to drain node {node:?} due to error: {cause}, continuing command...");
    eprintln!("There are pending nodes to be drained:\n {node}");
    anyhow!("{cause}")
}

/// One error as itself, several as `[a, b]` (Go's aggregate error).
fn aggregate(errors: &[String]) -> String {
    match errors {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

/// A duration as Go prints it: `500ms`, `30s`, `2m0s`, `1h0m5s`.
fn go_duration(duration: Duration) -> String {
    if duration < Duration::from_secs(1) {
        return format!("{}ms", duration.as_millis());
    }
    let seconds = duration.as_secs_f64() % 60.0;
    let minutes = duration.as_secs() / 60 % 60;
    let hours = duration.as_secs() / 3600;
    match (hours, minutes) {
        (0, 0) => format!("{seconds}s"),
        (0, _) => format!("{minutes}m{seconds}s"),
        _ => format!("{hours}h{minutes}m{seconds}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, phase: &str, controller: Option<&str>, empty_dir: bool) -> Value {
        let owners: Vec<Value> = controller
            .map(|kind| json!({"kind": kind, "name": "owner", "controller": true}))
            .into_iter()
            .collect();
        let volumes: Vec<Value> = empty_dir
            .then(|| json!({"name": "scratch", "emptyDir": {}}))
            .into_iter()
            .collect();
        json!({
            "metadata": {"name": name, "namespace": "default", "ownerReferences": owners},
            "spec": {"volumes": volumes},
            "status": {"phase": phase},
        })
    }

    fn flags(force: bool, delete_emptydir_data: bool, ignore_daemonsets: bool) -> DrainArgs {
        DrainArgs {
            force,
            delete_emptydir_data,
            ignore_daemonsets,
            ..DrainArgs::default()
        }
    }

    #[test]
    fn verdicts_follow_kubectls_drain_filters() {
        let strict = flags(false, false, false);
        let lenient = flags(true, true, true);
        let cases = [
            (
                pod("rs", "Running", Some("ReplicaSet"), false),
                Verdict::Evict,
                Verdict::Evict,
            ),
            (
                pod("bare", "Running", None, false),
                Verdict::Refuse(UNMANAGED_FATAL),
                Verdict::EvictWithWarning(UNMANAGED_WARNING),
            ),
            (
                pod("scratch", "Running", Some("ReplicaSet"), true),
                Verdict::Refuse(LOCAL_STORAGE_FATAL),
                Verdict::EvictWithWarning(LOCAL_STORAGE_WARNING),
            ),
            (
                pod("ds", "Running", Some("DaemonSet"), false),
                Verdict::Refuse(DAEMON_SET_FATAL),
                Verdict::Skip(DAEMON_SET_WARNING),
            ),
            (
                pod("done", "Succeeded", None, true),
                Verdict::Evict,
                Verdict::Evict,
            ),
            (
                pod("failed", "Failed", None, false),
                Verdict::Evict,
                Verdict::Evict,
            ),
        ];
        for (pod, strict_verdict, lenient_verdict) in cases {
            assert_eq!(verdict(&pod, &strict), strict_verdict, "{pod}");
            assert_eq!(verdict(&pod, &lenient), lenient_verdict, "{pod}");
        }
    }

    #[test]
    fn refusals_are_grouped_by_message_and_nothing_is_evicted() {
        let pods = vec![
            pod("a", "Running", None, false),
            pod("b", "Running", Some("ReplicaSet"), true),
            pod("c", "Running", None, false),
            pod("d", "Running", Some("ReplicaSet"), false),
        ];
        let plan = plan(pods, &flags(false, false, false));
        assert_eq!(
            plan.errors,
            [
                format!("{UNMANAGED_FATAL}: default/a, default/c"),
                format!("{LOCAL_STORAGE_FATAL}: default/b"),
            ]
        );
        assert_eq!(
            aggregate(&plan.errors),
            format!("[{UNMANAGED_FATAL}: default/a, default/c, {LOCAL_STORAGE_FATAL}: default/b]")
        );
    }

    #[test]
    fn durations_print_as_go_prints_them() {
        assert_eq!(go_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(go_duration(Duration::from_secs(2)), "2s");
        assert_eq!(go_duration(Duration::from_secs(120)), "2m0s");
        assert_eq!(go_duration(Duration::from_secs(3605)), "1h0m5s");
    }
}
