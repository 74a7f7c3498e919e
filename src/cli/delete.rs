//! `delete TYPE NAME... | TYPE/NAME... | -f FILE | TYPE --all | TYPE -l SELECTOR`.

use std::time::Duration;

use anyhow::bail;
use clap::{ArgAction, Args};
use serde_json::Value;
use tokio::time::Instant;

use super::apply::target_of;
use super::files;
use super::get::{items_of, no_resources};
use super::{Reported, Session, parse_duration, parse_targets, print, report};
use crate::api::kinds::Resource;
use crate::client::{DeleteParams, ListParams};

/// How often `--wait` looks again.
const WAIT_POLL: Duration = Duration::from_millis(100);

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// TYPE NAME..., TYPE/NAME..., or TYPE with --all / -l
    #[arg(value_name = "TYPE")]
    pub resources: Vec<String>,
    /// Delete the objects in these manifest files or directories (`-` for stdin)
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub filenames: Vec<String>,
    /// Delete every object of the type in the namespace
    #[arg(long)]
    pub all: bool,
    /// Delete the objects matching this label selector
    #[arg(short = 'l', long = "selector", value_name = "SELECTOR")]
    pub selector: Option<String>,
    /// With --all or -l: in every namespace
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Seconds given to the object to terminate gracefully (-1: the object's own)
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub grace_period: i64,
    /// Delete at once with minimal delay (grace period 1)
    #[arg(long)]
    pub now: bool,
    /// Remove the objects from the API immediately, without waiting for termination
    #[arg(long)]
    pub force: bool,
    /// Wait until the objects are gone
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, default_value_t = true, default_missing_value = "true")]
    pub wait: bool,
    /// Treat a missing object as deleted
    #[arg(long)]
    pub ignore_not_found: bool,
    /// How long to wait for the objects to go (`30s`, `2m`)
    #[arg(long, value_parser = parse_duration, default_value = "60s")]
    pub timeout: Duration,
    /// What becomes of the dependents: background (deleted after), foreground (deleted
    /// before) or orphan (left alone)
    #[arg(long, value_parser = parse_cascade, num_args = 0..=1, default_value = "background",
          default_missing_value = "background", value_name = "background|foreground|orphan")]
    pub cascade: &'static str,
}

/// kubectl's `--cascade`, as the `propagationPolicy` it sends (`true`/`false` are the old
/// spellings of background and orphan).
fn parse_cascade(text: &str) -> Result<&'static str, String> {
    match text {
        "background" | "true" => Ok("Background"),
        "foreground" => Ok("Foreground"),
        "orphan" | "false" => Ok("Orphan"),
        other => Err(format!(
            "invalid cascade value ({other}). Must be \"background\", \"foreground\", or \"orphan\"."
        )),
    }
}

/// One object to delete.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Victim {
    kind: &'static Resource,
    namespace: Option<String>,
    name: String,
}

impl Victim {
    fn path(&self) -> String {
        self.kind.path(self.namespace.as_deref(), Some(&self.name))
    }

    /// `pod "x"` / `deployment.apps "web"`.
    fn display(&self) -> String {
        match self.kind.group {
            "" => format!("{} \"{}\"", self.kind.singular, self.name),
            group => format!("{}.{group} \"{}\"", self.kind.singular, self.name),
        }
    }

    /// What kubectl 1.37 prints for a deletion: `pod "x" deleted from default namespace`,
    /// `namespace "x" deleted`.
    fn deleted(&self) -> String {
        match &self.namespace {
            Some(namespace) => format!("{} deleted from {namespace} namespace", self.display()),
            None => format!("{} deleted", self.display()),
        }
    }
}

/// The grace period kubectl would send for these flags.
///
/// # Errors
/// `--now` together with `--grace-period`.
pub fn grace_period(grace_period: i64, now: bool, force: bool) -> anyhow::Result<Option<i64>> {
    let mut grace = grace_period;
    if now {
        if grace != -1 {
            bail!("--now and --grace-period cannot be specified together");
        }
        grace = 1;
    }
    if grace == 0 && !force {
        grace = 1;
    }
    if force && grace < 0 {
        grace = 0;
    }
    Ok((grace >= 0).then_some(grace))
}

pub async fn run(session: &Session, args: DeleteArgs) -> anyhow::Result<()> {
    let grace = grace_period(args.grace_period, args.now, args.force)?;
    if args.force && grace == Some(0) {
        eprintln!(
            "Warning: Immediate deletion does not wait for confirmation that the running resource has been terminated. The resource may continue to run on the cluster indefinitely."
        );
    }
    let mut failed = false;
    let victims = collect(session, &args, &mut failed).await?;
    let params = DeleteParams {
        grace_period_seconds: grace,
        propagation_policy: Some(args.cascade.into()),
        ..Default::default()
    };
    let mut pending = Vec::new();
    for victim in victims {
        match session.client.delete(&victim.path(), &params).await {
            Ok(answer) => {
                print(&format!("{}\n", victim.deleted()))?;
                let uid = answer
                    .pointer("/metadata/uid")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                if answer.get("kind").and_then(Value::as_str) != Some("Status") {
                    pending.push((victim, uid));
                }
            }
            Err(error) if error.is_not_found() && args.ignore_not_found => {}
            Err(error) => {
                report(&error.into());
                failed = true;
            }
        }
    }
    if args.wait && !pending.is_empty() {
        failed |= !wait_until_gone(session, &pending, args.timeout).await;
    }
    if failed { Err(Reported.into()) } else { Ok(()) }
}

/// The objects the arguments name; reports (and counts as failed) the ones it cannot map.
async fn collect(
    session: &Session,
    args: &DeleteArgs,
    failed: &mut bool,
) -> anyhow::Result<Vec<Victim>> {
    if !args.filenames.is_empty() {
        if !args.resources.is_empty() {
            bail!(
                "there is no need to specify a resource type as a separate argument when passing arguments in resource/name form or with -f"
            );
        }
        let mut victims = Vec::new();
        for mut manifest in files::read(&args.filenames)? {
            match target_of(session, &mut manifest) {
                Ok(target) => match target.name {
                    Some(name) => victims.push(Victim {
                        kind: target.kind,
                        namespace: target.namespace,
                        name,
                    }),
                    None => {
                        report(&anyhow::anyhow!(
                            "resource name may not be empty (in \"{}\")",
                            manifest.source
                        ));
                        *failed = true;
                    }
                },
                Err(error) => {
                    report(&error);
                    *failed = true;
                }
            }
        }
        return Ok(victims);
    }
    if args.resources.is_empty() {
        bail!("You must provide one or more resources by argument or filename.");
    }
    let selecting = args.all || args.selector.is_some();
    let mut victims = Vec::new();
    for group in parse_targets(&args.resources)? {
        let kind = group.kind;
        let namespace = (kind.namespaced && !(args.all_namespaces && selecting))
            .then(|| session.namespace.clone());
        if !group.names.is_empty() {
            if selecting {
                bail!("name cannot be provided when a selector is specified");
            }
            victims.extend(group.names.into_iter().map(|name| Victim {
                kind,
                namespace: namespace.clone(),
                name,
            }));
            continue;
        }
        if !selecting {
            bail!("resource(s) were provided, but no name was specified");
        }
        let params = ListParams {
            label_selector: args.selector.clone(),
            field_selector: None,
        };
        let items = items_of(
            session
                .client
                .list(&kind.path(namespace.as_deref(), None), &params)
                .await?,
            kind,
        );
        if items.is_empty() {
            eprintln!("{}", no_resources(namespace.as_deref(), kind));
        }
        for item in items {
            let text = |pointer: &str| {
                item.pointer(pointer)
                    .and_then(Value::as_str)
                    .map(str::to_string)
            };
            victims.push(Victim {
                kind,
                namespace: text("/metadata/namespace").filter(|_| kind.namespaced),
                name: text("/metadata/name").unwrap_or_default(),
            });
        }
    }
    Ok(victims)
}

/// Polls until each object is gone (or replaced by a new one of the same name); false
/// after reporting the ones still there at the deadline.
async fn wait_until_gone(
    session: &Session,
    pending: &[(Victim, Option<String>)],
    timeout: Duration,
) -> bool {
    let deadline = Instant::now() + timeout;
    let mut remaining: Vec<&(Victim, Option<String>)> = pending.iter().collect();
    while !remaining.is_empty() {
        let mut still = Vec::new();
        for entry @ (victim, uid) in remaining {
            match session.client.get(&victim.path()).await {
                Err(error) if error.is_not_found() => {}
                Ok(object)
                    if uid.is_some()
                        && object.pointer("/metadata/uid").and_then(Value::as_str)
                            != uid.as_deref() => {}
                Ok(_) => still.push(entry),
                Err(error) => {
                    report(&error.into());
                    return false;
                }
            }
        }
        remaining = still;
        if remaining.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            for (victim, _) in remaining {
                eprintln!(
                    "error: timed out waiting for the condition on {}/{}",
                    victim.kind.plural, victim.name
                );
            }
            return false;
        }
        tokio::time::sleep(WAIT_POLL).await;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::kinds::PODS;

    #[test]
    fn grace_period_follows_kubectls_rules() {
        assert_eq!(grace_period(-1, false, false).unwrap(), None);
        assert_eq!(grace_period(-1, true, false).unwrap(), Some(1));
        assert_eq!(grace_period(0, false, false).unwrap(), Some(1));
        assert_eq!(grace_period(0, false, true).unwrap(), Some(0));
        assert_eq!(grace_period(-1, false, true).unwrap(), Some(0));
        assert_eq!(grace_period(30, false, false).unwrap(), Some(30));
        assert!(grace_period(5, true, false).is_err());
    }

    #[test]
    fn victims_print_like_kubectl() {
        let victim = Victim {
            kind: &PODS,
            namespace: Some("default".into()),
            name: "x".into(),
        };
        assert_eq!(victim.display(), "pod \"x\"");
        assert_eq!(victim.path(), "/api/v1/namespaces/default/pods/x");
    }

    #[test]
    fn cascade_takes_kubectls_values_and_old_spellings() {
        assert_eq!(parse_cascade("orphan"), Ok("Orphan"));
        assert_eq!(parse_cascade("false"), Ok("Orphan"));
        assert_eq!(parse_cascade("foreground"), Ok("Foreground"));
        assert_eq!(parse_cascade("true"), Ok("Background"));
        assert!(
            parse_cascade("sideways")
                .unwrap_err()
                .contains("\"orphan\"")
        );
    }
}
