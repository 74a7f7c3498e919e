//! `describe TYPE [NAME...]`: an object's details in kubectl's layout, then its events.

use std::collections::BTreeMap;
use std::fmt::Display;

use clap::Args;
use k8s_openapi::api::core::v1::{Event, Namespace, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

use super::get::items_of;
use super::table::tabwrite;
use super::{Reported, Session, parse_targets, print, report};
use crate::api::kinds::{
    DEPLOYMENTS, ENDPOINT_SLICES, EVENTS, NAMESPACES, NODES, PODS, REPLICA_SETS, Resource,
    SERVICE_NAME_LABEL, SERVICES,
};
use crate::api::printers::event::event_last_seen;
use crate::api::printers::{now, since};
use crate::client::{Client, ListParams};

#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// TYPE [NAME...] or TYPE/NAME...
    #[arg(required = true, value_name = "TYPE")]
    pub resources: Vec<String>,
    /// Describe objects matching this label selector
    #[arg(short = 'l', long = "selector", value_name = "SELECTOR")]
    pub selector: Option<String>,
    /// Display the events of each object; by default only when describing a single object,
    /// as kubectl 1.37
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub show_events: Option<bool>,
}

pub async fn run(session: &Session, args: DescribeArgs) -> anyhow::Result<()> {
    let mut failed = false;
    let mut described = Vec::new();
    for group in parse_targets(&args.resources)? {
        let kind = group.kind;
        let namespace = Some(session.namespace.as_str());
        let objects = if group.names.is_empty() {
            let params = ListParams {
                label_selector: args.selector.clone(),
                field_selector: None,
            };
            items_of(
                session
                    .client
                    .list(&kind.path(namespace, None), &params)
                    .await?,
                kind,
            )
        } else {
            let mut objects = Vec::new();
            for name in &group.names {
                match session.client.get(&kind.path(namespace, Some(name))).await {
                    Ok(object) => objects.push(object),
                    Err(error) => {
                        report(&error.into());
                        failed = true;
                    }
                }
            }
            objects
        };
        described.extend(objects.into_iter().map(|object| (kind, object)));
    }
    let show_events = args.show_events.unwrap_or(described.len() == 1);
    for (index, (kind, object)) in described.iter().enumerate() {
        if index > 0 {
            print("\n\n")?;
        }
        let text = describe_with_related(session, kind, object, show_events).await?;
        print(&text)?;
    }
    if failed { Err(Reported.into()) } else { Ok(()) }
}

/// The description of `object`, fetching what its describer needs: its events (when
/// `show_events`), a Deployment's ReplicaSets, a ReplicaSet's pods, a node's pods, a
/// Service's EndpointSlices.
async fn describe_with_related(
    session: &Session,
    kind: &Resource,
    object: &Value,
    show_events: bool,
) -> anyhow::Result<String> {
    let events = match show_events {
        true => Some(events_for(&session.client, kind, object).await),
        false => None,
    };
    let mut out = Out::default();
    match kind {
        k if *k == DEPLOYMENTS => {
            let replica_sets = controlled_by(session, &REPLICA_SETS, object).await?;
            super::describe_deployment::deployment(&mut out, object, &replica_sets);
        }
        k if *k == REPLICA_SETS => {
            let pods = controlled_by(session, &PODS, object).await?;
            super::describe_replica_set::replica_set(&mut out, object, &pods);
        }
        k if *k == SERVICES => {
            let name = object["metadata"]["name"].as_str().unwrap_or_default();
            let selector = format!("{SERVICE_NAME_LABEL}={name}");
            let path = ENDPOINT_SLICES.path(Some(&session.namespace), None);
            let params = ListParams {
                label_selector: Some(selector),
                field_selector: None,
            };
            let slices = session.client.list(&path, &params).await?;
            let slices: Vec<_> = items_of(slices, &ENDPOINT_SLICES)
                .iter()
                .map(decode)
                .collect();
            super::describe_service::service(&mut out, &decode(object), &slices);
        }
        k if *k == NODES => {
            let name = object["metadata"]["name"].as_str().unwrap_or_default();
            let fields =
                format!("spec.nodeName={name},status.phase!=Succeeded,status.phase!=Failed");
            let pods = session
                .client
                .list(&PODS.path(None, None), &ListParams::fields(&fields))
                .await?;
            let pods: Vec<Pod> = items_of(pods, &PODS).iter().map(decode).collect();
            super::describe_node::node(&mut out, &decode(object), &pods, now());
        }
        _ => return Ok(describe(kind, object, events.as_deref(), now())),
    }
    if let Some(events) = &events {
        out.events(events, now());
    }
    Ok(out.render())
}

/// The text `describe` prints for an object whose describer needs nothing else; its events
/// section when given its events.
pub fn describe(
    kind: &Resource,
    object: &Value,
    events: Option<&[Event]>,
    now: Timestamp,
) -> String {
    let mut out = Out::default();
    match kind {
        k if *k == PODS => super::describe_pod::pod(&mut out, &decode(object), now),
        k if *k == NAMESPACES => namespace(&mut out, &decode(object)),
        _ => generic(&mut out, object),
    }
    if let Some(events) = events.filter(|_| *kind != EVENTS && *kind != NAMESPACES) {
        out.events(events, now);
    }
    out.render()
}

/// The objects of `kind` in the session's namespace whose controller is `owner`.
pub(super) async fn controlled_by(
    session: &Session,
    kind: &Resource,
    owner: &Value,
) -> anyhow::Result<Vec<Value>> {
    let path = kind.path(Some(&session.namespace), None);
    let list = session.client.list(&path, &ListParams::default()).await?;
    let uid = &owner["metadata"]["uid"];
    Ok(items_of(list, kind)
        .into_iter()
        .filter(|object| {
            object["metadata"]["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|o| o["uid"] == *uid && o["controller"] == true)
        })
        .collect())
}

fn decode<T: serde::de::DeserializeOwned + Default>(object: &Value) -> T {
    serde::Deserialize::deserialize(object).unwrap_or_default()
}

/// The object's events, oldest first. Asks the server to filter by involvedObject and
/// filters again here, in case the server does not support that field selector.
pub async fn events_for(client: &Client, kind: &Resource, object: &Value) -> Vec<Event> {
    let text = |pointer: &str| {
        object
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (name, uid, namespace) = (
        text("/metadata/name"),
        text("/metadata/uid"),
        text("/metadata/namespace"),
    );
    let namespace = (!namespace.is_empty()).then_some(namespace.as_str());
    let path = EVENTS.path(namespace, None);
    let mut fields = format!(
        "involvedObject.name={name},involvedObject.kind={}",
        kind.kind
    );
    if let Some(namespace) = namespace {
        fields.push_str(&format!(",involvedObject.namespace={namespace}"));
    }
    let listed = match client.list(&path, &ListParams::fields(&fields)).await {
        Ok(list) => Ok(list),
        Err(error) if error.code() == Some(400) => client.list(&path, &ListParams::default()).await,
        Err(error) => Err(error),
    };
    let mut events: Vec<Event> = match listed {
        Ok(list) => items_of(list, &EVENTS)
            .iter()
            .map(decode::<Event>)
            .collect(),
        Err(error) => {
            tracing::warn!(%error, "cannot list events");
            return Vec::new();
        }
    };
    events.retain(|event| {
        let involved = &event.involved_object;
        match (involved.uid.as_deref(), uid.as_str()) {
            (Some(a), b) if !a.is_empty() && !b.is_empty() => a == b,
            _ => {
                involved.name.as_deref() == Some(name.as_str())
                    && involved.kind.as_deref() == Some(kind.kind)
            }
        }
    });
    events.sort_by_key(event_last_seen);
    events
}

/// Tab-separated describe output, aligned by [`tabwrite`] at the end.
#[derive(Default)]
pub struct Out {
    text: String,
}

impl Out {
    /// The text aligned as kubectl's tabwriter would.
    pub fn render(&self) -> String {
        tabwrite(&self.text)
    }

    /// The text with its tabs, for the output kubectl does not align
    /// (`rollout history --revision`).
    pub fn unaligned(&self) -> &str {
        &self.text
    }

    /// `key:\tvalue` at `level` (two spaces a level).
    pub fn field(&mut self, level: usize, key: &str, value: impl Display) {
        self.text
            .push_str(&format!("{}{key}:\t{value}\n", indent(level)));
    }

    /// A line without a value (a section title); ends the current alignment block.
    pub fn line(&mut self, level: usize, text: impl Display) {
        self.text.push_str(&format!("{}{text}\n", indent(level)));
    }

    /// Tab-separated cells at `level` (a table row).
    pub fn row(&mut self, level: usize, cells: &[&str]) {
        self.text
            .push_str(&format!("{}{}\n", indent(level), cells.join("\t")));
    }

    /// `Labels:` style: the first `key=value` on the key's line, the others below it.
    pub fn map(&mut self, level: usize, key: &str, map: Option<&BTreeMap<String, String>>) {
        self.pairs(level, key, map, "=");
    }

    /// `Annotations:` style: `key: value` pairs as [`Out::map`] lays them out, without the
    /// bulky last-applied configuration.
    pub fn annotations(
        &mut self,
        level: usize,
        key: &str,
        annotations: Option<BTreeMap<String, String>>,
    ) {
        let annotations = annotations.map(|mut a| {
            a.remove(super::merge::LAST_APPLIED);
            a
        });
        let shown = annotations.as_ref().filter(|a| !a.is_empty());
        self.pairs(level, key, shown, ": ");
    }

    fn pairs(
        &mut self,
        level: usize,
        key: &str,
        map: Option<&BTreeMap<String, String>>,
        separator: &str,
    ) {
        let pairs: Vec<String> = map
            .iter()
            .flat_map(|m| m.iter())
            .map(|(k, v)| format!("{k}{separator}{v}"))
            .collect();
        match pairs.split_first() {
            None => self.field(level, key, "<none>"),
            Some((first, rest)) => {
                self.field(level, key, first);
                for pair in rest {
                    // No indent, as kubectl: aligned, the pair lands in the value column anyway.
                    self.text.push_str(&format!("\t{pair}\n"));
                }
            }
        }
    }

    fn events(&mut self, events: &[Event], now: Timestamp) {
        if events.is_empty() {
            self.field(0, "Events", "<none>");
            return;
        }
        self.line(0, "Events:");
        self.row(1, &["Type", "Reason", "Age", "From", "Message"]);
        self.row(1, &["----", "------", "----", "----", "-------"]);
        for event in events {
            let last = since(event_last_seen(event), now);
            let age = match event.count.unwrap_or(1) {
                count if count > 1 => {
                    let first = event
                        .first_timestamp
                        .as_ref()
                        .map(|t| t.0)
                        .or(event_last_seen(event));
                    format!("{last} (x{count} over {})", since(first, now))
                }
                _ => last,
            };
            let from = event
                .source
                .as_ref()
                .and_then(|s| s.component.clone())
                .or_else(|| event.reporting_component.clone())
                .unwrap_or_default();
            let message = event.message.clone().unwrap_or_default();
            self.row(
                1,
                &[
                    event.type_.as_deref().unwrap_or_default(),
                    event.reason.as_deref().unwrap_or_default(),
                    &age,
                    &from,
                    message.trim_end(),
                ],
            );
        }
    }
}

fn indent(level: usize) -> String {
    "  ".repeat(level)
}

/// kubectl's time format (RFC 1123 with a numeric zone).
pub fn format_time(time: Option<&Time>) -> String {
    time.map(|t| t.0.strftime("%a, %d %b %Y %H:%M:%S %z").to_string())
        .unwrap_or_else(|| "<unknown>".into())
}

/// Name, Namespace, Labels and Annotations (without the bulky last-applied one).
pub fn metadata(out: &mut Out, meta: &ObjectMeta, namespaced: bool) {
    out.field(0, "Name", meta.name.as_deref().unwrap_or_default());
    if namespaced {
        out.field(
            0,
            "Namespace",
            meta.namespace.as_deref().unwrap_or_default(),
        );
    }
}

pub fn labels_and_annotations(out: &mut Out, meta: &ObjectMeta) {
    out.map(0, "Labels", meta.labels.as_ref());
    out.annotations(0, "Annotations", meta.annotations.clone());
}

/// A JSON value as describe prints it: strings bare, null empty, the rest as JSON.
pub fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A string map (labels, annotations, a selector's matchLabels) of an untyped object.
pub fn string_map(value: &Value) -> Option<BTreeMap<String, String>> {
    serde::Deserialize::deserialize(value).ok()
}

fn namespace(out: &mut Out, namespace: &Namespace) {
    metadata(out, &namespace.metadata, false);
    labels_and_annotations(out, &namespace.metadata);
    let phase = namespace
        .status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default();
    out.field(0, "Status", phase);
    out.line(0, "");
    out.line(0, "No resource quota.");
    out.line(0, "");
    out.line(0, "No LimitRange resource.");
}

/// Kinds without a describer: the object as YAML, without its managed noise.
fn generic(out: &mut Out, object: &Value) {
    let yaml = serde_yaml::to_string(object).unwrap_or_default();
    for line in yaml.lines() {
        out.line(0, line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::kinds::NAMESPACES;
    use serde_json::json;

    #[test]
    fn namespace_description_reads_like_kubectls() {
        let ns = json!({"metadata": {"name": "team", "labels": {"a": "1", "b": "2"}}, "status": {"phase": "Active"}});
        let text = describe(&NAMESPACES, &ns, Some(&[]), now());
        assert_eq!(
            text,
            "Name:         team\nLabels:       a=1\n              b=2\nAnnotations:  <none>\nStatus:       Active\n\nNo resource quota.\n\nNo LimitRange resource.\n"
        );
    }

    #[test]
    fn events_are_tabulated_with_repeat_counts() {
        let now: Timestamp = "2024-01-01T00:10:00Z".parse().unwrap();
        let event: Event = serde_json::from_value(json!({
            "metadata": {"name": "e"}, "involvedObject": {"kind": "Pod", "name": "p"},
            "type": "Warning", "reason": "BackOff", "message": "Back-off restarting failed container",
            "count": 4, "firstTimestamp": "2024-01-01T00:05:00Z", "lastTimestamp": "2024-01-01T00:09:50Z",
            "source": {"component": "kubelet"}
        }))
        .unwrap();
        let mut out = Out::default();
        out.events(&[event], now);
        assert_eq!(
            out.render(),
            "Events:\n  Type     Reason   Age               From     Message\n  ----     ------   ----              ----     -------\n  Warning  BackOff  10s (x4 over 5m)  kubelet  Back-off restarting failed container\n"
        );
    }

    #[test]
    fn times_use_rfc1123_with_a_numeric_zone() {
        let time = Time("2024-01-02T03:04:05Z".parse().unwrap());
        assert_eq!(format_time(Some(&time)), "Tue, 02 Jan 2024 03:04:05 +0000");
    }
}
