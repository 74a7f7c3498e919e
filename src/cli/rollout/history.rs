//! A Deployment's revisions, one per ReplicaSet: `rollout history` lists them or shows
//! one, `rollout undo` puts one back.

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use crate::api::kinds::{REPLICA_SETS, Resource};
use crate::cli::describe::{Out, controlled_by};
use crate::cli::pod_template;
use crate::cli::table::Table;
use crate::cli::{Session, print};

const REVISION: &str = "deployment.kubernetes.io/revision";
const CHANGE_CAUSE: &str = "kubernetes.io/change-cause";

/// The Deployment's ReplicaSets with their revisions, lowest revision first.
async fn revisions(session: &Session, deployment: &Value) -> anyhow::Result<Vec<(i64, Value)>> {
    let mut owned: Vec<(i64, Value)> = controlled_by(session, &REPLICA_SETS, deployment)
        .await?
        .into_iter()
        .filter_map(|rs| {
            let revision = rs["metadata"]["annotations"][REVISION]
                .as_str()?
                .parse()
                .ok()?;
            Some((revision, rs))
        })
        .collect();
    owned.sort_by_key(|(revision, _)| *revision);
    Ok(owned)
}

pub(super) async fn history(
    session: &Session,
    kind: &Resource,
    name: &str,
    path: &str,
    revision: i64,
) -> anyhow::Result<()> {
    let deployment = session.client.get(path).await?;
    let revisions = revisions(session, &deployment).await?;
    if revision > 0 {
        return print(&revision_text(kind, name, &revisions, revision)?);
    }
    let mut rows = vec![vec!["REVISION".to_string(), "CHANGE-CAUSE".to_string()]];
    for (revision, rs) in revisions {
        let cause = rs["metadata"]["annotations"][CHANGE_CAUSE]
            .as_str()
            .unwrap_or("<none>");
        rows.push(vec![revision.to_string(), cause.to_string()]);
    }
    let table = Table::compact().render(&rows);
    print(&format!("{}\n{table}\n", kind.object_name(name)))
}

/// `deployment.apps/NAME with revision #N` and the pod template of that revision's
/// ReplicaSet, with the ReplicaSet's change-cause among its annotations, as kubectl shows it.
///
/// # Errors
/// When no ReplicaSet has that revision.
fn revision_text(
    kind: &Resource,
    name: &str,
    revisions: &[(i64, Value)],
    revision: i64,
) -> anyhow::Result<String> {
    let Some((_, rs)) = revisions.iter().find(|(r, _)| *r == revision) else {
        bail!("unable to find the specified revision");
    };
    let mut template = rs["spec"]["template"].clone();
    if let Some(cause) = rs["metadata"]["annotations"][CHANGE_CAUSE].as_str() {
        template["metadata"]["annotations"][CHANGE_CAUSE] = json!(cause);
    }
    let mut out = Out::default();
    pod_template::describe(&mut out, &template);
    // kubectl prints this template without aligning it: tabs and all.
    Ok(format!(
        "{} with revision #{revision}\n{}\n",
        kind.object_name(name),
        out.unaligned()
    ))
}

/// Puts the template of revision `to_revision` (the one before the current, if 0) back
/// into the Deployment; the controller then reuses that ReplicaSet.
pub(super) async fn undo(
    session: &Session,
    kind: &Resource,
    name: &str,
    path: &str,
    to_revision: i64,
) -> anyhow::Result<()> {
    let mut deployment = session.client.get(path).await?;
    let revisions = revisions(session, &deployment).await?;
    let current = deployment["metadata"]["annotations"][REVISION]
        .as_str()
        .and_then(|r| r.parse::<i64>().ok())
        .or_else(|| revisions.last().map(|(r, _)| *r))
        .unwrap_or(0);
    let chosen = if to_revision == 0 {
        revisions.iter().rev().find(|(r, _)| *r != current)
    } else {
        revisions.iter().find(|(r, _)| *r == to_revision)
    };
    let Some((revision, rs)) = chosen else {
        if to_revision == 0 {
            bail!("no rollout history found for deployment {name:?}");
        }
        bail!("unable to find specified revision {to_revision} in history");
    };
    if *revision == current {
        return print(&format!(
            "{} skipped rollback (current template already matches revision {revision})\n",
            kind.object_name(name)
        ));
    }
    let mut template = rs["spec"]["template"].clone();
    if let Some(labels) = template
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove("pod-template-hash");
    }
    deployment["spec"]["template"] = template;
    session
        .client
        .replace(path, &deployment)
        .await
        .context("cannot roll back")?;
    print(&format!("{} rolled back\n", kind.object_name(name)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::kinds::DEPLOYMENTS;

    #[test]
    fn a_revision_shows_its_template_with_the_change_cause() {
        let rs = json!({
            "metadata": {"annotations": {REVISION: "2", CHANGE_CAUSE: "set image"}},
            "spec": {"template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": "b.wasm"}]}}},
        });
        let revisions = [(2, rs)];
        let text = revision_text(&DEPLOYMENTS, "web", &revisions, 2).unwrap();
        assert_eq!(
            text,
            "deployment.apps/web with revision #2\nPod Template:\n  Labels:\tapp=web\n  Annotations:\tkubernetes.io/change-cause: set image\n  Containers:\n   c:\n    Image:\tb.wasm\n    Port:\t<none>\n    Host Port:\t<none>\n    Environment:\t<none>\n    Mounts:\t<none>\n  Volumes:\t<none>\n  Node-Selectors:\t<none>\n  Tolerations:\t<none>\n\n"
        );
        let missing = revision_text(&DEPLOYMENTS, "web", &revisions, 7).unwrap_err();
        assert_eq!(missing.to_string(), "unable to find the specified revision");
    }
}
