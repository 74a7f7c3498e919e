//! `cordon` and `uncordon`: mark a node unschedulable (`spec.unschedulable`) or schedulable.

use clap::Args;
use serde_json::{Value, json};

use super::Session;
use crate::api::kinds::NODES;

#[derive(Clone, Debug, Args)]
pub struct NodeArgs {
    /// The node to mark
    #[arg(value_name = "NODE")]
    pub node: String,
}

/// Sets the node's `spec.unschedulable` to `unschedulable` and prints what happened,
/// as kubectl does (`node/n1 cordoned`, `node/n1 already uncordoned`).
///
/// # Errors
/// When the node does not exist (the server's NotFound) or the patch fails.
pub async fn run(session: &Session, node: &str, unschedulable: bool) -> anyhow::Result<()> {
    let line = set_unschedulable(session, node, unschedulable).await?;
    super::print(&format!("{line}\n"))
}

/// Patches `spec.unschedulable` when it differs; returns kubectl's line about it.
///
/// # Errors
/// As [`run`].
pub async fn set_unschedulable(
    session: &Session,
    node: &str,
    unschedulable: bool,
) -> anyhow::Result<String> {
    let path = NODES.path(None, Some(node));
    let current = session.client.get(&path).await?;
    let was = current
        .pointer("/spec/unschedulable")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if was != unschedulable {
        // A merge patch with null removes the field, as kubectl's uncordon leaves it.
        let value = if unschedulable {
            json!(true)
        } else {
            Value::Null
        };
        session
            .client
            .patch(&path, &json!({"spec": {"unschedulable": value}}))
            .await?;
    }
    Ok(outcome(node, was, unschedulable))
}

/// `node/NAME [already ](un)cordoned`.
fn outcome(node: &str, was: bool, unschedulable: bool) -> String {
    let already = if was == unschedulable { "already " } else { "" };
    let word = if unschedulable {
        "cordoned"
    } else {
        "uncordoned"
    };
    format!("{} {already}{word}", NODES.object_name(node))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_read_like_kubectls() {
        assert_eq!(outcome("n1", false, true), "node/n1 cordoned");
        assert_eq!(outcome("n1", true, true), "node/n1 already cordoned");
        assert_eq!(outcome("n1", true, false), "node/n1 uncordoned");
        assert_eq!(outcome("n1", false, false), "node/n1 already uncordoned");
    }
}
