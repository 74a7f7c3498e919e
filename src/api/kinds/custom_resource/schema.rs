//! A CustomResourceDefinition's structural schema (`openAPIV3Schema`) applied to an object as
//! kube-apiserver applies it: unknown fields pruned (unless
//! `x-kubernetes-preserve-unknown-fields`), defaults filled, then every value checked against
//! its type, `required`, `enum`, bounds and pattern, with apiextensions' messages.
//!
//! Hand-written rather than a JSON Schema validator crate: the three steps walk the schema
//! together, the dialect is Kubernetes' (`nullable`, `x-kubernetes-int-or-string`), and the
//! messages must read as kube-apiserver's (`spec.size in body must be of type integer`).

use regex::Regex;
use serde_json::{Map, Value};

use crate::api::error::{Bare, Cause};
use crate::api::printers::jsonpath;

/// Fields every object keeps whatever the schema says.
const ROOT_FIELDS: &[&str] = &["apiVersion", "kind", "metadata"];

/// Drops the fields `schema` does not declare, at every level, keeping the root's identity.
pub fn prune(schema: &Value, value: &mut Value) {
    if let Value::Object(object) = value {
        object.retain(|key, _| ROOT_FIELDS.contains(&key.as_str()) || declares(schema, key));
    }
    prune_below(schema, value);
}

fn declares(schema: &Value, key: &str) -> bool {
    schema["properties"].get(key).is_some()
        || schema["x-kubernetes-preserve-unknown-fields"] == true
        || schema["additionalProperties"].is_object()
        || schema["additionalProperties"] == true
}

fn prune_below(schema: &Value, value: &mut Value) {
    match value {
        Value::Object(object) => {
            for (key, child) in object.iter_mut() {
                let Some(child_schema) = child_schema(schema, key) else {
                    continue;
                };
                if let Value::Object(fields) = child {
                    let keeps_all = child_schema["x-kubernetes-preserve-unknown-fields"] == true
                        || child_schema["additionalProperties"].is_object()
                        || child_schema["additionalProperties"] == true;
                    let embedded = child_schema["x-kubernetes-embedded-resource"] == true;
                    if !keeps_all {
                        fields.retain(|k, _| {
                            child_schema["properties"].get(k).is_some()
                                || (embedded && ROOT_FIELDS.contains(&k.as_str()))
                        });
                    }
                }
                prune_below(child_schema, child);
            }
        }
        Value::Array(items) => {
            for item in items {
                prune_below(&schema["items"], item);
            }
        }
        _ => {}
    }
}

/// The schema of `key` in an object of `schema`: its property, or the map's value schema.
fn child_schema<'a>(schema: &'a Value, key: &str) -> Option<&'a Value> {
    schema["properties"].get(key).or_else(|| {
        schema["additionalProperties"]
            .as_object()
            .map(|_| &schema["additionalProperties"])
    })
}

/// Fills absent fields that have a `default`, at every level.
pub fn default(schema: &Value, value: &mut Value) {
    match value {
        Value::Object(object) => {
            if let Some(properties) = schema["properties"].as_object() {
                for (key, property) in properties {
                    if let Some(default) = property.get("default")
                        && !object.contains_key(key)
                    {
                        object.insert(key.clone(), default.clone());
                    }
                }
            }
            for (key, child) in object.iter_mut() {
                if let Some(child_schema) = child_schema(schema, key) {
                    self::default(child_schema, child);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                self::default(&schema["items"], item);
            }
        }
        _ => {}
    }
}

/// Checks `value` at `path` against `schema`, adding a cause per violation.
pub fn validate(schema: &Value, value: &Value, path: &str, causes: &mut Vec<Cause>) {
    if value.is_null() {
        if schema["nullable"] != true && schema.get("type").is_some() {
            causes.push(type_error(schema, value, path));
        }
        return;
    }
    if !type_matches(schema, value) {
        causes.push(type_error(schema, value, path));
        return;
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        let names: Vec<String> = allowed.iter().map(jsonpath::text).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        causes.push(Cause::unsupported(path, jsonpath::text(value), &names));
    }
    match value {
        Value::Object(object) => validate_object(schema, object, path, causes),
        Value::Array(items) => validate_array(schema, items, path, causes),
        Value::String(text) => validate_string(schema, text, path, causes),
        Value::Number(number) => {
            validate_number(schema, number.as_f64().unwrap_or(0.0), value, path, causes)
        }
        _ => {}
    }
}

fn type_matches(schema: &Value, value: &Value) -> bool {
    if schema["x-kubernetes-int-or-string"] == true {
        return value.is_string() || value.is_i64() || value.is_u64();
    }
    match schema["type"].as_str() {
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean(),
        _ => true,
    }
}

fn type_error(schema: &Value, value: &Value, path: &str) -> Cause {
    let expected = if schema["x-kubernetes-int-or-string"] == true {
        "integer,string"
    } else {
        schema["type"].as_str().unwrap_or("object")
    };
    let found = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    Cause::invalid(
        path,
        Bare(format!("\"{found}\"")),
        &format!("{path} in body must be of type {expected}: \"{found}\""),
    )
}

fn validate_object(
    schema: &Value,
    object: &Map<String, Value>,
    path: &str,
    causes: &mut Vec<Cause>,
) {
    for required in schema["required"].as_array().into_iter().flatten() {
        if let Some(name) = required.as_str().filter(|n| !object.contains_key(*n)) {
            causes.push(Cause::required(join(path, name)));
        }
    }
    let count = object.len();
    if let Some(min) = schema["minProperties"]
        .as_u64()
        .filter(|m| (count as u64) < *m)
    {
        causes.push(body_error(
            path,
            count,
            &format!("should have at least {min} properties"),
        ));
    }
    if let Some(max) = schema["maxProperties"]
        .as_u64()
        .filter(|m| (count as u64) > *m)
    {
        causes.push(body_error(
            path,
            count,
            &format!("should have at most {max} properties"),
        ));
    }
    for (key, child) in object {
        if path.is_empty() && ROOT_FIELDS.contains(&key.as_str()) {
            continue;
        }
        if let Some(child_schema) = child_schema(schema, key) {
            validate(child_schema, child, &join(path, key), causes);
        }
    }
}

fn validate_array(schema: &Value, items: &[Value], path: &str, causes: &mut Vec<Cause>) {
    let count = items.len();
    if let Some(min) = schema["minItems"].as_u64().filter(|m| (count as u64) < *m) {
        causes.push(body_error(
            path,
            count,
            &format!("should have at least {min} items"),
        ));
    }
    if let Some(max) = schema["maxItems"].as_u64().filter(|m| (count as u64) > *m) {
        causes.push(body_error(
            path,
            count,
            &format!("should have at most {max} items"),
        ));
    }
    if schema["uniqueItems"] == true
        && items
            .iter()
            .enumerate()
            .any(|(i, a)| items[..i].contains(a))
    {
        causes.push(body_error(path, count, "shouldn't contain duplicates"));
    }
    for (index, item) in items.iter().enumerate() {
        validate(&schema["items"], item, &format!("{path}[{index}]"), causes);
    }
}

fn validate_string(schema: &Value, text: &str, path: &str, causes: &mut Vec<Cause>) {
    let length = text.chars().count();
    if let Some(max) = schema["maxLength"]
        .as_u64()
        .filter(|m| (length as u64) > *m)
    {
        causes.push(body_error(
            path,
            text,
            &format!("should be at most {max} chars long"),
        ));
    }
    if let Some(min) = schema["minLength"]
        .as_u64()
        .filter(|m| (length as u64) < *m)
    {
        causes.push(body_error(
            path,
            text,
            &format!("should be at least {min} chars long"),
        ));
    }
    if let Some(pattern) = schema["pattern"].as_str() {
        let matches = Regex::new(pattern).is_ok_and(|re| re.is_match(text));
        if !matches {
            causes.push(body_error(path, text, &format!("should match '{pattern}'")));
        }
    }
}

fn validate_number(
    schema: &Value,
    number: f64,
    value: &Value,
    path: &str,
    causes: &mut Vec<Cause>,
) {
    let shown = Bare(value.to_string());
    let exclusive_min = schema["exclusiveMinimum"] == true;
    if let Some(min) = schema["minimum"].as_f64()
        && (number < min || (exclusive_min && number == min))
    {
        let relation = if exclusive_min {
            "greater than"
        } else {
            "greater than or equal to"
        };
        causes.push(body_error(
            path,
            &shown,
            &format!("should be {relation} {}", schema["minimum"]),
        ));
    }
    let exclusive_max = schema["exclusiveMaximum"] == true;
    if let Some(max) = schema["maximum"].as_f64()
        && (number > max || (exclusive_max && number == max))
    {
        let relation = if exclusive_max {
            "less than"
        } else {
            "less than or equal to"
        };
        causes.push(body_error(
            path,
            &shown,
            &format!("should be {relation} {}", schema["maximum"]),
        ));
    }
    if let Some(factor) = schema["multipleOf"].as_f64().filter(|f| *f > 0.0)
        && (number / factor).fract() != 0.0
    {
        causes.push(body_error(
            path,
            &shown,
            &format!("should be a multiple of {}", schema["multipleOf"]),
        ));
    }
}

/// `path: Invalid value: VALUE: path in body WHY`, as kube-openapi's validator words it.
fn body_error(path: &str, value: impl crate::api::error::BadValue, why: &str) -> Cause {
    Cause::invalid(path, value, &format!("{path} in body {why}"))
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "properties": {
            "spec": {"type": "object", "required": ["size"], "properties": {
                "size": {"type": "integer", "minimum": 0, "maximum": 10},
                "color": {"type": "string", "enum": ["red", "blue"], "default": "red"},
                "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 5},
                "port": {"x-kubernetes-int-or-string": true},
                "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            }},
        }})
    }

    fn admit(mut value: Value) -> (Value, Vec<String>) {
        let schema = schema();
        prune(&schema, &mut value);
        default(&schema, &mut value);
        let mut causes = Vec::new();
        validate(&schema, &value, "", &mut causes);
        let causes = causes
            .into_iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        (value, causes)
    }

    #[test]
    fn unknown_fields_are_pruned_and_defaults_filled() {
        let (value, causes) = admit(
            json!({"apiVersion": "x/v1", "kind": "W", "metadata": {"name": "w"},
            "bogus": 1, "spec": {"size": 3, "typo": true, "extra": {"anything": [1]},
            "labels": {"a": "b"}}}),
        );
        assert!(causes.is_empty(), "{causes:?}");
        assert_eq!(
            value,
            json!({"apiVersion": "x/v1", "kind": "W", "metadata": {"name": "w"},
            "spec": {"size": 3, "color": "red", "extra": {"anything": [1]}, "labels": {"a": "b"}}})
        );
    }

    #[test]
    fn violations_are_named_in_apiextensions_words() {
        let (_, causes) = admit(
            json!({"spec": {"size": "big", "color": "pink", "name": "Abcdefg",
            "port": 1.5, "tags": ["a", "b", "c"], "labels": {"a": 1}}}),
        );
        assert_eq!(
            causes,
            [
                "spec.color: Unsupported value: \"pink\": supported values: \"red\", \"blue\"",
                "spec.labels.a: Invalid value: \"integer\": spec.labels.a in body must be of type string: \"integer\"",
                "spec.name: Invalid value: \"Abcdefg\": spec.name in body should be at most 5 chars long",
                "spec.name: Invalid value: \"Abcdefg\": spec.name in body should match '^[a-z]+$'",
                "spec.port: Invalid value: \"number\": spec.port in body must be of type integer,string: \"number\"",
                "spec.size: Invalid value: \"string\": spec.size in body must be of type integer: \"string\"",
                "spec.tags: Invalid value: 3: spec.tags in body should have at most 2 items",
            ]
        );
        let (_, causes) = admit(json!({"spec": {"size": 11}}));
        assert_eq!(
            causes,
            ["spec.size: Invalid value: 11: spec.size in body should be less than or equal to 10"]
        );
        let (_, causes) = admit(json!({"spec": {}}));
        assert_eq!(causes, ["spec.size: Required value"]);
    }
}
