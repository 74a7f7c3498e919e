//! `apply -f` (create or update) and `create -f` / `create namespace NAME`.

use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::files::{self, Manifest};
use super::merge;
use super::{Reported, Session, print, report, report_while};
use crate::api::kinds::{NAMESPACES, Resource};
use crate::client::{Client, ClientError};

/// How many times `apply` re-reads and retries an update that lost a race.
const CONFLICT_RETRIES: usize = 5;

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A manifest file, a directory of them, or `-` for stdin (repeatable)
    #[arg(short = 'f', long = "filename", value_name = "FILE", required = true)]
    pub filenames: Vec<String>,
    /// Apply on the server (managedFields and conflicts) instead of the client's three-way merge
    #[arg(long)]
    pub server_side: bool,
    /// With --server-side: take the fields other managers own instead of reporting a conflict
    #[arg(long, requires = "server_side")]
    pub force_conflicts: bool,
    /// With --server-side: the name of the manager of what is applied
    #[arg(long, default_value = "wasmkube", value_name = "NAME")]
    pub field_manager: String,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct CreateArgs {
    /// A manifest file, a directory of them, or `-` for stdin (repeatable)
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub filenames: Vec<String>,
    #[command(subcommand)]
    pub what: Option<CreateWhat>,
}

#[derive(Debug, Subcommand)]
pub enum CreateWhat {
    /// Create a namespace
    #[command(visible_alias = "ns")]
    Namespace { name: String },
}

/// What `apply` did to one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Configured,
    Unchanged,
    ServerSideApplied,
}

impl Outcome {
    fn word(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Configured => "configured",
            Outcome::Unchanged => "unchanged",
            Outcome::ServerSideApplied => "serverside-applied",
        }
    }
}

/// Where a manifest's object lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub kind: &'static Resource,
    /// None for cluster-scoped kinds.
    pub namespace: Option<String>,
    /// None when the manifest only has `generateName`.
    pub name: Option<String>,
}

impl Target {
    pub fn path(&self) -> String {
        self.kind
            .path(self.namespace.as_deref(), self.name.as_deref())
    }

    pub fn collection_path(&self) -> String {
        self.kind.path(self.namespace.as_deref(), None)
    }
}

/// Maps a manifest onto its kind, namespace and name, and fills in its namespace.
///
/// # Errors
/// A missing or unknown apiVersion/kind, or a namespace that contradicts `-n`.
pub fn target_of(session: &Session, manifest: &mut Manifest) -> anyhow::Result<Target> {
    let object = &mut manifest.object;
    let field = |name: &str| {
        object
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (api_version, kind_name) = (field("apiVersion"), field("kind"));
    let metadata = |name: &str| {
        object
            .pointer(&format!("/metadata/{name}"))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let name = metadata("name").filter(|n| !n.is_empty());
    let own_namespace = metadata("namespace").filter(|n| !n.is_empty());
    let missing: Vec<&str> = [
        ("apiVersion not set", &api_version),
        ("kind not set", &kind_name),
    ]
    .into_iter()
    .filter(|(_, value)| value.is_empty())
    .map(|(message, _)| message)
    .collect();
    if !missing.is_empty() {
        bail!(
            "error validating \"{}\": error validating data: [{}]",
            manifest.source,
            missing.join(", ")
        );
    }
    let Some(kind) = crate::api::kinds::for_manifest(&api_version, &kind_name) else {
        bail!(
            "resource mapping not found for name: \"{}\" namespace: \"{}\" from \"{}\": no matches for kind \"{kind_name}\" in version \"{api_version}\"",
            name.unwrap_or_default(),
            own_namespace.unwrap_or_default(),
            manifest.source
        );
    };
    if !kind.namespaced {
        return Ok(Target {
            kind,
            namespace: None,
            name,
        });
    }
    let namespace = match own_namespace {
        Some(own) if session.namespace_explicit && own != session.namespace => bail!(
            "the namespace from the provided object \"{own}\" does not match the namespace \"{}\". You must pass '--namespace={own}' to perform this operation.",
            session.namespace
        ),
        Some(own) => own,
        None => session.namespace.clone(),
    };
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.insert("namespace".into(), Value::String(namespace.clone()));
    }
    Ok(Target {
        kind,
        namespace: Some(namespace),
        name,
    })
}

/// How `apply` writes: the client's three-way merge, or server-side apply as a field manager.
#[derive(Clone, Debug, Default)]
pub enum ApplyMode {
    #[default]
    ClientSide,
    ServerSide {
        field_manager: String,
        force: bool,
    },
}

/// `apply -f`.
pub async fn apply(session: &Session, args: ApplyArgs) -> anyhow::Result<()> {
    let manifests = files::read(&args.filenames)?;
    let mode = match args.server_side {
        true => ApplyMode::ServerSide {
            field_manager: args.field_manager,
            force: args.force_conflicts,
        },
        false => ApplyMode::ClientSide,
    };
    apply_manifests(session, manifests, &mode).await
}

/// Applies each manifest, printing `pod/demo created` (or the error) as it goes.
///
/// # Errors
/// `Reported` when any object failed.
pub async fn apply_manifests(
    session: &Session,
    manifests: Vec<Manifest>,
    mode: &ApplyMode,
) -> anyhow::Result<()> {
    let mut failed = false;
    for mut manifest in manifests {
        let target = match target_of(session, &mut manifest) {
            Ok(target) => target,
            Err(error) => {
                report(&error);
                failed = true;
                continue;
            }
        };
        let Some(name) = target.name.clone() else {
            report(&anyhow::anyhow!(
                "error when retrieving current configuration of \"{}\": resource name may not be empty",
                manifest.source
            ));
            failed = true;
            continue;
        };
        let applied = match mode {
            ApplyMode::ClientSide => apply_object(&session.client, &target, &manifest.object).await,
            ApplyMode::ServerSide {
                field_manager,
                force,
            } => session
                .client
                .server_side_apply(&target.path(), &manifest.object, field_manager, *force)
                .await
                .map(|_| Outcome::ServerSideApplied),
        };
        match applied {
            Ok(outcome) => print(&format!(
                "{} {}\n",
                target.kind.object_name(&name),
                outcome.word()
            ))?,
            Err(error) => {
                report_while(
                    &format!("error when applying \"{}\"", manifest.source),
                    &error.into(),
                );
                failed = true;
            }
        }
    }
    if failed { Err(Reported.into()) } else { Ok(()) }
}

/// Creates the object, or updates it to match `desired` (GET, three-way merge, PUT with
/// the live resourceVersion; re-read and retry when another writer got there first).
///
/// # Errors
/// The server's refusal, after the retries for conflicts.
pub async fn apply_object(
    client: &Client,
    target: &Target,
    desired: &Value,
) -> Result<Outcome, ClientError> {
    let desired = merge::with_last_applied(desired);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let retry = attempt < CONFLICT_RETRIES;
        let live = match client.get(&target.path()).await {
            Ok(live) => live,
            Err(error) if error.is_not_found() => {
                match client.create(&target.collection_path(), &desired).await {
                    Ok(_) => return Ok(Outcome::Created),
                    Err(error) if error.is_already_exists() && retry => continue,
                    Err(error) => return Err(error),
                }
            }
            Err(error) => return Err(error),
        };
        let merged = merge::three_way(&live, &desired, merge::last_applied(&live).as_ref());
        if merged == live {
            return Ok(Outcome::Unchanged);
        }
        match client.replace(&target.path(), &merged).await {
            Ok(_) => return Ok(Outcome::Configured),
            Err(error) if (error.is_conflict() || error.is_not_found()) && retry => {
                tokio::time::sleep(Duration::from_millis(20 * attempt as u64)).await;
            }
            Err(error) => return Err(error),
        }
    }
}

/// `create -f FILE` or `create namespace NAME`.
pub async fn create(session: &Session, args: CreateArgs) -> anyhow::Result<()> {
    if let Some(CreateWhat::Namespace { name }) = args.what {
        let namespace =
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        session
            .client
            .create(&NAMESPACES.path(None, None), &namespace)
            .await?;
        return print(&format!("{} created\n", NAMESPACES.object_name(&name)));
    }
    if args.filenames.is_empty() {
        bail!("must specify one of -f and -k, or a subcommand (`create namespace NAME`)");
    }
    let mut failed = false;
    for mut manifest in files::read(&args.filenames)? {
        let target = match target_of(session, &mut manifest) {
            Ok(target) => target,
            Err(error) => {
                report(&error);
                failed = true;
                continue;
            }
        };
        let created = session
            .client
            .create(&target.collection_path(), &manifest.object)
            .await;
        match created {
            Ok(object) => {
                let name = object
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .or(target.name)
                    .context("the server returned an object without a name")?;
                print(&format!("{} created\n", target.kind.object_name(&name)))?;
            }
            Err(error) => {
                report_while(
                    &format!("error when creating \"{}\"", manifest.source),
                    &error.into(),
                );
                failed = true;
            }
        }
    }
    if failed { Err(Reported.into()) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Client;

    fn session(namespace: Option<&str>) -> Session {
        Session::new(
            Client::new("http://127.0.0.1:1", ""),
            namespace.map(str::to_string),
        )
    }

    fn manifest(object: Value) -> Manifest {
        Manifest {
            source: "m.yaml".into(),
            object,
        }
    }

    #[test]
    fn namespaced_objects_get_the_session_namespace() {
        let mut pod =
            manifest(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}));
        let target = target_of(&session(None), &mut pod).unwrap();
        assert_eq!(target.path(), "/api/v1/namespaces/default/pods/p");
        assert_eq!(pod.object["metadata"]["namespace"], "default");
        let mut namespace =
            manifest(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "t"}}));
        assert_eq!(
            target_of(&session(Some("x")), &mut namespace)
                .unwrap()
                .path(),
            "/api/v1/namespaces/t"
        );
    }

    #[test]
    fn a_namespace_contradicting_the_flag_is_refused() {
        let mut pod = manifest(
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "a"}}),
        );
        let error = target_of(&session(Some("b")), &mut pod)
            .unwrap_err()
            .to_string();
        assert!(error.starts_with(
            "the namespace from the provided object \"a\" does not match the namespace \"b\""
        ));
        assert!(target_of(&session(None), &mut pod).is_ok());
    }

    #[test]
    fn unknown_or_missing_kinds_are_named() {
        let mut widget =
            manifest(json!({"apiVersion": "v1", "kind": "Widget", "metadata": {"name": "w"}}));
        let error = target_of(&session(None), &mut widget)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("no matches for kind \"Widget\" in version \"v1\""),
            "{error}"
        );
        let mut bare = manifest(json!({"metadata": {"name": "w"}}));
        let error = target_of(&session(None), &mut bare)
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "error validating \"m.yaml\": error validating data: [apiVersion not set, kind not set]"
        );
    }
}
