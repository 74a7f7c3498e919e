//! `/openapi/v2` in protobuf (`application/com.github.proto-openapi.spec.v2.v1.0+protobuf`),
//! the only form client-go's `OpenAPISchema` reads: kubectl validates a `List` of objects
//! (what `kubectl get -o yaml` prints) against it. The messages are gnostic's
//! `openapi.v2` (`OpenAPIv2.proto`), those a Swagger 2.0 document of ours uses; values
//! without a typed field (defaults, enums, `x-` extensions) travel as YAML text in `Any`,
//! as gnostic writes them. No crate ships these types.

mod messages;

use messages::*;
use prost::Message;
use serde_json::{Map, Value};

/// The media type of the answer (kube-apiserver's: Go's `mime` refuses the `@` below).
pub const MEDIA_TYPE: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";
/// The same, as client-go still spells it when it asks.
const DEPRECATED_MEDIA_TYPE: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

/// Whether `accept` asks for the protobuf form before JSON (the first media range this
/// document is served in decides).
pub fn wanted(accept: Option<&str>) -> bool {
    let ranges = accept.unwrap_or_default().split(',');
    let mut media = ranges.map(|range| range.split(';').next().unwrap_or_default().trim());
    let served = |m: &&str| {
        [
            MEDIA_TYPE,
            DEPRECATED_MEDIA_TYPE,
            "application/json",
            "application/*",
            "*/*",
        ]
        .contains(m)
    };
    media
        .find(served)
        .is_some_and(|m| m == MEDIA_TYPE || m == DEPRECATED_MEDIA_TYPE)
}

/// The protobuf form of the Swagger 2.0 `document`.
pub fn encode(document: &Value) -> Vec<u8> {
    let paths = object(document, "paths")
        .iter()
        .map(|(name, item)| NamedPathItem {
            name: name.clone(),
            value: Some(path_item(item)),
        })
        .collect();
    Document {
        swagger: text(document, "swagger"),
        info: Some(Info {
            title: text(&document["info"], "title"),
            version: text(&document["info"], "version"),
        }),
        paths: Some(Paths { path: paths }),
        definitions: Some(Definitions {
            additional_properties: named_schemas(object(document, "definitions")),
        }),
    }
    .encode_to_vec()
}

fn object<'a>(value: &'a Value, key: &str) -> &'a Map<String, Value> {
    static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);
    value.get(key).and_then(Value::as_object).unwrap_or(&EMPTY)
}

fn text(value: &Value, key: &str) -> String {
    value[key].as_str().unwrap_or_default().to_string()
}

fn array<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value[key].as_array().map(Vec::as_slice).unwrap_or_default()
}

fn texts(value: &Value, key: &str) -> Vec<String> {
    array(value, key)
        .iter()
        .filter_map(|item| item.as_str().map(str::to_string))
        .collect()
}

/// A JSON value as gnostic's `Any`: YAML text (JSON is YAML).
fn any(value: &Value) -> Any {
    Any {
        yaml: value.to_string(),
    }
}

fn extensions(value: &Value) -> Vec<NamedAny> {
    let fields = value.as_object().into_iter().flatten();
    fields
        .filter(|(key, _)| key.starts_with("x-"))
        .map(|(key, value)| NamedAny {
            name: key.clone(),
            value: Some(any(value)),
        })
        .collect()
}

fn schema_of(value: &Value) -> Schema {
    let number = |key: &str| value[key].as_f64().unwrap_or_default();
    let count = |key: &str| value[key].as_i64().unwrap_or_default();
    let flag = |key: &str| value[key].as_bool().unwrap_or_default();
    let types = match &value["type"] {
        Value::String(one) => vec![one.clone()],
        _ => texts(value, "type"),
    };
    let items = match &value["items"] {
        Value::Null => None,
        Value::Array(many) => Some(many.iter().map(schema_of).collect()),
        one => Some(vec![schema_of(one)]),
    };
    let additional = match &value["additionalProperties"] {
        Value::Bool(allowed) => Some(additional_properties_item::Oneof::Boolean(*allowed)),
        Value::Object(_) => Some(additional_properties_item::Oneof::Schema(Box::new(
            schema_of(&value["additionalProperties"]),
        ))),
        _ => None,
    };
    let properties = named_schemas(object(value, "properties"));
    Schema {
        r#ref: text(value, "$ref"),
        format: text(value, "format"),
        title: text(value, "title"),
        description: text(value, "description"),
        default: value.get("default").map(any),
        multiple_of: number("multipleOf"),
        maximum: number("maximum"),
        exclusive_maximum: flag("exclusiveMaximum"),
        minimum: number("minimum"),
        exclusive_minimum: flag("exclusiveMinimum"),
        max_length: count("maxLength"),
        min_length: count("minLength"),
        pattern: text(value, "pattern"),
        max_items: count("maxItems"),
        min_items: count("minItems"),
        unique_items: flag("uniqueItems"),
        max_properties: count("maxProperties"),
        min_properties: count("minProperties"),
        required: texts(value, "required"),
        r#enum: array(value, "enum").iter().map(any).collect(),
        additional_properties: additional
            .map(|oneof| Box::new(AdditionalPropertiesItem { oneof: Some(oneof) })),
        r#type: (!types.is_empty()).then_some(TypeItem { value: types }),
        items: items.map(|schema| ItemsItem { schema }),
        all_of: array(value, "allOf").iter().map(schema_of).collect(),
        properties: (!properties.is_empty()).then_some(Properties {
            additional_properties: properties,
        }),
        read_only: flag("readOnly"),
        example: value.get("example").map(any),
        vendor_extension: extensions(value),
    }
}

fn named_schemas(schemas: &Map<String, Value>) -> Vec<NamedSchema> {
    let named = schemas.iter().map(|(name, schema)| NamedSchema {
        name: name.clone(),
        value: Some(schema_of(schema)),
    });
    named.collect()
}

fn path_item(item: &Value) -> PathItem {
    let operation = |method: &str| item.get(method).map(operation_of);
    PathItem {
        get: operation("get"),
        put: operation("put"),
        post: operation("post"),
        delete: operation("delete"),
        patch: operation("patch"),
        parameters: parameters(item),
    }
}

fn operation_of(operation: &Value) -> Operation {
    let responses = object(operation, "responses")
        .iter()
        .map(|(code, response)| NamedResponseValue {
            name: code.clone(),
            value: Some(ResponseValue {
                response: Some(Response {
                    description: text(response, "description"),
                    schema: response.get("schema").map(|schema| SchemaItem {
                        schema: Some(schema_of(schema)),
                    }),
                }),
            }),
        })
        .collect();
    Operation {
        operation_id: text(operation, "operationId"),
        consumes: texts(operation, "consumes"),
        parameters: parameters(operation),
        responses: Some(Responses {
            response_code: responses,
        }),
        vendor_extension: extensions(operation),
    }
}

/// Path and query parameters, all strings in our documents.
fn parameters(holder: &Value) -> Vec<ParametersItem> {
    let parameters = array(holder, "parameters").iter().map(|parameter| {
        let name = text(parameter, "name");
        let kind = text(parameter, "type");
        let description = text(parameter, "description");
        let place = text(parameter, "in");
        let sub_schema = if place == "path" {
            non_body_parameter::Oneof::Path(PathParameterSubSchema {
                required: parameter["required"].as_bool().unwrap_or_default(),
                r#in: place,
                description,
                name,
                r#type: kind,
            })
        } else {
            non_body_parameter::Oneof::Query(QueryParameterSubSchema {
                required: parameter["required"].as_bool().unwrap_or_default(),
                r#in: place,
                description,
                name,
                r#type: kind,
                unique_items: parameter["uniqueItems"].as_bool().unwrap_or_default(),
            })
        };
        ParametersItem {
            parameter: Some(Parameter {
                non_body_parameter: Some(NonBodyParameter {
                    oneof: Some(sub_schema),
                }),
            }),
        }
    });
    parameters.collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::kinds::BUILT_IN;

    #[test]
    fn the_protobuf_document_holds_every_definition_path_and_kind_extension() {
        let document = super::super::v2_document(BUILT_IN);
        let decoded = Document::decode(encode(&document).as_slice()).unwrap();
        assert_eq!(decoded.swagger, "2.0");
        let definitions = decoded.definitions.unwrap().additional_properties;
        assert_eq!(definitions.len(), object(&document, "definitions").len());
        let pod = definitions
            .iter()
            .find(|d| d.name == "io.k8s.api.core.v1.Pod")
            .and_then(|d| d.value.as_ref())
            .unwrap();
        let properties = &pod.properties.as_ref().unwrap().additional_properties;
        let spec = properties.iter().find(|p| p.name == "spec");
        let spec = spec.and_then(|p| p.value.as_ref()).unwrap();
        let reference = spec.all_of.first().map_or(&spec.r#ref, |s| &s.r#ref);
        assert_eq!(reference, "#/definitions/io.k8s.api.core.v1.PodSpec");
        let kind = pod
            .vendor_extension
            .iter()
            .find(|e| e.name == "x-kubernetes-group-version-kind")
            .unwrap();
        let yaml: Value = serde_yaml::from_str(&kind.value.as_ref().unwrap().yaml).unwrap();
        assert_eq!(
            yaml,
            serde_json::json!([{"group": "", "version": "v1", "kind": "Pod"}])
        );
        let paths = decoded.paths.unwrap().path;
        assert_eq!(paths.len(), object(&document, "paths").len());
        let pods = paths
            .iter()
            .find(|p| p.name == "/api/v1/namespaces/{namespace}/pods/{name}")
            .and_then(|p| p.value.as_ref())
            .unwrap();
        assert!(pods.patch.as_ref().unwrap().parameters.len() >= 2);
    }

    #[test]
    fn protobuf_is_served_to_a_client_that_asks_for_it_before_json() {
        assert!(wanted(Some(DEPRECATED_MEDIA_TYPE)));
        assert!(wanted(Some(&format!("{MEDIA_TYPE}, application/json"))));
        assert!(!wanted(Some(&format!("application/json, {MEDIA_TYPE}"))));
        assert!(!wanted(Some("*/*")));
        assert!(!wanted(None));
    }
}
