//! Which of a node's pods drain may evict, as kubectl's drain filters decide: pods that
//! declare no controller need --force, pods with emptyDir --delete-emptydir-data, and
//! DaemonSet pods are left alone with --ignore-daemonsets.

use serde_json::Value;

use super::DrainArgs;

const DAEMON_SET_FATAL: &str =
    "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore)";
const DAEMON_SET_WARNING: &str = "ignoring DaemonSet-managed Pods";
const LOCAL_STORAGE_FATAL: &str =
    "cannot delete Pods with local storage (use --delete-emptydir-data to override)";
const LOCAL_STORAGE_WARNING: &str = "deleting Pods with local storage";
const UNMANAGED_FATAL: &str =
    "cannot delete Pods that declare no controller (use --force to override)";
const UNMANAGED_WARNING: &str = "deleting Pods that declare no controller";

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
pub(super) struct Plan {
    pub evict: Vec<Value>,
    pub warnings: Vec<String>,
    pub errors: Vec<String>,
}

pub(super) fn plan(pods: Vec<Value>, args: &DrainArgs) -> Plan {
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

pub(super) fn namespaced_name(pod: &Value) -> String {
    let (name, namespace) = name_and_namespace(pod);
    format!("{namespace}/{name}")
}

pub(super) fn name_and_namespace(pod: &Value) -> (&str, &str) {
    let meta = &pod["metadata"];
    (
        meta["name"].as_str().unwrap_or_default(),
        meta["namespace"].as_str().unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
    }
}
