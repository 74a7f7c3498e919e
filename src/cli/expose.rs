//! `expose`: a Service in front of a workload, a pod or another Service, its selector taken
//! from what is exposed, as `kubectl expose` makes it.

use anyhow::{Context, bail};
use clap::Args;
use serde_json::{Map, Value, json};

use super::Session;
use super::scale::parse_workload;
use crate::api::kinds::{DEPLOYMENTS, PODS, REPLICA_SETS, Resource, SERVICES};

#[derive(Clone, Debug, Args)]
pub struct ExposeArgs {
    /// `deployment NAME`, `replicaset NAME`, `pod NAME`, `service NAME` or `TYPE/NAME`
    #[arg(required = true, num_args = 1..=2, value_name = "TYPE NAME | TYPE/NAME")]
    pub target: Vec<String>,
    /// The port the Service serves on
    #[arg(long)]
    pub port: u16,
    /// The pods' port (a number or a port name) the Service sends to [default: --port]
    #[arg(long)]
    pub target_port: Option<String>,
    /// ClusterIP, NodePort or LoadBalancer [default: ClusterIP]
    #[arg(long = "type")]
    pub service_type: Option<String>,
    /// The Service's name [default: the exposed object's]
    #[arg(long)]
    pub name: Option<String>,
    /// TCP, UDP or SCTP
    #[arg(long, default_value = "TCP")]
    pub protocol: String,
}

/// Reads the exposed object, builds the Service and creates it.
///
/// # Errors
/// For an unknown target, one without labels to select by, or a server error (an invalid
/// `--type` or `--protocol` is the server's 422 naming the field).
pub async fn run(session: &Session, args: ExposeArgs) -> anyhow::Result<()> {
    let exposable = [&DEPLOYMENTS, &REPLICA_SETS, &PODS, &SERVICES];
    let (kind, name) = parse_workload(&args.target, &exposable)?;
    let exposed = session
        .client
        .get(&kind.path(Some(&session.namespace), Some(&name)))
        .await?;
    let selector = selector_of(kind, &exposed)
        .with_context(|| format!("cannot expose {}", kind.object_name(&name)))?;
    let service = service(&args, &name, &exposed, selector);
    let created = session
        .client
        .create(&SERVICES.path(Some(&session.namespace), None), &service)
        .await?;
    let created = created["metadata"]["name"].as_str().unwrap_or_default();
    super::print(&format!("{} exposed\n", SERVICES.object_name(created)))
}

/// The labels a Service selects the exposed object's pods by: a workload's
/// `spec.selector.matchLabels`, a pod's labels, a Service's selector.
fn selector_of(kind: &Resource, exposed: &Value) -> anyhow::Result<Map<String, Value>> {
    let selector = if kind == &PODS {
        &exposed["metadata"]["labels"]
    } else if kind == &SERVICES {
        &exposed["spec"]["selector"]
    } else {
        let expressions = exposed["spec"]["selector"]["matchExpressions"].as_array();
        if expressions.is_some_and(|e| !e.is_empty()) {
            bail!("its selector has matchExpressions, which a Service cannot select by");
        }
        &exposed["spec"]["selector"]["matchLabels"]
    };
    match selector.as_object() {
        Some(labels) if !labels.is_empty() => Ok(labels.clone()),
        _ => bail!("it has no labels to select its pods by"),
    }
}

/// The Service `args` ask for, labelled as the exposed object is.
fn service(args: &ExposeArgs, name: &str, exposed: &Value, selector: Map<String, Value>) -> Value {
    let target_port = match args.target_port.as_deref() {
        None => json!(args.port),
        Some(port) => port
            .parse::<u16>()
            .map_or_else(|_| json!(port), |n| json!(n)),
    };
    let mut spec = json!({
        "selector": selector,
        "ports": [{"port": args.port, "targetPort": target_port, "protocol": args.protocol}],
    });
    if let Some(kind) = &args.service_type {
        spec["type"] = json!(kind);
    }
    let mut metadata = json!({"name": args.name.as_deref().unwrap_or(name)});
    if let Some(labels) = exposed["metadata"]["labels"].as_object() {
        metadata["labels"] = Value::Object(labels.clone());
    }
    json!({"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": spec})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> ExposeArgs {
        #[derive(clap::Parser)]
        struct Line {
            #[command(flatten)]
            expose: ExposeArgs,
        }
        let line = ["expose", "deployment", "web", "--port", "80"]
            .iter()
            .chain(extra);
        <Line as clap::Parser>::parse_from(line).expose
    }

    #[test]
    fn a_deployment_is_selected_by_its_match_labels_and_labels_its_service() {
        let deployment = json!({"metadata": {"labels": {"team": "a"}},
            "spec": {"selector": {"matchLabels": {"app": "web"}}}});
        let selector = selector_of(&DEPLOYMENTS, &deployment).unwrap();
        let service = service(
            &args(&["--target-port", "http", "--type", "NodePort"]),
            "web",
            &deployment,
            selector,
        );
        assert_eq!(
            service,
            json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "web", "labels": {"team": "a"}},
                "spec": {"selector": {"app": "web"}, "type": "NodePort",
                    "ports": [{"port": 80, "targetPort": "http", "protocol": "TCP"}]}})
        );
        let numbered = self::service(
            &args(&["--target-port", "8080", "--name", "w"]),
            "web",
            &json!({}),
            Map::new(),
        );
        assert_eq!(numbered["spec"]["ports"][0]["targetPort"], 8080);
        assert_eq!(numbered["metadata"]["name"], "w");
    }

    #[test]
    fn pods_services_and_selectors_without_labels_are_told_apart() {
        let pod = json!({"metadata": {"labels": {"app": "web"}}});
        assert_eq!(selector_of(&PODS, &pod).unwrap()["app"], "web");
        let exposed_service = json!({"spec": {"selector": {"app": "db"}}});
        assert_eq!(
            selector_of(&SERVICES, &exposed_service).unwrap()["app"],
            "db"
        );
        let error = selector_of(&PODS, &json!({"metadata": {}})).unwrap_err();
        assert!(error.to_string().contains("no labels"), "{error}");
        let expressions = json!({"spec": {"selector": {"matchExpressions": [{"key": "app", "operator": "Exists"}]}}});
        let error = selector_of(&REPLICA_SETS, &expressions).unwrap_err();
        assert!(error.to_string().contains("matchExpressions"), "{error}");
    }
}
