//! Server-side field validation (`fieldValidation=Strict|Warn|Ignore`): fields a body names
//! that its kind's schema does not have, and fields a JSON body repeats, refused (Strict),
//! reported as `Warning` headers (Warn, the default) or dropped silently (Ignore).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock, Mutex};

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::error::{ApiError, ApiResult};
use super::kinds::Resource;

/// What to do about unknown and duplicate fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    #[default]
    Warn,
    Strict,
}

impl FieldValidation {
    /// The directive of the `fieldValidation` query parameter (Warn when absent).
    ///
    /// # Errors
    /// 400 naming the accepted values.
    pub fn parse(value: Option<&str>) -> ApiResult<Self> {
        match value.unwrap_or("") {
            "" | "Warn" => Ok(Self::Warn),
            "Strict" => Ok(Self::Strict),
            "Ignore" => Ok(Self::Ignore),
            other => Err(ApiError::BadRequest(format!(
                "fieldValidation: unsupported value {other:?}: supported values: \"Ignore\", \"Strict\", \"Warn\""
            ))),
        }
    }

    /// Judges `problems` (`unknown field "spec.foo"`, ...): the warnings to send, or the 400.
    ///
    /// # Errors
    /// Strict, with problems: 400 `strict decoding error: ...` listing them.
    pub fn judge(self, problems: Vec<String>) -> ApiResult<Vec<String>> {
        match self {
            _ if problems.is_empty() => Ok(Vec::new()),
            Self::Ignore => Ok(Vec::new()),
            Self::Warn => Ok(problems),
            Self::Strict => Err(ApiError::BadRequest(format!(
                "strict decoding error: {}",
                problems.join(", ")
            ))),
        }
    }
}

/// The `unknown field "path"` problems of `value`, an object of `resource`.
pub fn unknown_fields(resource: &Resource, value: &Value) -> Vec<String> {
    let schema = schema(resource);
    let mut found = Vec::new();
    walk(&schema, &schema, value, "", &mut found);
    found
        .into_iter()
        .map(|path| format!("unknown field {path:?}"))
        .collect()
}

/// Kinds' schemas, made once each (a Pod's takes milliseconds to generate).
fn schema(resource: &Resource) -> Arc<Value> {
    static SCHEMAS: LazyLock<Mutex<HashMap<String, Arc<Value>>>> = LazyLock::new(Default::default);
    let key = format!("{}/{}", resource.api_version(), resource.kind);
    let mut schemas = SCHEMAS.lock().unwrap_or_else(|p| p.into_inner());
    schemas
        .entry(key)
        .or_insert_with(|| Arc::new(resource.strategy.schema()))
        .clone()
}

fn walk(root: &Value, schema: &Value, value: &Value, path: &str, found: &mut Vec<String>) {
    let schema = resolve(root, schema);
    if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
        return;
    }
    match value {
        Value::Object(fields) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            for (key, inner) in fields {
                let child = join(path, key);
                match (properties.and_then(|p| p.get(key)), additional) {
                    (Some(property), _) => walk(root, property, inner, &child, found),
                    (None, Some(values)) => walk(root, values, inner, &child, found),
                    // An object schema without properties (FieldsV1, RawExtension) takes any.
                    (None, None) if properties.is_some() => found.push(child),
                    (None, None) => {}
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (index, item) in items.iter().enumerate() {
                    walk(root, item_schema, item, &format!("{path}[{index}]"), found);
                }
            }
        }
        _ => {}
    }
}

/// Follows a `$ref` into the root's `$defs`.
fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => reference
            .strip_prefix("#/$defs/")
            .and_then(|name| root["$defs"].get(name))
            .unwrap_or(&Value::Null),
        None => schema,
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Parses JSON text, noting each field an object repeats as `duplicate field "path"` (the
/// last value wins, as in Kubernetes' non-strict decoding).
///
/// # Errors
/// The parser's error for text that is not JSON.
pub fn parse_json(text: &str) -> serde_json::Result<(Value, Vec<String>)> {
    let mut duplicates = Vec::new();
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = Checked {
        path: String::new(),
        duplicates: &mut duplicates,
    }
    .deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok((value, duplicates))
}

/// A value being parsed at `path`.
struct Checked<'a> {
    path: String,
    duplicates: &'a mut Vec<String>,
}

impl<'de> DeserializeSeed<'de> for Checked<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Checked<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = join(&self.path, &key);
            let value = map.next_value_seed(Checked {
                path: path.clone(),
                duplicates: self.duplicates,
            })?;
            if object.insert(key, value).is_some() {
                self.duplicates.push(format!("duplicate field {path:?}"));
            }
        }
        Ok(Value::Object(object))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Checked {
            path: format!("{}[{}]", self.path, items.len()),
            duplicates: self.duplicates,
        })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::kinds::{DEPLOYMENTS, PODS};
    use serde_json::json;

    #[test]
    fn unknown_fields_are_named_by_their_path_and_known_ones_pass() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "labels": {"any": "label"}, "bogus": 1},
            "spec": {"containers": [{"name": "c", "image": "i", "imagee": "typo",
                "resources": {"limits": {"memory": "1Mi"}}}]}});
        assert_eq!(
            unknown_fields(&PODS, &pod),
            [
                "unknown field \"metadata.bogus\"",
                "unknown field \"spec.containers[0].imagee\""
            ]
        );
        let clean =
            json!({"spec": {"replicas": 1, "strategy": {"rollingUpdate": {"maxSurge": "25%"}}}});
        assert!(unknown_fields(&DEPLOYMENTS, &clean).is_empty());
    }

    #[test]
    fn duplicate_fields_are_found_while_parsing_and_the_last_wins() {
        let (value, duplicates) =
            parse_json(r#"{"metadata": {"name": "a", "name": "b"}, "spec": [{"x": 1, "x": 2}]}"#)
                .unwrap();
        assert_eq!(
            value,
            json!({"metadata": {"name": "b"}, "spec": [{"x": 2}]})
        );
        assert_eq!(
            duplicates,
            [
                "duplicate field \"metadata.name\"",
                "duplicate field \"spec[0].x\""
            ]
        );
        assert!(parse_json("{\"a\": ").is_err());
    }

    #[test]
    fn strict_refuses_warn_reports_and_ignore_drops() {
        let problems = || vec!["unknown field \"spec.foo\"".to_string()];
        let error = FieldValidation::Strict.judge(problems()).unwrap_err();
        assert_eq!(error.code(), 400);
        assert_eq!(
            error.to_string(),
            "strict decoding error: unknown field \"spec.foo\""
        );
        assert_eq!(FieldValidation::Warn.judge(problems()).unwrap(), problems());
        assert!(
            FieldValidation::Ignore
                .judge(problems())
                .unwrap()
                .is_empty()
        );
        assert!(FieldValidation::parse(Some("strict")).is_err());
    }
}
