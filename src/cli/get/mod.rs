//! `get TYPE [NAME...]`: tables, `-o wide|json|yaml|name|custom-columns=…|jsonpath=…`,
//! `--sort-by`, `--no-headers`, `-w`.

mod output;

use anyhow::bail;
use clap::Args;
use futures::StreamExt;
use serde_json::{Value, json};

use output::{Flags, Printer, sort_by};
pub use output::{OutputFormat, to_json_pretty};

use super::{Reported, Session, Targets, parse_targets, print, report};
use crate::api::kinds::{EVENTS, Resource};
use crate::api::objects::take_items;
use crate::api::printers::event::event_last_seen;
use crate::api::printers::jsonpath::Template;
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
    /// Output format: wide, json, yaml, name, custom-columns=NAME:.path,… or jsonpath=TEMPLATE
    #[arg(short = 'o', long, value_name = "FORMAT")]
    pub output: Option<OutputFormat>,
    /// Sort by a JSONPath expression (`.metadata.name`, `{.status.startTime}`)
    #[arg(long, value_name = "JSONPATH", value_parser = parse_sort_key)]
    pub sort_by: Option<Template>,
    /// Leave out the header row of tables and custom columns
    #[arg(long)]
    pub no_headers: bool,
    /// After listing, watch for changes
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// Show all labels as the last column
    #[arg(long)]
    pub show_labels: bool,
}

pub async fn run(session: &Session, args: GetArgs) -> anyhow::Result<()> {
    let groups = parse_targets(&args.resources)?;
    if args.watch && groups.len() > 1 {
        bail!("you may only specify a single resource type when watching");
    }
    let mut failed = false;
    for (index, group) in groups.iter().enumerate() {
        if index > 0 && matches!(args.output, None | Some(OutputFormat::Wide)) {
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
    match &args.sort_by {
        Some(key) => sort_by(&mut items, key),
        None if *kind == EVENTS => sort_events(&mut items),
        None => {}
    }
    let single = group.names.len() == 1;
    let flags = Flags {
        all_namespaces: all,
        show_labels: args.show_labels,
        no_headers: args.no_headers,
    };
    let mut printer = Printer::new(kind, args.output.clone(), flags);
    let documents = args.output.as_ref().is_some_and(OutputFormat::is_document);
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

/// `--sort-by`'s expression.
fn parse_sort_key(text: &str) -> Result<Template, String> {
    Template::parse(text).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::kinds::{NODES, PODS};

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
