//! URL routing: Kubernetes paths to calls on `Api`.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::error::{ApiError, ApiResult};
use super::kinds::{Resource, Subresource};
use super::list_options::ListOptions;
use super::logs::LogOptions;
use super::objects::{DeleteOptions, Part, PropagationPolicy};
use super::patch::PatchType;
use super::server::{self, Body, Context};
use super::write::WriteOptions;
use super::{binding, discovery, eviction, images, openapi, protobuf, scale, table, watch};

/// What a path names.
enum Target {
    Document(Value),
    Collection {
        resource: &'static Resource,
        namespace: Option<String>,
    },
    Object {
        resource: &'static Resource,
        namespace: Option<String>,
        name: String,
        subresource: Option<String>,
    },
}

pub async fn route(request: Request<Incoming>, context: &Context) -> ApiResult<Response<Body>> {
    let segments: Vec<String> = request
        .uri()
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let query = parse_query(request.uri().query().unwrap_or(""));
    let accept = request.headers().get(header::ACCEPT);
    if !protobuf::accepts_json(accept.and_then(|v| v.to_str().ok())) {
        // Requests are read in protobuf; answers are JSON only.
        return Err(ApiError::NotAcceptable(
            "only the following media types are accepted: application/json".into(),
        ));
    }
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    if let ["v1-wasmkube", "images", name @ ..] = segments.as_slice() {
        let name = (!name.is_empty()).then(|| name.join("/"));
        let store = &context.images;
        return images::serve(request, store, name.as_deref(), param(&query, "name")).await;
    }
    let target = resolve(&segments, context)?;
    match target {
        Target::Document(value) if request.method() == Method::GET => {
            let accept = accept.and_then(|v| v.to_str().ok());
            if segments == ["openapi", "v2"] && openapi::v2_protobuf_wanted(accept) {
                let body = openapi::v2_protobuf(&value);
                return Ok(server::binary(openapi::V2_PROTOBUF, body));
            }
            Ok(server::json(StatusCode::OK, &value))
        }
        Target::Document(_) => Err(ApiError::MethodNotAllowed),
        Target::Collection {
            resource,
            namespace,
        } => collection(request, context, resource, namespace, &query).await,
        Target::Object {
            resource,
            namespace,
            name,
            subresource,
        } => {
            object(
                request,
                context,
                resource,
                namespace.as_deref(),
                &name,
                subresource.as_deref(),
                &query,
            )
            .await
        }
    }
}

fn resolve(segments: &[&str], context: &Context) -> ApiResult<Target> {
    let not_found =
        || ApiError::NotFoundPath("the server could not find the requested resource".into());
    let registry = context.api.registry();
    let served = registry.all();
    let (group, version, rest) = match segments {
        ["version"] => return Ok(Target::Document(discovery::version())),
        ["openapi", "v2"] => return Ok(Target::Document(openapi::v2_document(&served))),
        ["openapi", "v3"] => return Ok(Target::Document(openapi::index(&served))),
        ["openapi", "v3", rest @ ..] => {
            return openapi::group_version(&served, rest)
                .map(Target::Document)
                .ok_or_else(not_found);
        }
        ["api"] => {
            return Ok(Target::Document(discovery::api_versions(
                &context.address.to_string(),
            )));
        }
        ["apis"] => return Ok(Target::Document(discovery::api_groups(&served))),
        ["apis", group] => {
            return discovery::api_group(&served, group)
                .map(Target::Document)
                .ok_or_else(not_found);
        }
        ["api", "v1"] => {
            return discovery::resource_list(&served, "", "v1")
                .map(Target::Document)
                .ok_or_else(not_found);
        }
        ["apis", group, version] => {
            return discovery::resource_list(&served, group, version)
                .map(Target::Document)
                .ok_or_else(not_found);
        }
        ["api", "v1", rest @ ..] => ("", "v1", rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Err(not_found()),
    };
    let find = |plural: &str| registry.find(group, version, plural).ok_or_else(not_found);
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, rest @ ..]
            if registry
                .find(group, version, plural)
                .is_some_and(|r| r.namespaced) =>
        {
            (Some(ns.to_string()), [&[*plural][..], rest].concat())
        }
        _ => (None, rest.to_vec()),
    };
    match rest.as_slice() {
        [plural] => Ok(Target::Collection {
            resource: find(plural)?,
            namespace,
        }),
        [plural, name] | [plural, name, _] => {
            let resource = find(plural)?;
            if resource.namespaced && namespace.is_none() {
                return Err(not_found());
            }
            Ok(Target::Object {
                resource,
                namespace,
                name: name.to_string(),
                subresource: rest.get(2).map(|s| s.to_string()),
            })
        }
        _ => Err(not_found()),
    }
}

async fn collection(
    request: Request<Incoming>,
    context: &Context,
    resource: &'static Resource,
    namespace: Option<String>,
    query: &[(String, String)],
) -> ApiResult<Response<Body>> {
    let namespace = namespace.as_deref();
    let watching = request.method() == Method::GET && flag(query, "watch");
    let options = ListOptions::from_query(resource, watching, |name| param(query, name))?;
    match *request.method() {
        Method::GET if watching => {
            let timeout = param(query, "timeoutSeconds")
                .and_then(|t| t.parse().ok())
                .map(Duration::from_secs);
            let events = context.api.watch(
                resource,
                namespace,
                options,
                timeout,
                context.shutdown.child_token(),
            )?;
            Ok(server::stream(
                "application/json",
                watch_lines(events, resource, table_request(&request, query)),
            ))
        }
        Method::GET => match table_request(&request, query) {
            Some(table) => {
                let listing = context.api.listed(resource, namespace, &options)?;
                let table = table::render_listing(table, resource, listing);
                Ok(server::json(StatusCode::OK, &table))
            }
            None => {
                let list = context.api.list(resource, namespace, &options)?;
                Ok(server::json(StatusCode::OK, &list))
            }
        },
        Method::POST => {
            let (body, options) = read_write(request, query, false).await?;
            let created = context
                .api
                .create_with(resource, namespace, body, &options)?;
            Ok(server::written(StatusCode::CREATED, &created))
        }
        // Kubernetes deletes a namespaced collection one namespace at a time, and some kinds
        // (namespaces) never as a collection.
        Method::DELETE
            if (resource.namespaced && namespace.is_none())
                || !resource.strategy.deletes_collections() =>
        {
            Err(ApiError::MethodNotAllowed)
        }
        Method::DELETE => {
            let delete = delete_options(request, query).await?;
            let list = context.api.list(resource, namespace, &options)?;
            let mut deleted = Vec::new();
            for item in list["items"].as_array().into_iter().flatten() {
                let name = item["metadata"]["name"].as_str().unwrap_or_default();
                let ns = item["metadata"]["namespace"].as_str();
                match context.api.delete(resource, ns, name, &delete) {
                    Ok(object) => deleted.push(object),
                    Err(ApiError::NotFound { .. }) => {}
                    Err(error) => return Err(error),
                }
            }
            let mut list = list;
            list["items"] = Value::Array(deleted);
            Ok(server::json(StatusCode::OK, &list))
        }
        _ => Err(ApiError::MethodNotAllowed),
    }
}

async fn object(
    request: Request<Incoming>,
    context: &Context,
    resource: &'static Resource,
    namespace: Option<&str>,
    name: &str,
    subresource: Option<&str>,
    query: &[(String, String)],
) -> ApiResult<Response<Body>> {
    let api = &context.api;
    let subresource = match subresource {
        None => None,
        Some(name) => Some(
            Subresource::named(name)
                .filter(|s| resource.serves(*s))
                .ok_or_else(|| {
                    ApiError::NotFoundPath(
                        "the server could not find the requested resource".into(),
                    )
                })?,
        ),
    };
    let part = match subresource {
        None | Some(Subresource::Finalize) => Part::Main,
        Some(Subresource::Status) => Part::Status,
        Some(Subresource::Log) if request.method() == Method::GET => {
            let options = LogOptions::from_query(name, query)?;
            let chunks = api
                .pod_logs(namespace.unwrap_or_default(), name, &options)
                .await?;
            return Ok(server::stream("text/plain", chunks));
        }
        Some(Subresource::Binding) if request.method() == Method::POST => {
            let binding = server::read_object(request).await?;
            binding::bind(api, namespace, name, &binding)?;
            return Ok(server::json(
                StatusCode::CREATED,
                &json!({"kind": "Status", "apiVersion": "v1", "status": "Success", "code": 201}),
            ));
        }
        Some(Subresource::Eviction) => {
            return eviction::serve(request, context, namespace, name).await;
        }
        Some(Subresource::Scale) => {
            return scale::serve(request, context, resource, namespace, name).await;
        }
        Some(Subresource::Log | Subresource::Binding) => return Err(ApiError::MethodNotAllowed),
    };
    match *request.method() {
        Method::GET => {
            let object = api.get(resource, namespace, name)?;
            let object = table::render(table_request(&request, query), resource, object);
            Ok(server::json(StatusCode::OK, &object))
        }
        Method::PUT => {
            let (body, options) = read_write(request, query, false).await?;
            let updated = api.update_with(resource, namespace, name, body, part, &options)?;
            Ok(server::written(StatusCode::OK, &updated))
        }
        Method::PATCH => {
            let content_type = request
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let patch_type = PatchType::from_content_type(content_type)?;
            let (body, options) =
                read_write(request, query, patch_type == PatchType::Apply).await?;
            let patched = match (patch_type, part) {
                (PatchType::Apply, Part::Main) => {
                    api.apply(resource, namespace, name, body, &options)?
                }
                (PatchType::Apply, Part::Status) => return Err(ApiError::MethodNotAllowed),
                _ => {
                    api.patch_with(resource, namespace, name, &body, patch_type, part, &options)?
                }
            };
            Ok(server::written(StatusCode::OK, &patched))
        }
        Method::DELETE if part == Part::Main => {
            let options = delete_options(request, query).await?;
            Ok(server::json(
                StatusCode::OK,
                &api.delete(resource, namespace, name, &options)?,
            ))
        }
        _ => Err(ApiError::MethodNotAllowed),
    }
}

/// The body of a create, update or patch and the options its query asks for.
async fn read_write(
    request: Request<Incoming>,
    query: &[(String, String)],
    apply: bool,
) -> ApiResult<(Value, WriteOptions)> {
    let mut options = write_options(&request, query, apply)?;
    let (body, duplicates) = server::read_checked(request).await?;
    options.duplicate_fields = duplicates;
    Ok((body, options))
}

/// The write options of the query. A write that names no field manager is recorded under its
/// client's name (the User-Agent up to `/`), as kube-apiserver does; an apply must name one.
fn write_options(
    request: &Request<Incoming>,
    query: &[(String, String)],
    apply: bool,
) -> ApiResult<WriteOptions> {
    let agent = request
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .and_then(|agent| agent.split('/').next())
        .map(|name| name.chars().take(128).collect::<String>());
    let manager = param(query, "fieldManager")
        .map(str::to_string)
        .or(agent.filter(|_| !apply));
    WriteOptions::parse(
        param(query, "dryRun"),
        manager.as_deref(),
        param(query, "fieldValidation"),
        flag(query, "force"),
    )
}

/// Whether the client asked for a `Table` (as `kubectl get` does).
fn table_request(
    request: &Request<Incoming>,
    query: &[(String, String)],
) -> Option<table::TableRequest> {
    table::TableRequest::from_request(request.headers(), param(query, "includeObject"))
}

fn watch_lines(
    mut events: mpsc::Receiver<watch::WatchEvent>,
    resource: &'static Resource,
    table: Option<table::TableRequest>,
) -> mpsc::Receiver<Bytes> {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        while let Some(mut event) = events.recv().await {
            if matches!(event.kind, "ADDED" | "MODIFIED" | "DELETED") {
                event.object = table::render(table, resource, event.object);
            }
            // Written straight from the event: no copy of the object, no `fmt`.
            let mut line = serde_json::to_vec(&event).unwrap_or_default();
            line.push(b'\n');
            if tx.send(Bytes::from(line)).await.is_err() {
                return;
            }
        }
    });
    rx
}

/// DeleteOptions from the body (when there is one) and the query.
async fn delete_options(
    request: Request<Incoming>,
    query: &[(String, String)],
) -> ApiResult<DeleteOptions> {
    let has_body = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|l| l != "0")
        || request.headers().contains_key(header::TRANSFER_ENCODING);
    let body = if has_body {
        server::read_object(request).await?
    } else {
        Value::Null
    };
    let mut options = DeleteOptions::from_body(&body)?;
    if let Some(text) = param(query, "gracePeriodSeconds") {
        options.grace_period_seconds = Some(text.parse::<i64>().map_err(|_| {
            ApiError::BadRequest(format!("gracePeriodSeconds: invalid value {text:?}"))
        })?);
    }
    if let Some(text) = param(query, "propagationPolicy") {
        options.propagation_policy = PropagationPolicy::parse(text)?;
    }
    options.dry_run |= WriteOptions::parse(param(query, "dryRun"), None, None, false)?.dry_run;
    Ok(options)
}

/// The value of query parameter `name`.
pub fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Whether query parameter `name` is set (`true`, `1` or no value).
pub fn flag(query: &[(String, String)], name: &str) -> bool {
    matches!(param(query, name), Some("true" | "1" | ""))
}

/// The decoded `name=value` pairs of a query string.
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (
                percent_decode(&k.replace('+', " ")),
                percent_decode(&v.replace('+', " ")),
            )
        })
        .collect()
}

/// `%XX` escapes decoded (invalid UTF-8 replaced).
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_decoded() {
        let query = parse_query("labelSelector=app%3Dweb%2Ctier+in+(a)&watch=true");
        assert_eq!(param(&query, "labelSelector"), Some("app=web,tier in (a)"));
        assert!(flag(&query, "watch"));
    }
}
