//! Server-side printing: a `meta.k8s.io` `Table` for clients that ask for one in `Accept`
//! (`application/json;as=Table;v=v1;g=meta.k8s.io`), as `kubectl get` does. Without it
//! kubectl prints only NAME and AGE.
//!
//! The cells are the kind's printer's (`api::printers`), which `wasmkube get` prints too, so
//! both CLIs agree.

use std::sync::Arc;

use http::{HeaderMap, header};
use serde_json::{Value, json};

use super::kinds::Resource;
use super::objects::served;
use super::printers;
use crate::store::Listing;

/// A request's wish for a Table: which version, and what each row carries of its object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableRequest {
    api_version: &'static str,
    /// The `includeObject` query parameter: `None`, `Object`, or (the default) `Metadata`.
    include: Include,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Include {
    Nothing,
    Object,
    Metadata,
}

impl TableRequest {
    /// A Table request when `Accept` asks for one; `include_object` is the query parameter.
    pub fn from_request(headers: &HeaderMap, include_object: Option<&str>) -> Option<TableRequest> {
        let include = match include_object {
            Some("None") => Include::Nothing,
            Some("Object") => Include::Object,
            _ => Include::Metadata,
        };
        requested(headers).map(|api_version| TableRequest {
            api_version,
            include,
        })
    }
}

/// What the `Accept` header asks for: `Some(api_version)` of the Table, or `None` for the
/// object itself.
fn requested(headers: &HeaderMap) -> Option<&'static str> {
    let accept = headers.get(header::ACCEPT)?.to_str().ok()?;
    let mut versions = accept.split(',').filter_map(|media| {
        let params: Vec<&str> = media.split(';').map(str::trim).collect();
        let is_table = params.contains(&"as=Table") && params.contains(&"g=meta.k8s.io");
        match is_table {
            true if params.contains(&"v=v1") => Some("meta.k8s.io/v1"),
            true if params.contains(&"v=v1beta1") => Some("meta.k8s.io/v1beta1"),
            _ => None,
        }
    });
    versions.next()
}

/// `object` (one object or a list) as a Table when the request asked for one; otherwise
/// `object` unchanged.
pub fn render(request: Option<TableRequest>, resource: &Resource, mut object: Value) -> Value {
    let Some(request) = request else {
        return object;
    };
    let resource_version = object.pointer("/metadata/resourceVersion").cloned();
    // The rows take the objects over: a list of 1,000 pods is not copied again.
    let items = match object.get_mut("items") {
        Some(Value::Array(items)) => std::mem::take(items),
        _ => vec![object],
    };
    let now = printers::now();
    let rows = items
        .into_iter()
        .map(|mut item| {
            let cells = resource.printer.cells(&item, now);
            let object = match request.include {
                Include::Nothing => None,
                Include::Object => Some(item),
                Include::Metadata => Some(partial_metadata(
                    item.get_mut("metadata").map(Value::take),
                    request.api_version,
                )),
            };
            row(cells, object)
        })
        .collect();
    table(request, resource, rows, resource_version)
}

/// The objects of a listing as a Table. They stay the store's: a row copies only its cells
/// and what it carries (by default the metadata), not the whole object.
pub fn render_listing(request: TableRequest, resource: &Resource, listing: Listing) -> Value {
    let now = printers::now();
    let rows = listing
        .entries
        .iter()
        .map(|entry| {
            let item = &entry.value;
            let cells = resource.printer.cells(item, now);
            let object = match request.include {
                Include::Nothing => None,
                Include::Object => Some(served(resource, Arc::clone(entry))),
                Include::Metadata => Some(partial_metadata(
                    item.get("metadata").cloned(),
                    request.api_version,
                )),
            };
            row(cells, object)
        })
        .collect();
    let resource_version = json!(listing.revision.to_string());
    table(request, resource, rows, Some(resource_version))
}

fn row(cells: Vec<String>, object: Option<Value>) -> Value {
    let mut row = json!({"cells": cells});
    if let Some(object) = object {
        row["object"] = object;
    }
    row
}

fn table(
    request: TableRequest,
    resource: &Resource,
    rows: Vec<Value>,
    resource_version: Option<Value>,
) -> Value {
    let columns: Vec<Value> = resource
        .printer
        .columns()
        .iter()
        .map(|column| {
            json!({
                "name": column.name,
                "type": "string",
                "format": if column.name == "NAME" { "name" } else { "" },
                "description": "",
                "priority": column.priority,
            })
        })
        .collect();
    let mut table = json!({
        "kind": "Table",
        "apiVersion": request.api_version,
        "metadata": {},
        "columnDefinitions": columns,
    });
    // Moved in: `json!` would serialize the rows into a copy.
    table["rows"] = Value::Array(rows);
    if let Some(version) = resource_version {
        table["metadata"]["resourceVersion"] = version;
    }
    table
}

fn partial_metadata(metadata: Option<Value>, api_version: &str) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": api_version,
        "metadata": metadata.unwrap_or_else(|| json!({})),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::kinds::PODS;
    use crate::store::Entry;

    fn kubectl_accept() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
                .parse()
                .unwrap(),
        );
        headers
    }

    #[test]
    fn kubectls_accept_header_asks_for_a_v1_table() {
        assert_eq!(requested(&kubectl_accept()), Some("meta.k8s.io/v1"));
        let mut plain = HeaderMap::new();
        plain.insert(header::ACCEPT, "application/json".parse().unwrap());
        assert_eq!(requested(&plain), None);
        assert_eq!(requested(&HeaderMap::new()), None);
    }

    #[test]
    fn a_pod_list_becomes_rows_with_wide_columns_at_priority_1() {
        let list = json!({
            "kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "7"},
            "items": [{"metadata": {"name": "a", "namespace": "default"}, "spec": {"containers": [{"name": "c"}]}}],
        });
        let table = render(
            TableRequest::from_request(&kubectl_accept(), None),
            &PODS,
            list,
        );
        assert_eq!(table["kind"], "Table");
        assert_eq!(table["metadata"]["resourceVersion"], "7");
        let columns = table["columnDefinitions"].as_array().unwrap();
        assert_eq!(columns[0]["name"], "NAME");
        assert_eq!(columns[0]["priority"], 0);
        assert_eq!(columns[5]["priority"], 1);
        let row = &table["rows"][0];
        assert_eq!(row["cells"][0], "a");
        assert_eq!(row["cells"][1], "0/1");
        assert_eq!(row["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(row["object"]["metadata"]["namespace"], "default");
    }

    #[test]
    fn a_listing_renders_as_the_list_of_its_objects_does_whatever_rows_carry() {
        let pod = |name: &str| {
            json!({"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": name, "namespace": "default", "resourceVersion": "3"},
                   "spec": {"containers": [{"name": "c"}]}})
        };
        let entries = ["a", "b"].map(|name| {
            Arc::new(Entry {
                key: format!("/core/pods/default/{name}"),
                value: pod(name),
                revision: 3,
            })
        });
        for include in [None, Some("None"), Some("Object"), Some("Metadata")] {
            let request = TableRequest::from_request(&kubectl_accept(), include).unwrap();
            let listing = Listing {
                entries: entries.to_vec(),
                revision: 7,
            };
            let list = json!({"kind": "PodList", "apiVersion": "v1",
                              "metadata": {"resourceVersion": "7"}, "items": [pod("a"), pod("b")]});
            assert_eq!(
                render_listing(request, &PODS, listing),
                render(Some(request), &PODS, list),
                "includeObject={include:?}"
            );
        }
    }

    #[test]
    fn without_the_header_the_object_is_returned_as_is() {
        let pod = json!({"metadata": {"name": "a"}});
        let request = TableRequest::from_request(&HeaderMap::new(), Some("Object"));
        assert_eq!(request, None);
        assert_eq!(render(request, &PODS, pod.clone()), pod);
    }
}
