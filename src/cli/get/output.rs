//! How `get` prints: tables (`-o wide`, `--no-headers`, `--show-labels`), documents (`-o
//! json|yaml`), names, `-o custom-columns=NAME:.path,…` and `-o jsonpath=TEMPLATE`; sorted by
//! `--sort-by` as kubectl sorts.

use std::cmp::Ordering;
use std::str::FromStr;

use serde_json::{Value, json};

use crate::api::kinds::Resource;
use crate::api::printers::jsonpath::{self, Template};
use crate::api::printers::now;
use crate::cli::columns::Columns;
use crate::cli::table::Table;

#[derive(Clone, Debug)]
pub enum OutputFormat {
    Wide,
    Json,
    Yaml,
    Name,
    CustomColumns(Vec<(String, Template)>),
    JsonPath(Template),
}

impl OutputFormat {
    /// Whether objects are printed as whole documents (a List when there are several).
    pub fn is_document(&self) -> bool {
        matches!(self, OutputFormat::Json | OutputFormat::Yaml)
    }
}

impl FromStr for OutputFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let template = |t: &str| Template::parse(t).map_err(|e| e.to_string());
        match text.split_once('=') {
            Some(("jsonpath", t)) => return Ok(OutputFormat::JsonPath(template(t)?)),
            Some(("custom-columns", spec)) => return custom_columns(spec),
            _ => {}
        }
        match text {
            "wide" => Ok(OutputFormat::Wide),
            "json" => Ok(OutputFormat::Json),
            "yaml" => Ok(OutputFormat::Yaml),
            "name" => Ok(OutputFormat::Name),
            other => Err(format!(
                "unable to match a printer suitable for the output format \"{other}\", allowed formats are: custom-columns,json,jsonpath,name,wide,yaml"
            )),
        }
    }
}

/// `NAME:.metadata.name,IMAGE:.spec.containers[*].image`.
fn custom_columns(spec: &str) -> Result<OutputFormat, String> {
    let mut columns = Vec::new();
    for column in spec.split(',').filter(|c| !c.is_empty()) {
        let Some((header, path)) = column.split_once(':') else {
            return Err(format!(
                "unexpected custom-columns spec: {column}, expected <header>:<json-path-expr>"
            ));
        };
        let template = Template::parse(path).map_err(|e| e.to_string())?;
        columns.push((header.to_string(), template));
    }
    if columns.is_empty() {
        return Err("custom-columns format specified but no custom columns given".into());
    }
    Ok(OutputFormat::CustomColumns(columns))
}

/// Sorts `items` by what `key` finds in each, numbers by value and text lexically; objects
/// without it first.
pub fn sort_by(items: &mut [Value], key: &Template) {
    items.sort_by(|a, b| {
        compare(
            key.values(a).first().copied(),
            key.values(b).first().copied(),
        )
    });
}

fn compare(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a, b) {
        (Some(Value::Number(a)), Some(Value::Number(b))) => {
            let (a, b) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
            a.partial_cmp(&b).unwrap_or(Ordering::Equal)
        }
        (Some(a), Some(b)) => jsonpath::text(a).cmp(&jsonpath::text(b)),
        (a, b) => a.is_some().cmp(&b.is_some()),
    }
}

/// Renders objects in the chosen output format; tables remember their column widths.
pub struct Printer {
    pub output: Option<OutputFormat>,
    pub columns: Columns,
    pub headers: bool,
    pub table: Table,
    pub started: bool,
}

impl Printer {
    pub fn new(kind: &'static Resource, output: Option<OutputFormat>, flags: Flags) -> Printer {
        Printer {
            columns: Columns {
                kind,
                wide: matches!(output, Some(OutputFormat::Wide)),
                namespace: flags.all_namespaces,
                labels: flags.show_labels,
            },
            output,
            headers: !flags.no_headers,
            table: Table::new(),
            started: false,
        }
    }

    /// The objects of one `get`; `single` prints a lone object rather than a List.
    pub fn render_list(&mut self, items: &[Value], single: bool) -> anyhow::Result<String> {
        let document = match items {
            [item] if single => item.clone(),
            _ => {
                json!({"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}})
            }
        };
        match &self.output {
            Some(OutputFormat::Json | OutputFormat::Yaml) => self.render_document(&document),
            Some(OutputFormat::JsonPath(template)) => Ok(template.render(&document)),
            Some(OutputFormat::Name) => Ok(items.iter().map(|i| self.name_line(i)).collect()),
            _ => Ok(self.rows(items)),
        }
    }

    /// One object as a watch prints it.
    pub fn render_one(&mut self, object: &Value) -> anyhow::Result<String> {
        match &self.output {
            Some(OutputFormat::Json | OutputFormat::Yaml) => self.render_document(object),
            Some(OutputFormat::JsonPath(template)) => Ok(template.render(object)),
            Some(OutputFormat::Name) => Ok(self.name_line(object)),
            _ => Ok(self.rows(std::slice::from_ref(object))),
        }
    }

    /// Table rows, with the header row the first time.
    fn rows(&mut self, items: &[Value]) -> String {
        let mut rows = Vec::new();
        if self.headers && !self.started {
            rows.push(self.header_row());
        }
        self.started = true;
        let now = now();
        for item in items {
            rows.push(match &self.output {
                Some(OutputFormat::CustomColumns(columns)) => custom_row(columns, item),
                _ => self.columns.row(item, now),
            });
        }
        self.table.render(&rows)
    }

    fn header_row(&self) -> Vec<String> {
        match &self.output {
            Some(OutputFormat::CustomColumns(columns)) => {
                columns.iter().map(|(header, _)| header.clone()).collect()
            }
            _ => self.columns.headers(),
        }
    }

    fn render_document(&mut self, document: &Value) -> anyhow::Result<String> {
        let text = match self.output {
            Some(OutputFormat::Yaml) => {
                let yaml = serde_yaml::to_string(document)?;
                if self.started {
                    format!("---\n{yaml}")
                } else {
                    yaml
                }
            }
            _ => format!("{}\n", to_json_pretty(document)),
        };
        self.started = true;
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

/// The flags that shape a table.
#[derive(Clone, Copy, Debug, Default)]
pub struct Flags {
    pub all_namespaces: bool,
    pub show_labels: bool,
    pub no_headers: bool,
}

/// One row of custom columns: each column's values joined by commas, `<none>` when absent.
fn custom_row(columns: &[(String, Template)], item: &Value) -> Vec<String> {
    columns
        .iter()
        .map(|(_, template)| {
            let values: Vec<String> = template
                .values(item)
                .into_iter()
                .map(jsonpath::text)
                .collect();
            if values.is_empty() {
                "<none>".to_string()
            } else {
                values.join(",")
            }
        })
        .collect()
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
    use crate::api::kinds::PODS;

    fn pods() -> Vec<Value> {
        vec![
            json!({"metadata": {"name": "b", "labels": {"n": "10"}}, "spec": {"containers": [{"image": "x"}, {"image": "y"}]}}),
            json!({"metadata": {"name": "a", "labels": {"n": "9"}}, "spec": {"containers": []}}),
        ]
    }

    #[test]
    fn custom_columns_join_several_values_and_mark_missing_ones() {
        let output: OutputFormat =
            "custom-columns=NAME:.metadata.name,IMAGES:.spec.containers[*].image"
                .parse()
                .unwrap();
        let mut printer = Printer::new(&PODS, Some(output), Flags::default());
        assert_eq!(
            printer.render_list(&pods(), false).unwrap(),
            "NAME   IMAGES\nb      x,y\na      <none>\n"
        );
        let bare: OutputFormat = "custom-columns=N:.metadata.name".parse().unwrap();
        let no_headers = Flags {
            no_headers: true,
            ..Flags::default()
        };
        let mut printer = Printer::new(&PODS, Some(bare), no_headers);
        assert_eq!(printer.render_list(&pods(), false).unwrap(), "b\na\n");
    }

    #[test]
    fn jsonpath_reads_the_list_and_sort_by_orders_it() {
        let mut items = pods();
        sort_by(&mut items, &Template::parse(".metadata.name").unwrap());
        let output: OutputFormat = "jsonpath={.items[*].metadata.name}".parse().unwrap();
        let mut printer = Printer::new(&PODS, Some(output), Flags::default());
        assert_eq!(printer.render_list(&items, false).unwrap(), "a b");
        sort_by(
            &mut items,
            &Template::parse("{.metadata.labels.n}").unwrap(),
        );
        assert_eq!(items[0]["metadata"]["name"], "b", "\"10\" < \"9\" as text");
    }

    #[test]
    fn unknown_formats_name_the_allowed_ones() {
        let error = "table".parse::<OutputFormat>().unwrap_err();
        assert!(error.contains("custom-columns,json,jsonpath"), "{error}");
        assert!("custom-columns=NAME".parse::<OutputFormat>().is_err());
    }
}
