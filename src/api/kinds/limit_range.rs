//! LimitRange (`v1`): a namespace's defaults for its containers' resources. Stored with
//! Kubernetes' defaults filled in; the pod write path applies `default` and `defaultRequest`
//! to new pods (`api::limit_ranger`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{LimitRange, LimitRangeItem};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde_json::Value;

use super::resource::Resource;
use super::strategy::{Admission, Strategy, encode, schema_of};
use crate::api::error::{ApiResult, Cause};
use crate::api::{printers, quantity};

pub static LIMIT_RANGES: Resource = Resource {
    group: "",
    version: "v1",
    kind: "LimitRange",
    plural: "limitranges",
    singular: "limitrange",
    short_names: &["limits"],
    categories: &[],
    namespaced: true,
    subresources: &[],
    label_names: false,
    selectable_fields: &[],
    strategy: &LimitRangeStrategy,
    printer: &printers::limit_range::COLUMNS,
};

const TYPES: &[&str] = &["Container", "Pod", "PersistentVolumeClaim"];
const RESOURCES: &[&str] = &["cpu", "memory", "ephemeral-storage"];

struct LimitRangeStrategy;

impl Strategy for LimitRangeStrategy {
    fn admit(&self, admission: &mut Admission<'_>) -> ApiResult<Value> {
        let mut range: LimitRange = admission.decode()?;
        let items = range.spec.as_mut().map(|s| &mut s.limits);
        for (i, item) in items.into_iter().flatten().enumerate() {
            validate_item(&format!("spec.limits[{i}]"), item, &mut admission.causes);
            default_item(item);
        }
        encode(&range)
    }

    fn schema(&self) -> Value {
        schema_of::<LimitRange>()
    }
}

/// Kubernetes' defaults of a Container item: `default` from `max`, then `defaultRequest`
/// from `default`, else from `min`.
fn default_item(item: &mut LimitRangeItem) {
    if item.type_ != "Container" {
        return;
    }
    let fill = |target: &mut Option<BTreeMap<String, Quantity>>,
                from: &Option<BTreeMap<String, Quantity>>| {
        for (name, value) in from.iter().flatten() {
            target
                .get_or_insert_with(BTreeMap::new)
                .entry(name.clone())
                .or_insert_with(|| value.clone());
        }
    };
    fill(&mut item.default, &item.max.clone());
    fill(&mut item.default_request, &item.default.clone());
    fill(&mut item.default_request, &item.min.clone());
}

fn validate_item(path: &str, item: &LimitRangeItem, causes: &mut Vec<Cause>) {
    if !TYPES.contains(&item.type_.as_str()) {
        causes.push(Cause::unsupported(
            format!("{path}.type"),
            &item.type_,
            TYPES,
        ));
    }
    let lists = [
        ("default", &item.default),
        ("defaultRequest", &item.default_request),
        ("max", &item.max),
        ("min", &item.min),
        ("maxLimitRequestRatio", &item.max_limit_request_ratio),
    ];
    for (list, values) in lists {
        if item.type_ == "Pod" && matches!(list, "default" | "defaultRequest") && values.is_some() {
            causes.push(Cause::forbidden(
                format!("{path}.{list}"),
                "may not be specified when `type` is 'Pod'",
            ));
        }
        for (name, value) in values.iter().flatten() {
            let field = format!("{path}.{list}[{name}]");
            match parse(name, value) {
                None if !RESOURCES.contains(&name.as_str()) => {
                    causes.push(Cause::unsupported(field, name, RESOURCES));
                }
                None => causes.push(Cause::invalid(field, &value.0, "must be a valid quantity")),
                Some(_) => {}
            }
        }
    }
    for (name, request) in item.default_request.iter().flatten() {
        let Some(limit) = item.default.as_ref().and_then(|d| d.get(name)) else {
            continue;
        };
        if let (Some(requested), Some(limited)) = (parse(name, request), parse(name, limit))
            && requested > limited
        {
            causes.push(Cause::invalid(
                format!("{path}.defaultRequest[{name}]"),
                &request.0,
                &format!("must be less than or equal to default value {}", limit.0),
            ));
        }
    }
}

/// A quantity of a known resource, in millicores for cpu and bytes otherwise.
fn parse(name: &str, value: &Quantity) -> Option<u64> {
    match name {
        "cpu" => quantity::millicores(&value.0),
        "memory" | "ephemeral-storage" => quantity::bytes(&value.0),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::kinds::strategy::tests::invalid_fields;
    use crate::api::kinds::{Write, admit};
    use serde_json::json;

    fn range(limits: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "limits", "namespace": "default"},
               "spec": {"limits": limits}})
    }

    #[test]
    fn defaults_come_from_max_and_default_requests_from_defaults() {
        let stored = admit(
            &LIMIT_RANGES,
            range(
                json!([{"type": "Container", "max": {"memory": "1Gi"}, "default": {"cpu": "500m"},
                           "min": {"memory": "64Mi"}}]),
            ),
            Write::Create,
        )
        .unwrap();
        let item = &stored["spec"]["limits"][0];
        assert_eq!(item["default"], json!({"cpu": "500m", "memory": "1Gi"}));
        assert_eq!(
            item["defaultRequest"],
            json!({"cpu": "500m", "memory": "1Gi"})
        );
    }

    #[test]
    fn bad_types_quantities_and_requests_above_defaults_are_named() {
        let causes = invalid_fields(
            &LIMIT_RANGES,
            range(json!([
                {"type": "Node"},
                {"type": "Pod", "default": {"memory": "1Gi"}},
                {"type": "Container", "default": {"memory": "lots", "gpu": "1"}},
                {"type": "Container", "default": {"cpu": "1"}, "defaultRequest": {"cpu": "2"}},
            ])),
        );
        let fields: Vec<&str> = causes
            .iter()
            .map(|c| c.split(':').next().unwrap())
            .collect();
        assert_eq!(
            fields,
            [
                "spec.limits[0].type",
                "spec.limits[1].default",
                "spec.limits[2].default[gpu]",
                "spec.limits[2].default[memory]",
                "spec.limits[3].defaultRequest[cpu]",
            ],
            "{causes:?}"
        );
    }
}
