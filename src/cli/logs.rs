//! `logs PODS [-c CONTAINER] [-f] [--tail N] [--previous] [--timestamps]`.

use anyhow::bail;
use clap::Args;
use futures::StreamExt;
use serde_json::Value;

use super::{Session, print};
use crate::api::kinds::PODS;
use crate::client::{Client, with_query};

/// The annotation naming the container `logs` picks when none is given.
const DEFAULT_CONTAINER: &str = "kubectl.kubernetes.io/default-container";

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The pod (`NAME` or `pod/NAME`)
    pub pod: String,
    /// The container; may be left out when the pod has one
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Keep streaming new output
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only the last N lines (-1: all)
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub tail: i64,
    /// The previous (terminated) instance of the container
    #[arg(short = 'p', long)]
    pub previous: bool,
    /// Prefix each line with its RFC 3339 timestamp
    #[arg(long)]
    pub timestamps: bool,
}

/// What to ask the pods/log subresource for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogRequest {
    pub container: Option<String>,
    pub follow: bool,
    pub tail_lines: Option<i64>,
    pub previous: bool,
    pub timestamps: bool,
}

impl LogRequest {
    /// `/api/v1/namespaces/{ns}/pods/{pod}/log?...`
    pub fn path(&self, namespace: &str, pod: &str) -> String {
        let mut pairs = Vec::new();
        if let Some(container) = &self.container {
            pairs.push(("container", container.clone()));
        }
        for (flag, name) in [
            (self.follow, "follow"),
            (self.previous, "previous"),
            (self.timestamps, "timestamps"),
        ] {
            if flag {
                pairs.push((name, "true".to_string()));
            }
        }
        if let Some(tail) = self.tail_lines.filter(|&t| t >= 0) {
            pairs.push(("tailLines", tail.to_string()));
        }
        with_query(
            &format!("{}/log", PODS.path(Some(namespace), Some(pod))),
            &pairs,
        )
    }
}

pub async fn run(session: &Session, args: LogsArgs) -> anyhow::Result<()> {
    let pod = match args.pod.split_once('/') {
        Some((kind, name)) if crate::api::kinds::lookup(kind) == Some(&PODS) => name.to_string(),
        Some((kind, _)) => bail!("cannot get the logs from {kind}: only pods have logs here"),
        None => args.pod.clone(),
    };
    let container = match args.container {
        Some(container) => container,
        None => {
            let object = session
                .client
                .get(&PODS.path(Some(&session.namespace), Some(&pod)))
                .await?;
            default_container(&pod, &object)?
        }
    };
    let request = LogRequest {
        container: Some(container),
        follow: args.follow,
        tail_lines: Some(args.tail),
        previous: args.previous,
        timestamps: args.timestamps,
    };
    print_logs(&session.client, &session.namespace, &pod, &request).await
}

/// Prints a container's log; with `follow`, chunk by chunk until the server ends it.
///
/// # Errors
/// The server's refusal, or stdout closing.
pub async fn print_logs(
    client: &Client,
    namespace: &str,
    pod: &str,
    request: &LogRequest,
) -> anyhow::Result<()> {
    let path = request.path(namespace, pod);
    if !request.follow {
        return print(&client.get_text(&path).await?);
    }
    let mut chunks = client.stream(&path).await?;
    while let Some(chunk) = chunks.next().await {
        print(&String::from_utf8_lossy(&chunk?))?;
    }
    Ok(())
}

/// The container to show when none was named: the annotated default, or the only one.
///
/// # Errors
/// When the pod has several containers, listing them as kubectl does.
pub fn default_container(pod: &str, object: &Value) -> anyhow::Result<String> {
    if let Some(name) = object
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(DEFAULT_CONTAINER))
        .and_then(Value::as_str)
    {
        return Ok(name.to_string());
    }
    let names = |list: &str| -> Vec<String> {
        object
            .pointer(&format!("/spec/{list}"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
            .collect()
    };
    let (containers, init_containers) = (names("containers"), names("initContainers"));
    match containers.as_slice() {
        [only] => Ok(only.clone()),
        _ => {
            let mut message = format!(
                "a container name must be specified for pod {pod}, choose one of: [{}]",
                containers.join(" ")
            );
            if !init_containers.is_empty() {
                message.push_str(&format!(
                    " or one of the init containers: [{}]",
                    init_containers.join(" ")
                ));
            }
            bail!(message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn log_paths_carry_only_the_options_given() {
        let request = LogRequest {
            container: Some("reader".into()),
            follow: true,
            tail_lines: Some(10),
            ..LogRequest::default()
        };
        assert_eq!(
            request.path("default", "demo"),
            "/api/v1/namespaces/default/pods/demo/log?container=reader&follow=true&tailLines=10"
        );
        let all = LogRequest {
            tail_lines: Some(-1),
            previous: true,
            timestamps: true,
            ..LogRequest::default()
        };
        assert_eq!(
            all.path("a", "p"),
            "/api/v1/namespaces/a/pods/p/log?previous=true&timestamps=true"
        );
    }

    #[test]
    fn the_only_container_is_the_default() {
        let pod = json!({"spec": {"containers": [{"name": "main"}]}});
        assert_eq!(default_container("p", &pod).unwrap(), "main");
    }

    #[test]
    fn several_containers_need_a_choice() {
        let pod = json!({"spec": {"containers": [{"name": "writer"}, {"name": "reader"}], "initContainers": [{"name": "setup"}]}});
        assert_eq!(
            default_container("demo", &pod).unwrap_err().to_string(),
            "a container name must be specified for pod demo, choose one of: [writer reader] or one of the init containers: [setup]"
        );
        let annotated = json!({"metadata": {"annotations": {DEFAULT_CONTAINER: "reader"}}, "spec": {"containers": [{"name": "writer"}, {"name": "reader"}]}});
        assert_eq!(default_container("demo", &annotated).unwrap(), "reader");
    }
}
