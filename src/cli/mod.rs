//! The kubectl-style command line: `up` runs a cluster, the other commands are its client.
//!
//! Every client command resolves a kubeconfig (`--kubeconfig`, else the first path of
//! `KUBECONFIG`, else `<data-dir>/kubeconfig`), talks to the API server through
//! [`client::Client`] and reports failures on stderr in kubectl's words, exiting 1.

pub mod agent;
pub mod apply;
pub mod columns;
pub mod cordon;
pub mod delete;
mod demo;
mod demo_web;
pub mod describe;
pub mod describe_container;
pub mod describe_deployment;
pub mod describe_node;
pub mod describe_pod;
pub mod describe_replica_set;
mod describe_service;
pub mod drain;
pub mod expose;
pub mod files;
pub mod get;
pub mod images;
pub mod logs;
pub mod merge;
pub mod node_args;
pub mod pod_template;
pub mod rollout;
pub mod scale;
pub mod server;
pub mod set;
pub mod table;
pub mod up;

use std::ffi::OsString;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, Parser, Subcommand};

use crate::api::kinds::Resource;
use crate::client::{Client, ClientError, kubeconfig};

/// wasmkube: a Kubernetes-style orchestrator whose containers are WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "wasmkube", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command accepts.
#[derive(Clone, Debug, Default, Args)]
pub struct GlobalArgs {
    /// Path to the kubeconfig file (default: first of $KUBECONFIG, else <data-dir>/kubeconfig)
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// Where `up` keeps its state and kubeconfig [default: ~/.wasmkube]
    #[arg(long, global = true, env = "WASMKUBE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The namespace of this request (default: the kubeconfig's, else `default`)
    #[arg(short = 'n', long, global = true, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start a single-node cluster (API server and node agent) in this process
    Up(up::UpArgs),
    /// Start the control plane only (API server, controllers, scheduler); nodes join it
    Server(server::ServerArgs),
    /// Join a node to a cluster over the network and run the pods bound to it
    Agent(agent::AgentArgs),
    /// Create or update objects from files, directories or stdin
    Apply(apply::ApplyArgs),
    /// Create objects from files, or a namespace
    Create(apply::CreateArgs),
    /// Display one or many objects
    Get(get::GetArgs),
    /// Show details of objects, with their events
    Describe(describe::DescribeArgs),
    /// Delete objects by name, file, label selector or all in a namespace
    Delete(delete::DeleteArgs),
    /// Print the logs of a container in a pod
    Logs(logs::LogsArgs),
    /// Set the number of replicas of a Deployment or ReplicaSet
    Scale(scale::ScaleArgs),
    /// Make a Service in front of a Deployment, ReplicaSet, pod or Service
    Expose(expose::ExposeArgs),
    /// Manage the rollout of a Deployment
    Rollout(rollout::RolloutArgs),
    /// Set images or environment variables in a workload's pod template
    Set(set::SetArgs),
    /// Mark a node unschedulable
    Cordon(cordon::NodeArgs),
    /// Mark a node schedulable again
    Uncordon(cordon::NodeArgs),
    /// Cordon a node and evict its pods, in preparation for maintenance
    Drain(drain::DrainArgs),
    /// Import, list and remove the components pods name as images (`hello:v1`)
    Images(images::ImagesArgs),
}

impl Command {
    /// Whether the command runs a server (and wants `info` logs by default).
    pub fn is_server(&self) -> bool {
        matches!(
            self,
            Command::Up(_) | Command::Server(_) | Command::Agent(_)
        )
    }
}

/// What a client command works with: the API client and the namespace to use.
#[derive(Clone, Debug)]
pub struct Session {
    pub client: Client,
    /// `-n`, else the kubeconfig context's namespace, else `default`.
    pub namespace: String,
    /// Whether `-n` was given (a manifest's own namespace must then agree with it).
    pub namespace_explicit: bool,
}

impl Session {
    /// Connects as the resolved kubeconfig says.
    ///
    /// # Errors
    /// When there is no kubeconfig or it cannot be used.
    pub fn open(global: &GlobalArgs) -> anyhow::Result<Session> {
        let data_dir = global
            .data_dir
            .clone()
            .unwrap_or_else(crate::cluster::default_data_dir);
        let env = std::env::var_os("KUBECONFIG");
        let path =
            kubeconfig::resolve_path(global.kubeconfig.as_deref(), env.as_deref(), &data_dir);
        if !path.exists() {
            bail!(
                "no kubeconfig at {}: start a cluster with `wasmkube up`, or pass --kubeconfig",
                path.display()
            );
        }
        let client = Client::from_kubeconfig(&path)?;
        Ok(Session::new(client, global.namespace.clone()))
    }

    /// A session on `client`, in `namespace` when given, else the client's default.
    pub fn new(client: Client, namespace: Option<String>) -> Session {
        let namespace_explicit = namespace.is_some();
        let namespace = namespace
            .filter(|ns| !ns.is_empty())
            .unwrap_or_else(|| client.default_namespace().to_string());
        Session {
            client,
            namespace,
            namespace_explicit,
        }
    }
}

/// An error already reported on stderr; the command only has to exit 1.
#[derive(Debug, thiserror::Error)]
#[error("errors were reported")]
pub struct Reported;

/// Parses `args` and runs the command. For embedding; `main` also sets up logging.
pub async fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    match parse(args) {
        Ok(cli) => execute(cli).await,
        Err(code) => code,
    }
}

/// Parses the command line; on `--help`/`--version` or a usage error prints it and returns
/// the exit code (0 or 1, as kubectl).
///
/// # Errors
/// The exit code to end with when there is nothing to run.
pub fn parse<I, T>(args: I) -> Result<Cli, ExitCode>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    Cli::try_parse_from(args).map_err(|error| {
        let _ = error.print();
        if error.use_stderr() {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        }
    })
}

/// Runs a parsed command: 0 on success, 1 after reporting any error on stderr.
pub async fn execute(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Up(args) => up::run(&cli.global, args).await,
        Command::Server(args) => server::run(&cli.global, args).await,
        Command::Agent(args) => agent::run(&cli.global, args).await,
        command => match Session::open(&cli.global) {
            Ok(session) => run_client_command(&session, command).await,
            Err(error) => Err(error),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            report(&error);
            ExitCode::FAILURE
        }
    }
}

async fn run_client_command(session: &Session, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Up(_) | Command::Server(_) | Command::Agent(_) => {
            unreachable!("servers need no session")
        }
        Command::Apply(args) => apply::apply(session, args).await,
        Command::Create(args) => apply::create(session, args).await,
        Command::Get(args) => get::run(session, args).await,
        Command::Describe(args) => describe::run(session, args).await,
        Command::Images(args) => images::run(session, args).await,
        Command::Delete(args) => delete::run(session, args).await,
        Command::Logs(args) => logs::run(session, args).await,
        Command::Scale(args) => scale::run(session, args).await,
        Command::Expose(args) => expose::run(session, args).await,
        Command::Rollout(args) => rollout::run(session, args).await,
        Command::Set(args) => set::run(session, args).await,
        Command::Cordon(args) => cordon::run(session, &args.node, true).await,
        Command::Uncordon(args) => cordon::run(session, &args.node, false).await,
        Command::Drain(args) => drain::run(session, args).await,
    }
}

/// Prints `error` on stderr as kubectl would: server errors as
/// `Error from server (Reason): message`, others as `error: ...`.
pub fn report(error: &anyhow::Error) {
    if error.is::<Reported>() {
        return;
    }
    let message = match error.downcast_ref::<ClientError>() {
        Some(client_error @ (ClientError::Api(_) | ClientError::ConnectionRefused { .. })) => {
            client_error.to_string()
        }
        _ => format!("error: {error:#}"),
    };
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{message}");
}

/// Like [`report`], saying what was being done: `Error from server (Invalid): error when
/// creating "demo.yaml": ...`.
pub fn report_while(doing: &str, error: &anyhow::Error) {
    let message = match error.downcast_ref::<ClientError>() {
        Some(ClientError::Api(status)) => {
            format!(
                "Error from server ({}): {doing}: {}",
                status.reason,
                status.full_message()
            )
        }
        Some(refused @ ClientError::ConnectionRefused { .. }) => refused.to_string(),
        _ => format!("error: {doing}: {error:#}"),
    };
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{message}");
}

/// Writes `text` to stdout and flushes it (for streamed output); a closed pipe ends the
/// command quietly.
pub fn print(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Err(Reported.into()),
        Err(error) => Err(error).context("cannot write to stdout"),
    }
}

/// One group of command-line resource arguments: a kind and the names given for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Targets {
    pub kind: &'static Resource,
    pub names: Vec<String>,
}

/// Reads kubectl's resource arguments: `TYPE [NAME...]`, `TYPE1,TYPE2` or
/// `TYPE/NAME [TYPE/NAME...]`.
///
/// # Errors
/// For an unknown type, or a mix of the two forms.
pub fn parse_targets(args: &[String]) -> anyhow::Result<Vec<Targets>> {
    let Some(first) = args.first() else {
        bail!(
            "you must specify the type of resource to get. Use \"wasmkube api-resources\" for a complete list of supported resources"
        );
    };
    let lookup = |name: &str| {
        crate::api::kinds::lookup(name)
            .with_context(|| format!("the server doesn't have a resource type \"{name}\""))
    };
    if first.contains('/') {
        let mut groups: Vec<Targets> = Vec::new();
        for arg in args {
            let Some((kind, name)) = arg
                .split_once('/')
                .filter(|(k, n)| !k.is_empty() && !n.is_empty())
            else {
                bail!(
                    "there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'wasmkube get resource/<resource_name>' instead of 'wasmkube get resource resource/<resource_name>'"
                );
            };
            let kind = lookup(kind)?;
            match groups.iter_mut().find(|g| g.kind == kind) {
                Some(group) => group.names.push(name.to_string()),
                None => groups.push(Targets {
                    kind,
                    names: vec![name.to_string()],
                }),
            }
        }
        return Ok(groups);
    }
    let names: Vec<String> = args[1..].to_vec();
    if names.iter().any(|n| n.contains('/')) {
        bail!(
            "there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'wasmkube get resource/<resource_name>' instead of 'wasmkube get resource resource/<resource_name>'"
        );
    }
    let kinds: Vec<&str> = first.split(',').filter(|k| !k.is_empty()).collect();
    if kinds.len() > 1 && !names.is_empty() {
        bail!("names cannot be given with several resource types; use TYPE/NAME");
    }
    kinds
        .into_iter()
        .map(|kind| {
            Ok(Targets {
                kind: lookup(kind)?,
                names: names.clone(),
            })
        })
        .collect()
}

/// Parses kubectl-style durations: `30s`, `2m`, `1m30s`, `500ms`, `1h`; a bare number is
/// seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let number: f64 = rest[..digits]
            .parse()
            .map_err(|_| format!("invalid duration {text:?}"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => {
                return Err(format!(
                    "invalid duration {text:?}: use a unit of ms, s, m or h"
                ));
            }
        };
        total += Duration::from_secs_f64(number * scale);
        rest = &rest[unit_len..];
    }
    if text.is_empty() {
        return Err("empty duration".into());
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn targets_accept_type_names_and_type_slash_name() {
        let targets = parse_targets(&strings(&["po", "a", "b"])).unwrap();
        assert_eq!(targets.len(), 1);
        assert_eq!(
            (targets[0].kind.kind, targets[0].names.clone()),
            ("Pod", strings(&["a", "b"]))
        );
        let targets = parse_targets(&strings(&["pod/a", "no/n1", "pods/b"])).unwrap();
        assert_eq!(targets.len(), 2);
        assert_eq!(targets[0].names, strings(&["a", "b"]));
        assert_eq!(targets[1].kind.kind, "Node");
        let targets = parse_targets(&strings(&["pods,nodes"])).unwrap();
        assert_eq!(
            targets.iter().map(|t| t.kind.kind).collect::<Vec<_>>(),
            ["Pod", "Node"]
        );
    }

    #[test]
    fn unknown_types_are_named_in_the_error() {
        let error = parse_targets(&strings(&["widgets"])).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the server doesn't have a resource type \"widgets\""
        );
        assert!(parse_targets(&strings(&["pods", "pod/a"])).is_err());
    }

    #[test]
    fn durations_read_like_kubectls() {
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn command_line_parses_kubectl_style_flags() {
        let cli = Cli::try_parse_from([
            "wasmkube", "get", "pods", "-A", "-o", "wide", "-l", "app=web",
        ])
        .unwrap();
        assert!(matches!(cli.command, Command::Get(_)));
        let cli = Cli::try_parse_from([
            "wasmkube", "-n", "team", "logs", "demo", "-c", "reader", "-f",
        ])
        .unwrap();
        assert_eq!(cli.global.namespace.as_deref(), Some("team"));
        let cli = Cli::try_parse_from(["wasmkube", "delete", "pod", "x", "--now", "--namespace=b"])
            .unwrap();
        assert_eq!(cli.global.namespace.as_deref(), Some("b"));
        assert!(Cli::try_parse_from(["wasmkube", "create", "namespace", "team"]).is_ok());
        assert!(Cli::try_parse_from(["wasmkube", "apply", "-f", "a.yaml", "-f", "dir"]).is_ok());
        assert!(
            Cli::try_parse_from(["wasmkube", "up", "--demo", "--api-addr", "127.0.0.1:0"]).is_ok()
        );
    }
}
