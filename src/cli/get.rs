//! `get TYPE [NAME...]`: tables, `-o wide|json|yaml|name`, `-w`.

use std::str::FromStr;

use anyhow::bail;
use clap::Args;
use futures::StreamExt;
use serde_json::{Value, json};

use super::columns::Columns;
use super::table::Table;
use super::{Reported, Session, Targets, parse_targets, print, report};
use crate::api::kinds::{EVENTS, Resource};
use crate::api::objects::take_items;
use crate::api::printers::event::event_last_seen;
use crate::api::printers::now;
use crate::client::{Client, ListParams, WatchEventType};

#[derive(Debug, Args)]
pub struct GetArgs {
    /// TYPE [NAME...], TYPE1,TYPE2 or TYPE/NAME... (pods|po, nodes|no, namespaces|ns, events|ev)
    #[arg(required = true, value_name = "TYPE")]
    pub resources: Vec<String>,
    /// List across all namespaces
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Label selector (`app=web`, `tier!=db`, `env in (a,b)`, `!legacy`)
    #[arg(short = 'l', long = "selector", value_name = "SELECTOR")]
    pub selector: Option<String>,
    /// Field selector (`metadata.name=x`, `spec.nodeName=n1`, `status.phase=Running`)
    #[arg(long, value_name = "SELECTOR")]
    pub field_selector: Option<String>,
    /// Output format: wide, json, yaml or name
    #[arg(short = 'o', long, value_name = "FORMAT")]
    pub output: Option<OutputFormat>,
    /// After listing, watch for changes
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// Show all labels as the last column
    #[arg(long)]
    pub show_labels: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Wide,
    Json,
    Yaml,
    Name,
}

impl FromStr for OutputFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "wide" => Ok(OutputFormat::Wide),
            "json" => Ok(OutputFormat::Json),
            "yaml" => Ok(OutputFormat::Yaml),
            "name" => Ok(OutputFormat::Name),
            other => Err(format!(
                "unable to match a printer suitable for the output format \"{other}\", allowed formats are: json,name,wide,yaml"
            )),
        }
    }
}

pub async fn run(session: &Session, args: GetArgs) -> anyhow::Result<()> {
    let groups = parse_targets(&args.resources)?;
    if args.watch && groups.len() > 1 {
        bail!("you may only specify a single resource type when watching");
    }
    let mut failed = false;
    for (index, group) in groups.iter().enumerate() {
        if index > 0 && args.output.is_none_or(|o| o == OutputFormat::Wide) {
            print("\n")?;
        }
        failed |= !get_group(session, &args, group).await?;
    }
    if failed { Err(Reported.into()) } else { Ok(()) }
}

/// Prints one kind's objects; false when some named object could not be read.
async fn get_group(session: &Session, args: &GetArgs, group: &Targets) -> anyhow::Result<bool> {
    let kind = group.kind;
    let all = args.all_namespaces && kind.namespaced;
    let namespace = (!all).then_some(session.namespace.as_str());
    let params = ListParams {
        label_selector: args.selector.clone(),
        field_selector: args.field_selector.clone(),
    };
    let mut errors = Vec::new();
    let (mut items, resource_version) = if group.names.is_empty() {
        let list = session
            .client
            .list(&kind.path(namespace, None), &params)
            .await?;
        let version = list
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_string);
        (items_of(list, kind), version)
    } else {
        let mut items = Vec::new();
        for name in &group.names {
            match session.client.get(&kind.path(namespace, Some(name))).await {
                Ok(object) => items.push(with_type(object, kind)),
                // Reported after the table, as kubectl does.
                Err(error) => errors.push(anyhow::Error::from(error)),
            }
        }
        (items, None)
    };
    if *kind == EVENTS {
        sort_events(&mut items);
    }
    let single = group.names.len() == 1;
    let mut printer = Printer::new(kind, args, all);
    let documents = args
        .output
        .is_some_and(|o| matches!(o, OutputFormat::Json | OutputFormat::Yaml));
    if items.is_empty() && group.names.is_empty() && (args.watch || !documents) {
        eprintln!("{}", no_resources(namespace, kind));
    } else if !items.is_empty() || group.names.is_empty() {
        print(&printer.render_list(&items, single)?)?;
    }
    for error in &errors {
        report(error);
    }
    if items.is_empty() && !args.watch {
        return Ok(errors.is_empty());
    }
    if args.watch {
        let name = (group.names.len() == 1).then(|| group.names[0].as_str());
        watch(
            &session.client,
            kind,
            namespace,
            name,
            params,
            resource_version,
            &mut printer,
        )
        .await?;
    }
    Ok(errors.is_empty())
}

/// `No resources found in default namespace.` / `No resources found`.
pub fn no_resources(namespace: Option<&str>, kind: &Resource) -> String {
    match namespace {
        Some(ns) if kind.namespaced => format!("No resources found in {ns} namespace."),
        _ => "No resources found".to_string(),
    }
}

/// The items of a list, with the `kind` and `apiVersion` servers leave out of items.
pub fn items_of(mut list: Value, kind: &Resource) -> Vec<Value> {
    take_items(&mut list)
        .into_iter()
        .map(|item| with_type(item, kind))
        .collect()
}

fn with_type(mut object: Value, kind: &Resource) -> Value {
    if let Some(map) = object.as_object_mut() {
        map.entry("apiVersion")
            .or_insert_with(|| json!(kind.api_version()));
        map.entry("kind").or_insert_with(|| json!(kind.kind));
    }
    object
}

fn sort_events(events: &mut [Value]) {
    events.sort_by_key(|event| {
        serde_json::from_value::<k8s_openapi::api::core::v1::Event>(event.clone())
            .ok()
            .and_then(|e| event_last_seen(&e))
    });
}

/// Watches from `resource_version`, printing each change; re-lists when the version is
/// too old and resumes when the server ends the stream.
async fn watch(
    client: &Client,
    kind: &'static Resource,
    namespace: Option<&str>,
    name: Option<&str>,
    mut params: ListParams,
    mut resource_version: Option<String>,
    printer: &mut Printer,
) -> anyhow::Result<()> {
    if let Some(name) = name {
        let by_name = format!("metadata.name={name}");
        params.field_selector = Some(match params.field_selector.take() {
            Some(fields) if !fields.is_empty() => format!("{fields},{by_name}"),
            _ => by_name,
        });
    }
    let path = kind.path(namespace, None);
    loop {
        let mut events = client
            .watch(&path, &params, resource_version.as_deref())
            .await?;
        while let Some(event) = events.next().await {
            let event = match event {
                Ok(event) => event,
                Err(error) if error.code() == Some(410) => {
                    resource_version = None;
                    break;
                }
                Err(error) => return Err(error.into()),
            };
            if let Some(version) = event
                .object
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
            {
                resource_version = Some(version.to_string());
            }
            if event.event_type == WatchEventType::Bookmark {
                continue;
            }
            print(&printer.render_one(&with_type(event.object, kind))?)?;
        }
    }
}

/// Renders objects in the chosen output format; tables remember their column widths.
struct Printer {
    output: Option<OutputFormat>,
    columns: Columns,
    table: Table,
    headers_printed: bool,
}

impl Printer {
    fn new(kind: &'static Resource, args: &GetArgs, all_namespaces: bool) -> Printer {
        Printer {
            output: args.output,
            columns: Columns {
                kind,
                wide: args.output == Some(OutputFormat::Wide),
                namespace: all_namespaces,
                labels: args.show_labels,
            },
            table: Table::new(),
            headers_printed: false,
        }
    }

    /// The objects of one `get`; `single` prints a lone object rather than a List.
    fn render_list(&mut self, items: &[Value], single: bool) -> anyhow::Result<String> {
        match self.output {
            Some(OutputFormat::Json | OutputFormat::Yaml) => {
                let document = match items {
                    [item] if single => item.clone(),
                    _ => {
                        json!({"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}})
                    }
                };
                self.render_document(&document)
            }
            Some(OutputFormat::Name) => Ok(items.iter().map(|i| self.name_line(i)).collect()),
            _ => {
                let now = now();
                let mut rows = vec![self.columns.headers()];
                rows.extend(items.iter().map(|item| self.columns.row(item, now)));
                self.headers_printed = true;
                Ok(self.table.render(&rows))
            }
        }
    }

    /// One object as a watch prints it.
    fn render_one(&mut self, object: &Value) -> anyhow::Result<String> {
        match self.output {
            Some(OutputFormat::Json | OutputFormat::Yaml) => self.render_document(object),
            Some(OutputFormat::Name) => Ok(self.name_line(object)),
            _ => {
                let mut rows = Vec::new();
                if !self.headers_printed {
                    rows.push(self.columns.headers());
                    self.headers_printed = true;
                }
                rows.push(self.columns.row(object, now()));
                Ok(self.table.render(&rows))
            }
        }
    }

    fn render_document(&mut self, document: &Value) -> anyhow::Result<String> {
        let text = match self.output {
            Some(OutputFormat::Yaml) => {
                let yaml = serde_yaml::to_string(document)?;
                if self.headers_printed {
                    format!("---\n{yaml}")
                } else {
                    yaml
                }
            }
            _ => format!("{}\n", to_json_pretty(document)),
        };
        self.headers_printed = true;
        Ok(text)
    }

    fn name_line(&self, object: &Value) -> String {
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        format!("{}\n", self.columns.kind.object_name(name))
    }
}

/// JSON indented by four spaces, as kubectl prints it.
pub fn to_json_pretty(value: &Value) -> String {
    use serde::Serialize;
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    value
        .serialize(&mut serializer)
        .expect("JSON values always serialize");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::kinds::{NODES, PODS};

    #[test]
    fn output_formats_parse_with_kubectls_error() {
        assert_eq!("wide".parse(), Ok(OutputFormat::Wide));
        assert_eq!("name".parse(), Ok(OutputFormat::Name));
        let error = "jsonpath={.x}".parse::<OutputFormat>().unwrap_err();
        assert!(error.ends_with("allowed formats are: json,name,wide,yaml"));
    }

    #[test]
    fn list_items_get_their_kind_back() {
        let list = json!({"kind": "PodList", "items": [{"metadata": {"name": "a"}}]});
        let items = items_of(list, &PODS);
        assert_eq!(items[0]["kind"], "Pod");
        assert_eq!(items[0]["apiVersion"], "v1");
    }

    #[test]
    fn empty_results_name_the_namespace_for_namespaced_kinds() {
        assert_eq!(
            no_resources(Some("default"), &PODS),
            "No resources found in default namespace."
        );
        assert_eq!(no_resources(None, &PODS), "No resources found");
        assert_eq!(no_resources(Some("default"), &NODES), "No resources found");
    }

    #[test]
    fn json_is_indented_by_four_spaces() {
        assert_eq!(
            to_json_pretty(&json!({"a": [1]})),
            "{\n    \"a\": [\n        1\n    ]\n}"
        );
    }
}
