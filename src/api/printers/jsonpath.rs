//! kubectl's JSONPath templates (`-o jsonpath=…`, `-o custom-columns=…`, `--sort-by`, and
//! CustomResourceDefinitions' printer columns): text
//! with `{expression}` blocks, `{range expression}…{end}` and `{"literal"}`, the expressions
//! in kubectl's dialect (`.metadata.labels.app\.kubernetes\.io/name`, `[?(@.type=="Ready")]`)
//! translated to RFC 9535 queries and run by `serde_json_path`.

use serde_json::Value;
use serde_json_path::JsonPath;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("unclosed action in template {0:?}")]
    Unclosed(String),
    #[error("{{end}} without {{range}} in template {0:?}")]
    UnmatchedEnd(String),
    #[error("{{range}} without {{end}} in template {0:?}")]
    UnclosedRange(String),
    #[error("unrecognized JSONPath {expression:?}: {message}")]
    Query { expression: String, message: String },
}

/// A parsed template.
#[derive(Clone, Debug)]
pub struct Template(Vec<Part>);

#[derive(Clone, Debug)]
enum Part {
    Text(String),
    Query(JsonPath),
    Range(JsonPath, Vec<Part>),
}

impl Template {
    /// Parses a template: `{.metadata.name}{"\n"}`, or a bare expression (`.metadata.name`,
    /// as custom columns and `--sort-by` take it).
    ///
    /// # Errors
    /// For unbalanced braces or ranges and for expressions that are not JSONPath.
    pub fn parse(text: &str) -> Result<Template, Error> {
        let text = if text.contains('{') {
            text.to_string()
        } else {
            format!("{{{text}}}")
        };
        let mut stack: Vec<(Option<JsonPath>, Vec<Part>)> = vec![(None, Vec::new())];
        let mut rest = text.as_str();
        while !rest.is_empty() {
            let Some(open) = rest.find('{') else {
                push(&mut stack, Part::Text(rest.to_string()));
                break;
            };
            if open > 0 {
                push(&mut stack, Part::Text(rest[..open].to_string()));
            }
            let close =
                closing_brace(&rest[open..]).ok_or_else(|| Error::Unclosed(text.clone()))?;
            let action = rest[open + 1..open + close].trim();
            rest = &rest[open + close + 1..];
            if let Some(expression) = action.strip_prefix("range ") {
                stack.push((Some(query(expression)?), Vec::new()));
            } else if action == "end" {
                let range = (stack.len() > 1).then(|| stack.pop()).flatten();
                let Some((Some(path), body)) = range else {
                    return Err(Error::UnmatchedEnd(text.clone()));
                };
                push(&mut stack, Part::Range(path, body));
            } else if let Some(literal) = string_literal(action) {
                push(&mut stack, Part::Text(literal));
            } else {
                push(&mut stack, Part::Query(query(action)?));
            }
        }
        match stack.pop() {
            Some((None, parts)) if stack.is_empty() => Ok(Template(parts)),
            _ => Err(Error::UnclosedRange(text.clone())),
        }
    }

    /// The template filled from `data`: several results of one expression are separated by
    /// spaces, strings print bare, everything else as JSON.
    pub fn render(&self, data: &Value) -> String {
        let mut out = String::new();
        render_parts(&self.0, data, &mut out);
        out
    }

    /// What the template's single expression finds in `data`.
    pub fn values<'a>(&self, data: &'a Value) -> Vec<&'a Value> {
        match self.0.as_slice() {
            [Part::Query(path)] => path.query(data).all(),
            _ => Vec::new(),
        }
    }
}

fn push(stack: &mut [(Option<JsonPath>, Vec<Part>)], part: Part) {
    stack
        .last_mut()
        .expect("the outermost level stays")
        .1
        .push(part);
}

fn render_parts(parts: &[Part], data: &Value, out: &mut String) {
    for part in parts {
        match part {
            Part::Text(text) => out.push_str(text),
            Part::Query(path) => {
                let values: Vec<String> = path.query(data).all().into_iter().map(text).collect();
                out.push_str(&values.join(" "));
            }
            Part::Range(path, body) => {
                for item in path.query(data).all() {
                    render_parts(body, item, out);
                }
            }
        }
    }
}

/// A value as kubectl prints it in a template or a column.
pub fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Where the `}` closing the `{` at the start of `text` is, skipping quoted strings.
fn closing_brace(text: &str) -> Option<usize> {
    let mut quote = None;
    let mut escaped = false;
    for (index, c) in text.char_indices().skip(1) {
        match (quote, c) {
            (Some(_), '\\') if !escaped => {
                escaped = true;
                continue;
            }
            (Some(q), c) if c == q && !escaped => quote = None,
            (None, '"' | '\'') => quote = Some(c),
            (None, '}') => return Some(index),
            _ => {}
        }
        escaped = false;
    }
    None
}

/// `"\n"` → a newline: a quoted literal with Go's escapes.
fn string_literal(action: &str) -> Option<String> {
    let inner = action.strip_prefix('"')?.strip_suffix('"')?;
    serde_json::from_str(&format!("\"{inner}\"")).ok()
}

/// kubectl's expression as an RFC 9535 query: `.a.b-c` → `$['a']['b-c']`.
fn query(expression: &str) -> Result<JsonPath, Error> {
    let translated = translate(expression);
    JsonPath::parse(&translated).map_err(|error| Error::Query {
        expression: expression.to_string(),
        message: error.to_string(),
    })
}

fn translate(expression: &str) -> String {
    let body = expression.trim().trim_start_matches('$');
    let mut out = String::from("$");
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '.' if chars.peek() == Some(&'.') => {
                chars.next();
                out.push_str("..");
                member(&mut chars, &mut out, true);
            }
            '.' => member(&mut chars, &mut out, false),
            '[' => {
                out.push('[');
                copy_bracket(&mut chars, &mut out);
            }
            other => out.push(other),
        }
    }
    out
}

/// A dotted member name (with `\.` for a dot inside it) as `['name']`, or `*` as `[*]`.
fn member(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, out: &mut String, descent: bool) {
    let mut name = String::new();
    while let Some(&c) = chars.peek() {
        match c {
            '\\' => {
                chars.next();
                name.extend(chars.next());
            }
            '.' | '[' => break,
            other => {
                name.push(other);
                chars.next();
            }
        }
    }
    match (name.as_str(), descent) {
        ("", _) => {}
        ("*", false) => out.push_str("[*]"),
        ("*", true) => out.push('*'),
        (name, true) => out.push_str(&format!("['{}']", name.replace('\'', "\\'"))),
        (name, false) => out.push_str(&format!("['{}']", name.replace('\'', "\\'"))),
    }
}

/// Copies a bracket selector through its `]`, leaving quoted strings alone.
fn copy_bracket(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, out: &mut String) {
    let mut depth = 1;
    let mut quote = None;
    for c in chars.by_ref() {
        out.push(c);
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (None, '"' | '\'') => quote = Some(c),
            (None, '[') => depth += 1,
            (None, ']') => {
                depth -= 1;
                if depth == 0 {
                    return;
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(template: &str, data: &Value) -> String {
        Template::parse(template).unwrap().render(data)
    }

    #[test]
    fn templates_print_values_literals_and_ranges_as_kubectl_does() {
        let list = json!({"items": [
            {"metadata": {"name": "a", "labels": {"app.kubernetes.io/name": "web"}}, "spec": {"replicas": 2}},
            {"metadata": {"name": "b", "labels": {}}, "spec": {"replicas": 3}},
        ]});
        assert_eq!(render("{.items[*].metadata.name}", &list), "a b");
        assert_eq!(
            render(
                r#"{range .items[*]}{.metadata.name}{"\t"}{.spec.replicas}{"\n"}{end}"#,
                &list
            ),
            "a\t2\nb\t3\n"
        );
        assert_eq!(
            render(
                r"{.items[0].metadata.labels.app\.kubernetes\.io/name}",
                &list
            ),
            "web"
        );
        assert_eq!(render("{.items[0].spec}", &list), r#"{"replicas":2}"#);
        assert_eq!(render(".items[1].metadata.name", &list), "b");
    }

    #[test]
    fn filters_select_by_a_field() {
        let pod = json!({"status": {"conditions": [
            {"type": "Ready", "status": "False"}, {"type": "Initialized", "status": "True"}]}});
        assert_eq!(
            render(r#"{.status.conditions[?(@.type=="Ready")].status}"#, &pod),
            "False"
        );
        assert_eq!(render("{..type}", &pod), "Ready Initialized");
    }

    #[test]
    fn malformed_templates_are_refused() {
        assert!(matches!(Template::parse("{.a"), Err(Error::Unclosed(_))));
        assert!(matches!(
            Template::parse("{end}"),
            Err(Error::UnmatchedEnd(_))
        ));
        assert!(matches!(
            Template::parse("{range .a[*]}x"),
            Err(Error::UnclosedRange(_))
        ));
        assert!(matches!(
            Template::parse("{.a[?(@.x==]}"),
            Err(Error::Query { .. })
        ));
    }
}
