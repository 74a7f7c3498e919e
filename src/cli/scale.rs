//! `scale`: sets a workload's replicas through its `/scale` subresource, as kubectl does.

use anyhow::bail;
use clap::Args;
use serde_json::Value;

use super::Session;
use crate::api::kinds::{DEPLOYMENTS, REPLICA_SETS, Resource};

#[derive(Clone, Debug, Args)]
pub struct ScaleArgs {
    /// `deployment NAME`, `deployment/NAME`, `replicaset NAME` or `rs/NAME`
    #[arg(required = true, num_args = 1..=2, value_name = "TYPE NAME | TYPE/NAME")]
    pub target: Vec<String>,
    /// The new number of replicas
    #[arg(long)]
    pub replicas: u32,
}

/// A workload named on the command line: `TYPE NAME` or `TYPE/NAME`, where the type must
/// be one of `allowed`.
///
/// # Errors
/// For a malformed target or a kind not in `allowed`.
pub fn parse_workload(
    target: &[String],
    allowed: &[&'static Resource],
) -> anyhow::Result<(&'static Resource, String)> {
    let (kind, name) = match target {
        [one] => match one.split_once('/') {
            Some((kind, name)) if !kind.is_empty() && !name.is_empty() => (kind, name),
            _ => bail!("expected TYPE/NAME or TYPE NAME, got {one:?}"),
        },
        [kind, name] if !name.contains('/') => (kind.as_str(), name.as_str()),
        _ => bail!("expected TYPE/NAME or TYPE NAME"),
    };
    let Some(found) = crate::api::kinds::lookup(kind) else {
        bail!("the server doesn't have a resource type \"{kind}\"");
    };
    if !allowed.contains(&found) {
        let names: Vec<&str> = allowed.iter().map(|k| k.singular).collect();
        bail!(
            "{} is not supported here: use one of {}",
            found.plural,
            names.join(", ")
        );
    }
    Ok((found, name.to_string()))
}

/// Reads the `/scale` subresource, sets `spec.replicas` and writes it back.
///
/// # Errors
/// For an unknown target or a server error.
pub async fn run(session: &Session, args: ScaleArgs) -> anyhow::Result<()> {
    let (kind, name) = parse_workload(&args.target, &[&DEPLOYMENTS, &REPLICA_SETS])?;
    let path = format!("{}/scale", kind.path(Some(&session.namespace), Some(&name)));
    let mut scale = session.client.get(&path).await?;
    scale["spec"]["replicas"] = Value::from(args.replicas);
    session.client.replace(&path, &scale).await?;
    super::print(&format!("{} scaled\n", kind.object_name(&name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn workloads_are_named_either_way() {
        let allowed = [&DEPLOYMENTS, &REPLICA_SETS];
        let (kind, name) = parse_workload(&strings(&["deployment/web"]), &allowed).unwrap();
        assert_eq!((kind.kind, name.as_str()), ("Deployment", "web"));
        let (kind, name) = parse_workload(&strings(&["rs", "web-1"]), &allowed).unwrap();
        assert_eq!((kind.kind, name.as_str()), ("ReplicaSet", "web-1"));
        assert!(parse_workload(&strings(&["pod/a"]), &allowed).is_err());
        assert!(parse_workload(&strings(&["web"]), &allowed).is_err());
        assert!(parse_workload(&strings(&["deploy", "a/b"]), &allowed).is_err());
    }
}
