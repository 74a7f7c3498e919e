//! Makes `types.json` from the `k8s-pb` crate's generated prost source and the k8s-openapi
//! schemas of the served kinds. Run `WASMKUBE_REGENERATE=1 cargo test --lib types::generate`
//! after adding a kind or updating either crate; otherwise the test checks the table is current.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{Field, Message};
use crate::api::kinds::{BUILT_IN, schema_of};

/// Types sent in bodies besides the kinds themselves.
fn extra_roots() -> Vec<(String, Value)> {
    use k8s_openapi::api::{autoscaling, core, policy};
    use k8s_openapi::apimachinery::pkg::apis::meta;
    [
        (
            "k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions",
            schema_of::<meta::v1::DeleteOptions>(),
        ),
        (
            "k8s.io.api.policy.v1.Eviction",
            schema_of::<policy::v1::Eviction>(),
        ),
        (
            "k8s.io.api.autoscaling.v1.Scale",
            schema_of::<autoscaling::v1::Scale>(),
        ),
        (
            "k8s.io.api.core.v1.Binding",
            schema_of::<core::v1::Binding>(),
        ),
    ]
    .into_iter()
    .map(|(name, schema)| (name.to_string(), schema))
    .collect()
}

/// A field as parsed from the prost source, before its JSON name is known.
struct Parsed {
    rust_name: String,
    field: Field,
}

/// The `src` directory of the k8s-pb crate this build uses (metadata for the host only, so
/// other platforms' crates need not be downloaded).
fn k8s_pb_source() -> PathBuf {
    let rustc = std::process::Command::new("rustc").arg("-vV").output();
    let rustc = String::from_utf8(rustc.expect("rustc runs").stdout).unwrap();
    let host = rustc
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .unwrap();
    let output = std::process::Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--offline"])
        .args(["--filter-platform", host])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("cargo metadata JSON");
    let manifest = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "k8s-pb")
        .and_then(|p| p["manifest_path"].as_str())
        .expect("k8s-pb is a dependency");
    Path::new(manifest).parent().unwrap().join("src")
}

/// Every message of every prost file under `src`, by protobuf name.
fn parse_crate(src: &Path) -> BTreeMap<String, (bool, Vec<Parsed>)> {
    let mut messages = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().unwrap() == "mod.rs" && dir != src {
                let module: Vec<String> = dir
                    .strip_prefix(src)
                    .unwrap()
                    .iter()
                    .map(|s| s.to_string_lossy().replace('_', "-"))
                    .collect();
                parse_file(
                    &std::fs::read_to_string(&path).unwrap(),
                    &module,
                    &mut messages,
                );
            }
        }
    }
    messages
}

/// Parses the structs of one generated file (rustfmt'ed prost output: doc comments with
/// markers, one `#[prost(..)]` line, then `pub name: Type,` over one or more lines).
fn parse_file(text: &str, module: &[String], out: &mut BTreeMap<String, (bool, Vec<Parsed>)>) {
    let package = format!("k8s.io.{}", module.join("."));
    let mut markers: Vec<(String, String)> = Vec::new();
    let mut current: Option<(String, bool, Vec<Parsed>)> = None;
    let mut attribute: Option<String> = None;
    let mut pending = String::new();
    for line in text.lines().map(str::trim) {
        if let Some(marker) = line.strip_prefix("/// +") {
            let (key, value) = marker.split_once('=').unwrap_or((marker, ""));
            markers.push((key.to_string(), value.to_string()));
        } else if let Some(name) = line.strip_prefix("pub struct ") {
            let atomic = markers
                .iter()
                .any(|(k, v)| k == "structType" && v == "atomic");
            markers.clear();
            // A message without fields is written on one line: `pub struct Empty {}`.
            if let Some(empty) = name.strip_suffix(" {}") {
                out.insert(format!("{package}.{empty}"), (atomic, Vec::new()));
                continue;
            }
            let name = name.trim_end_matches(" {").to_string();
            current = Some((format!("{package}.{name}"), atomic, Vec::new()));
        } else if line.starts_with("#[prost(") {
            attribute = Some(line.to_string());
        } else if attribute.is_some() && (line.starts_with("pub ") || !pending.is_empty()) {
            pending.push_str(line);
            if angle_depth(&pending) == 0 && pending.ends_with(',') {
                let parsed = parse_field(attribute.take().unwrap(), &pending, &markers, module);
                current.as_mut().unwrap().2.push(parsed);
                pending.clear();
                markers.clear();
            }
        } else if line == "}" {
            if let Some((name, atomic, fields)) = current.take() {
                out.insert(name, (atomic, fields));
            }
            markers.clear();
        } else if !line.starts_with("///") && !line.starts_with("#[") {
            markers.clear();
        }
    }
}

fn angle_depth(text: &str) -> i32 {
    text.chars().fold(0, |depth, c| match c {
        '<' => depth + 1,
        '>' => depth - 1,
        _ => depth,
    })
}

fn parse_field(
    attribute: String,
    declaration: &str,
    markers: &[(String, String)],
    module: &[String],
) -> Parsed {
    let (name, ty) = declaration
        .trim_start_matches("pub ")
        .trim_end_matches(',')
        .split_once(':')
        .unwrap();
    let marker = |key: &str| {
        markers
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    let kind = attribute
        .trim_start_matches("#[prost(")
        .split([',', ' '])
        .next()
        .unwrap()
        .to_string();
    let tag = attribute
        .split("tag = \"")
        .nth(1)
        .and_then(|t| t.split('"').next())
        .and_then(|t| t.parse().ok())
        .unwrap();
    let map = kind.starts_with("btree_map");
    let scalar = match kind.as_str() {
        "message" => None,
        _ if map => attribute
            .split(", ")
            .nth(1)
            .map(|v| v.trim_end_matches('"').to_string())
            .filter(|v| v != "message"),
        other => Some(other.to_string()),
    };
    Parsed {
        rust_name: name.trim().trim_start_matches("r#").to_string(),
        field: Field {
            name: String::new(),
            tag,
            ty: scalar.unwrap_or_else(|| message_type(ty.trim(), module)),
            repeated: attribute.contains(" repeated"),
            map,
            inline: false,
            patch_strategy: marker("patchStrategy"),
            patch_merge_key: marker("patchMergeKey"),
            list_type: marker("listType"),
            list_map_keys: markers
                .iter()
                .filter(|(k, _)| k == "listMapKey")
                .map(|(_, v)| v.clone())
                .collect(),
            map_type: marker("mapType"),
            struct_type: marker("structType"),
        },
    }
}

/// The protobuf name of the message a Rust type names (the last message path in it).
fn message_type(ty: &str, module: &[String]) -> String {
    let inner = ty
        .trim_end_matches(['>', ',', ' '])
        .rsplit(['<', ','])
        .next()
        .unwrap()
        .trim();
    let mut path: Vec<String> = module.to_vec();
    let segments: Vec<&str> = inner.split("::").collect();
    for segment in &segments[..segments.len() - 1] {
        match *segment {
            "super" => {
                path.pop();
            }
            other => path.push(other.replace('_', "-")),
        }
    }
    format!("k8s.io.{}.{}", path.join("."), segments.last().unwrap())
}

/// The table: the messages reachable from the served kinds and the extra roots, with JSON
/// names from the schemas.
fn table() -> BTreeMap<String, Message> {
    let parsed = parse_crate(&k8s_pb_source());
    let mut roots = extra_roots();
    for resource in BUILT_IN {
        let schema = resource.strategy.schema();
        // The schema's title is the definition name (`io.k8s.api.core.v1.Pod`,
        // `io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition`).
        let title = schema["title"].as_str().unwrap_or_default();
        let name = format!("k8s.io.{}", title.trim_start_matches("io.k8s."));
        roots.push((name, schema));
    }
    let mut definitions = serde_json::Map::new();
    for (name, schema) in &roots {
        if let Some(defs) = schema["$defs"].as_object() {
            definitions.extend(defs.clone());
        }
        definitions.insert(definition_name(name), schema.clone());
    }
    // prost spells acronyms its own way (`PodDnsConfig`): names match ignoring case, and the
    // table keeps Kubernetes' spelling from the schema.
    let parsed: BTreeMap<String, _> = parsed
        .into_iter()
        .map(|(name, message)| (lookup_key(&name), message))
        .collect();
    let canonical = |prost_name: &str| -> Option<String> {
        let wanted = lookup_key(&definition_name(prost_name));
        let found = definitions.keys().find(|k| lookup_key(k) == wanted)?;
        Some(format!("k8s.io.{}", found.trim_start_matches("io.k8s.")))
    };
    let mut table = BTreeMap::new();
    // The JSON properties of each message: its schema's, or for a message k8s-openapi has no
    // type for (Go structs inlined into another, as VolumeSource into Volume) its parent's.
    let mut properties: BTreeMap<String, Value> = BTreeMap::new();
    for (name, _) in &roots {
        properties.insert(
            name.clone(),
            definitions[&definition_name(name)]["properties"].clone(),
        );
    }
    let mut queue: VecDeque<String> = roots.iter().map(|(n, _)| n.clone()).collect();
    while let Some(name) = queue.pop_front() {
        if table.contains_key(&name) {
            continue;
        }
        let (atomic, fields) = &parsed[&lookup_key(&name)];
        let known_properties = properties[&name].clone();
        let mut named = Vec::new();
        for parsed_field in fields {
            let mut field = parsed_field.field.clone();
            field.name = json_name(&parsed_field.rust_name, &known_properties);
            let known =
                !known_properties.is_object() || known_properties.get(&field.name).is_some();
            if field.message_name().is_some() {
                let inner = &parsed[&lookup_key(&field.ty)].1;
                field.inline = !known && inlines(inner, &known_properties);
                let ty = canonical(&field.ty).or_else(|| field.inline.then(|| field.ty.clone()));
                // A message the schemas do not know is of a field Kubernetes 1.37 dropped.
                let Some(ty) = ty else {
                    continue;
                };
                field.ty = ty;
                let own = definitions
                    .get(&definition_name(&field.ty))
                    .map(|d| &d["properties"]);
                let inherited = if field.inline {
                    &known_properties
                } else {
                    &Value::Null
                };
                properties.insert(field.ty.clone(), own.unwrap_or(inherited).clone());
                queue.push_back(field.ty.clone());
            } else if !known {
                continue;
            }
            named.push(field);
        }
        let message = Message {
            atomic: *atomic,
            fields: named,
        };
        table.insert(name, message);
    }
    table
}

/// Whether a message with `fields` is embedded in a parent with `properties` (Go's inline
/// struct): the parent's JSON object has all its fields.
fn inlines(fields: &[Parsed], properties: &Value) -> bool {
    !fields.is_empty() && fields.iter().all(|f| has(properties, &f.rust_name))
}

fn has(properties: &Value, rust_name: &str) -> bool {
    let flat = rust_name.replace('_', "").to_lowercase();
    properties
        .as_object()
        .is_some_and(|p| p.keys().any(|k| k.to_lowercase() == flat))
}

/// `k8s.io.api.core.v1.Pod` → `io.k8s.api.core.v1.Pod`, as k8s-openapi names its schemas.
/// Names compared the way prost's and Kubernetes' spellings meet: ignoring case (`PodDnsConfig`)
/// and dashes in package names (`apiextensions-apiserver`, a Rust module `apiextensions_apiserver`).
fn lookup_key(name: &str) -> String {
    name.to_lowercase().replace('-', "_")
}

fn definition_name(message: &str) -> String {
    format!("io.k8s.{}", message.trim_start_matches("k8s.io."))
}

/// The JSON property a snake_case field name stands for (`pod_ips` → `podIPs`), or the
/// lowerCamelCase spelling when the schema has no properties (Time, Quantity, ...) or the
/// field is inline.
fn json_name(rust_name: &str, properties: &Value) -> String {
    let flat = rust_name.replace('_', "").to_lowercase();
    if let Some(found) = properties
        .as_object()
        .and_then(|p| p.keys().find(|k| k.to_lowercase() == flat))
    {
        return found.clone();
    }
    let mut name = String::new();
    let mut upper = false;
    for c in rust_name.chars() {
        match c {
            '_' => upper = true,
            c if upper => {
                name.extend(c.to_uppercase());
                upper = false;
            }
            c => name.push(c),
        }
    }
    name
}

impl Field {
    fn message_name(&self) -> Option<&str> {
        (!super::SCALARS.contains(&self.ty.as_str())).then_some(self.ty.as_str())
    }
}

/// The table as written: one message per line, so a change reads as a small diff.
fn render(table: &BTreeMap<String, Message>) -> String {
    let lines: Vec<String> = table
        .iter()
        .map(|(name, message)| {
            format!(
                "{}: {}",
                serde_json::to_string(name).unwrap(),
                serde_json::to_string(message).unwrap()
            )
        })
        .collect();
    format!("{{\n{}\n}}\n", lines.join(",\n"))
}

#[test]
fn the_type_table_matches_k8s_pb_and_the_kind_schemas() {
    let rendered = render(&table());
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api/types/types.json");
    if std::env::var_os("WASMKUBE_REGENERATE").is_some() {
        std::fs::write(&path, &rendered).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == rendered,
        "src/api/types/types.json is stale: run WASMKUBE_REGENERATE=1 cargo test --lib types::generate"
    );
}
