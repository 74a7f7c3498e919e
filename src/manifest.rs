//! Manifest decoding: YAML (multi-document), JSON and TOML text into Kubernetes objects.
//!
//! Every format yields the same `serde_json::Value` objects, so one manifest can be written
//! in whichever the user prefers (DESIGN §3). `kind: List` documents are flattened into
//! their `items`; empty YAML documents are skipped.

use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value};

/// The syntax of a manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
    Toml,
    /// Decide from the text itself: JSON if it starts with `{`, TOML if it reads as TOML
    /// (an `apiVersion` key at the top), YAML otherwise.
    Sniff,
}

impl Format {
    /// The format a file's extension names (`.yaml`/`.yml`, `.json`, `.toml`), else `Sniff`.
    pub fn from_path(path: &Path) -> Format {
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("yaml" | "yml") => Format::Yaml,
            Some("json") => Format::Json,
            Some("toml") => Format::Toml,
            _ => Format::Sniff,
        }
    }

    /// The concrete format of `text` when `self` is `Sniff`; `self` otherwise.
    pub fn resolve(self, text: &str) -> Format {
        if self != Format::Sniff {
            return self;
        }
        let body = text.trim_start_matches('\u{feff}').trim_start();
        if body.starts_with('{') {
            return Format::Json;
        }
        match toml::from_str::<toml::Table>(body) {
            Ok(table) if table.contains_key("apiVersion") => Format::Toml,
            // A TOML file with a syntax error should get the TOML error, not a YAML one.
            Err(_) if first_line_is_toml_assignment(body) => Format::Toml,
            _ => Format::Yaml,
        }
    }
}

/// Why a manifest could not be decoded. Documents and lines count from 1.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("error parsing YAML document {document}{}: {message}", at_line(*line))]
    Yaml {
        document: usize,
        line: Option<usize>,
        message: String,
    },
    #[error("error parsing JSON document {document} (line {line}, column {column}): {message}")]
    Json {
        document: usize,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("error parsing TOML{}: {message}", at_line(*line))]
    Toml {
        line: Option<usize>,
        message: String,
    },
    #[error("document {document}: expected an object with apiVersion and kind, found {found}")]
    NotAnObject {
        document: usize,
        found: &'static str,
    },
}

fn at_line(line: Option<usize>) -> String {
    line.map(|l| format!(" (line {l})")).unwrap_or_default()
}

/// Decodes every object in `text`.
///
/// # Errors
/// On the first document that is not valid in its format, or that is not an object
/// (a scalar or a sequence at the top level, or a non-object List item).
pub fn decode_documents(text: &str, hint: Format) -> Result<Vec<Value>, ManifestError> {
    let text = text.trim_start_matches('\u{feff}');
    let documents = match hint.resolve(text) {
        Format::Yaml | Format::Sniff => decode_yaml(text)?,
        Format::Json => decode_json(text)?,
        Format::Toml => vec![(1, decode_toml(text)?)],
    };
    let mut objects = Vec::new();
    for (document, value) in documents {
        flatten(document, value, &mut objects)?;
    }
    Ok(objects)
}

/// Documents of a YAML stream, numbered in the file, without the empty ones.
fn decode_yaml(text: &str) -> Result<Vec<(usize, Value)>, ManifestError> {
    let mut documents = Vec::new();
    for (index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value = Value::deserialize(document).map_err(|e| ManifestError::Yaml {
            document: index + 1,
            line: e.location().map(|l| l.line()),
            message: strip_location(&e.to_string()),
        })?;
        if !value.is_null() {
            documents.push((index + 1, value));
        }
    }
    Ok(documents)
}

/// serde_yaml appends " at line L column C" to its messages; we report the line ourselves.
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_string(),
        None => message.to_string(),
    }
}

/// A JSON object, or several concatenated (as `kubectl` accepts).
fn decode_json(text: &str) -> Result<Vec<(usize, Value)>, ManifestError> {
    let mut documents = Vec::new();
    for (index, value) in serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .enumerate()
    {
        let value = value.map_err(|e| ManifestError::Json {
            document: index + 1,
            line: e.line(),
            column: e.column(),
            message: strip_location(&e.to_string()),
        })?;
        documents.push((index + 1, value));
    }
    Ok(documents)
}

fn decode_toml(text: &str) -> Result<Value, ManifestError> {
    let table = toml::from_str::<toml::Table>(text).map_err(|e| ManifestError::Toml {
        line: e.span().map(|span| line_of(text, span.start)),
        message: e.message().trim().to_string(),
    })?;
    Ok(toml_to_json(toml::Value::Table(table)))
}

/// TOML values as JSON; datetimes become RFC 3339 strings as Kubernetes expects.
fn toml_to_json(value: toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(items) => Value::Array(items.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(table) => Value::Object(
            table
                .into_iter()
                .map(|(k, v)| (k, toml_to_json(v)))
                .collect::<Map<_, _>>(),
        ),
    }
}

/// Pushes `value`, or the items of a List, onto `objects`.
fn flatten(document: usize, value: Value, objects: &mut Vec<Value>) -> Result<(), ManifestError> {
    let Value::Object(mut object) = value else {
        return Err(ManifestError::NotAnObject {
            document,
            found: type_name(&value),
        });
    };
    let is_list = object
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|kind| kind == "List" || kind.ends_with("List"))
        && object.get("items").is_some_and(Value::is_array);
    if !is_list {
        objects.push(Value::Object(object));
        return Ok(());
    }
    if let Some(Value::Array(items)) = object.remove("items") {
        for item in items {
            flatten(document, item, objects)?;
        }
    }
    Ok(())
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The 1-based line holding byte `offset`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Whether the first line that is not blank or a comment reads `key = ...` or `[table]`.
fn first_line_is_toml_assignment(text: &str) -> bool {
    let Some(line) = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
    else {
        return false;
    };
    if line.starts_with('[') {
        return line.ends_with(']') && !line.contains(", ");
    }
    match (line.find('='), line.find(':')) {
        (Some(eq), colon) => colon.is_none_or(|c| eq < c) && is_toml_key(line[..eq].trim()),
        (None, _) => false,
    }
}

fn is_toml_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '"' | '\'' | ' '))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml_stream_yields_each_document_and_skips_empty_ones() {
        let text = "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n---\n---\n# only a comment\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n";
        let objects = decode_documents(text, Format::Yaml).unwrap();
        assert_eq!(objects.len(), 2);
        assert_eq!(objects[0]["metadata"]["name"], "a");
        assert_eq!(objects[1]["kind"], "Namespace");
    }

    #[test]
    fn yaml_list_is_flattened_into_its_items() {
        let text = "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Pod, metadata: {name: a}}\n- {apiVersion: v1, kind: Pod, metadata: {name: b}}\n";
        let names: Vec<_> = decode_documents(text, Format::Yaml)
            .unwrap()
            .iter()
            .map(|o| o["metadata"]["name"].clone())
            .collect();
        assert_eq!(names, vec![json!("a"), json!("b")]);
    }

    #[test]
    fn yaml_error_names_the_document_and_line() {
        let text =
            "apiVersion: v1\nkind: Pod\n---\napiVersion: v1\nkind: [unclosed\nmetadata: {}\n";
        let error = decode_documents(text, Format::Yaml).unwrap_err();
        match &error {
            ManifestError::Yaml { document, line, .. } => {
                assert_eq!(*document, 2);
                assert!(matches!(line, Some(5..=7)), "line {line:?}");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(
            error
                .to_string()
                .starts_with("error parsing YAML document 2 (line"),
            "{error}"
        );
    }

    #[test]
    fn scalar_document_is_rejected() {
        let error = decode_documents("just a string\n", Format::Yaml).unwrap_err();
        assert_eq!(
            error.to_string(),
            "document 1: expected an object with apiVersion and kind, found a string"
        );
    }

    #[test]
    fn json_object_and_json_list_decode() {
        let one = decode_documents(
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"}}"#,
            Format::Json,
        )
        .unwrap();
        assert_eq!(one.len(), 1);
        let list = r#"{"apiVersion":"v1","kind":"List","items":[{"kind":"Pod"},{"kind":"Node"}]}"#;
        assert_eq!(decode_documents(list, Format::Json).unwrap().len(), 2);
    }

    #[test]
    fn json_error_names_line_and_column() {
        let error =
            decode_documents("{\n  \"kind\": \"Pod\",\n  oops\n}", Format::Json).unwrap_err();
        assert!(
            matches!(error, ManifestError::Json { line: 3, .. }),
            "{error:?}"
        );
    }

    #[test]
    fn toml_maps_one_to_one_onto_the_same_fields() {
        let text = r#"
apiVersion = "apps/v1"
kind = "Deployment"
[metadata]
name = "web"
[spec]
replicas = 3
selector.matchLabels.app = "web"
template.metadata.labels.app = "web"
[[spec.template.spec.containers]]
name = "web"
image = "wasm-samples/hello-http.wasm"
ports = [{ containerPort = 8080 }]
"#;
        let objects = decode_documents(text, Format::Toml).unwrap();
        assert_eq!(
            objects,
            vec![json!({
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "web"},
                "spec": {
                    "replicas": 3,
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": {
                        "metadata": {"labels": {"app": "web"}},
                        "spec": {"containers": [{
                            "name": "web",
                            "image": "wasm-samples/hello-http.wasm",
                            "ports": [{"containerPort": 8080}]
                        }]}
                    }
                }
            })]
        );
    }

    #[test]
    fn toml_list_is_flattened_and_datetimes_become_strings() {
        let text = "apiVersion = \"v1\"\nkind = \"List\"\n[[items]]\nkind = \"Pod\"\nat = 2024-01-02T03:04:05Z\n[[items]]\nkind = \"Pod\"\n";
        let objects = decode_documents(text, Format::Toml).unwrap();
        assert_eq!(objects.len(), 2);
        assert_eq!(objects[0]["at"], "2024-01-02T03:04:05Z");
    }

    #[test]
    fn toml_error_names_the_line() {
        let error = decode_documents(
            "apiVersion = \"v1\"\nkind = \"Pod\"\nname = \n",
            Format::Toml,
        )
        .unwrap_err();
        assert!(
            matches!(error, ManifestError::Toml { line: Some(3), .. }),
            "{error:?}"
        );
    }

    #[test]
    fn sniffing_tells_json_toml_and_yaml_apart() {
        assert_eq!(Format::Sniff.resolve("  {\"kind\": \"Pod\"}"), Format::Json);
        assert_eq!(
            Format::Sniff.resolve("# c\napiVersion = \"v1\"\nkind = \"Pod\"\n"),
            Format::Toml
        );
        assert_eq!(
            Format::Sniff.resolve("apiVersion: v1\nkind: Pod\n"),
            Format::Yaml
        );
        assert_eq!(
            Format::Sniff.resolve("kind: Pod\nnote: a = b\n"),
            Format::Yaml
        );
        // Broken TOML is still reported as TOML.
        assert_eq!(
            Format::Sniff.resolve("apiVersion = \"v1\nkind = \"Pod\"\n"),
            Format::Toml
        );
        // TOML without apiVersion is not a manifest; YAML gets to say why.
        assert_eq!(Format::Sniff.resolve("- a\n- b\n"), Format::Yaml);
    }

    #[test]
    fn format_follows_the_file_extension() {
        assert_eq!(Format::from_path(Path::new("a/b.YML")), Format::Yaml);
        assert_eq!(Format::from_path(Path::new("b.yaml")), Format::Yaml);
        assert_eq!(Format::from_path(Path::new("b.json")), Format::Json);
        assert_eq!(Format::from_path(Path::new("b.toml")), Format::Toml);
        assert_eq!(Format::from_path(Path::new("b")), Format::Sniff);
    }
}
