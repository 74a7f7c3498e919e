//! `set image` and `set env`: edit the pod template of a Deployment or ReplicaSet.

use anyhow::bail;
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::Session;
use super::scale::parse_workload;
use crate::api::kinds::{DEPLOYMENTS, REPLICA_SETS};

#[derive(Clone, Debug, Args)]
pub struct SetArgs {
    #[command(subcommand)]
    pub action: SetAction,
}

#[derive(Clone, Debug, Subcommand)]
pub enum SetAction {
    /// Set container images: `set image deployment/web CONTAINER=IMAGE ...` (`*` for all)
    Image {
        /// TYPE/NAME (or TYPE NAME) then CONTAINER=IMAGE pairs
        #[arg(required = true, num_args = 2.., value_name = "TARGET CONTAINER=IMAGE")]
        args: Vec<String>,
    },
    /// Set environment variables: `set env deployment/web KEY=VALUE ... KEY-`
    Env {
        /// TYPE/NAME (or TYPE NAME) then KEY=VALUE to set or KEY- to remove
        #[arg(required = true, num_args = 2.., value_name = "TARGET KEY=VALUE")]
        args: Vec<String>,
        /// Only the containers of this name (default: all)
        #[arg(short = 'c', long)]
        containers: Option<String>,
    },
}

/// Splits `TYPE/NAME pairs...` or `TYPE NAME pairs...` into the target and the pairs.
fn split_target(args: &[String]) -> (&[String], &[String]) {
    let target_len = if args[0].contains('/') { 1 } else { 2 };
    args.split_at(target_len.min(args.len()))
}

/// Sets the images named by `pairs` (`CONTAINER=IMAGE`, `*=IMAGE`) in `containers`.
///
/// # Errors
/// For a malformed pair or a container that is not there.
pub fn set_images(containers: &mut [Value], pairs: &[String]) -> anyhow::Result<()> {
    for pair in pairs {
        let Some((name, image)) = pair
            .split_once('=')
            .filter(|(n, i)| !n.is_empty() && !i.is_empty())
        else {
            bail!("invalid image update {pair:?}: expected CONTAINER=IMAGE");
        };
        let mut found = false;
        for container in containers
            .iter_mut()
            .filter(|c| name == "*" || c["name"] == name)
        {
            container["image"] = json!(image);
            found = true;
        }
        if !found {
            bail!("unable to find container named {name:?}");
        }
    }
    Ok(())
}

/// Applies `KEY=VALUE` (set) and `KEY-` (remove) to a container's `env`.
///
/// # Errors
/// For a malformed pair.
pub fn set_env(container: &mut Value, pairs: &[String]) -> anyhow::Result<()> {
    let mut env: Vec<Value> = container["env"].as_array().cloned().unwrap_or_default();
    for pair in pairs {
        if let Some(key) = pair.strip_suffix('-').filter(|k| !k.contains('=')) {
            env.retain(|e| e["name"] != key);
            continue;
        }
        let Some((key, value)) = pair.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            bail!("invalid environment variable {pair:?}: expected KEY=VALUE or KEY-");
        };
        match env.iter_mut().find(|e| e["name"] == key) {
            Some(existing) => *existing = json!({"name": key, "value": value}),
            None => env.push(json!({"name": key, "value": value})),
        }
    }
    container["env"] = Value::Array(env);
    Ok(())
}

/// Runs `set image` or `set env`: reads the object, edits its template, writes it back.
///
/// # Errors
/// For a bad target or pair, or a server error.
pub async fn run(session: &Session, args: SetArgs) -> anyhow::Result<()> {
    let (all, what) = match &args.action {
        SetAction::Image { args } => (args, "image"),
        SetAction::Env { args, .. } => (args, "env"),
    };
    let (target, pairs) = split_target(all);
    if pairs.is_empty() {
        bail!("at least one {what} update is required");
    }
    let (kind, name) = parse_workload(target, &[&DEPLOYMENTS, &REPLICA_SETS])?;
    let path = kind.path(Some(&session.namespace), Some(&name));
    let mut object = session.client.get(&path).await?;
    let Some(containers) = object
        .pointer_mut("/spec/template/spec/containers")
        .and_then(Value::as_array_mut)
    else {
        bail!("{} has no containers", kind.object_name(&name));
    };
    match &args.action {
        SetAction::Image { .. } => set_images(containers, pairs)?,
        SetAction::Env {
            containers: only, ..
        } => {
            for container in containers
                .iter_mut()
                .filter(|c| only.as_deref().is_none_or(|o| c["name"] == o))
            {
                set_env(container, pairs)?;
            }
        }
    }
    // A patch, as kubectl sends: a controller writing the status meanwhile is no conflict.
    let patch = serde_json::json!({"spec": {"template": {"spec": {"containers": containers}}}});
    session.client.patch(&path, &patch).await?;
    super::print(&format!("{} {what} updated\n", kind.object_name(&name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn images_are_set_by_container_name_or_star() {
        let mut containers = vec![
            json!({"name": "a", "image": "x"}),
            json!({"name": "b", "image": "y"}),
        ];
        set_images(&mut containers, &strings(&["a=new"])).unwrap();
        assert_eq!(
            (&containers[0]["image"], &containers[1]["image"]),
            (&json!("new"), &json!("y"))
        );
        set_images(&mut containers, &strings(&["*=all"])).unwrap();
        assert_eq!(containers[1]["image"], "all");
        assert!(set_images(&mut containers, &strings(&["c=z"])).is_err());
        assert!(set_images(&mut containers, &strings(&["a"])).is_err());
    }

    #[test]
    fn env_pairs_set_replace_and_remove() {
        let mut container =
            json!({"name": "a", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]});
        set_env(&mut container, &strings(&["A=9", "C=3", "B-"])).unwrap();
        assert_eq!(
            container["env"],
            json!([{"name": "A", "value": "9"}, {"name": "C", "value": "3"}])
        );
        assert!(set_env(&mut container, &strings(&["novalue"])).is_err());
    }

    #[test]
    fn the_target_is_one_or_two_words() {
        let args = strings(&["deployment/web", "c=i"]);
        assert_eq!(split_target(&args).1, strings(&["c=i"]));
        let args = strings(&["deployment", "web", "c=i"]);
        assert_eq!(split_target(&args).0, strings(&["deployment", "web"]));
    }
}
