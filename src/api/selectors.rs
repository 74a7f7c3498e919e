//! Label and field selectors, as `?labelSelector=` and `?fieldSelector=` spell them.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector as K8sLabelSelector;
use serde_json::Value;

use super::error::{ApiError, ApiResult};
use super::kinds::Resource;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector(Vec<Requirement>);

impl LabelSelector {
    /// Parses `app=web,tier!=db,env in (a,b),!legacy`.
    ///
    /// # Errors
    /// `BadRequest` naming the clause that does not parse.
    pub fn parse(text: &str) -> ApiResult<Self> {
        let mut requirements = Vec::new();
        for clause in split_clauses(text) {
            let clause = clause.trim();
            if clause.is_empty() {
                continue;
            }
            requirements.push(parse_clause(clause).ok_or_else(|| {
                ApiError::BadRequest(format!("unable to parse requirement: \"{clause}\""))
            })?);
        }
        Ok(Self(requirements))
    }

    /// The selector `matchLabels` describes.
    pub fn from_map(labels: &BTreeMap<String, String>) -> Self {
        Self(
            labels
                .iter()
                .map(|(k, v)| Requirement::Equals(k.clone(), v.clone()))
                .collect(),
        )
    }

    /// The selector a `metav1.LabelSelector` (`matchLabels` and `matchExpressions`) describes.
    ///
    /// # Errors
    /// `BadRequest` for an unknown operator, or values given to `Exists`/`DoesNotExist` or
    /// missing for `In`/`NotIn`.
    pub fn from_k8s(selector: &K8sLabelSelector) -> ApiResult<Self> {
        let mut requirements: Vec<Requirement> = selector
            .match_labels
            .iter()
            .flatten()
            .map(|(k, v)| Requirement::Equals(k.clone(), v.clone()))
            .collect();
        for expression in selector.match_expressions.iter().flatten() {
            let key = expression.key.clone();
            let values = expression.values.clone().unwrap_or_default();
            let requirement = match (expression.operator.as_str(), values.is_empty()) {
                ("In", false) => Requirement::In(key, values),
                ("NotIn", false) => Requirement::NotIn(key, values),
                ("Exists", true) => Requirement::Exists(key),
                ("DoesNotExist", true) => Requirement::DoesNotExist(key),
                ("In" | "NotIn", true) => {
                    return Err(ApiError::BadRequest(format!(
                        "for 'in', 'notin' operators, values set can't be empty (key {key})"
                    )));
                }
                ("Exists" | "DoesNotExist", false) => {
                    return Err(ApiError::BadRequest(format!(
                        "values set must be empty for exists and does not exist (key {key})"
                    )));
                }
                (operator, _) => {
                    return Err(ApiError::BadRequest(format!(
                        "\"{operator}\" is not a valid label selector operator"
                    )));
                }
            };
            requirements.push(requirement);
        }
        Ok(Self(requirements))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether an object's `metadata.labels` satisfy every requirement.
    pub fn matches(&self, object: &Value) -> bool {
        let labels = object.pointer("/metadata/labels");
        let label = |key: &str| labels.and_then(|l| l.get(key)).and_then(Value::as_str);
        self.0.iter().all(|requirement| match requirement {
            Requirement::Equals(k, v) => label(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => label(k) != Some(v.as_str()),
            Requirement::In(k, vs) => label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            Requirement::NotIn(k, vs) => !label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            Requirement::Exists(k) => label(k).is_some(),
            Requirement::DoesNotExist(k) => label(k).is_none(),
        })
    }
}

/// The `?labelSelector=` text form, as a Scale's `status.selector` reports it.
impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, requirement) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            match requirement {
                Requirement::Equals(k, v) => write!(f, "{k}={v}")?,
                Requirement::NotEquals(k, v) => write!(f, "{k}!={v}")?,
                Requirement::In(k, vs) => write!(f, "{k} in ({})", vs.join(","))?,
                Requirement::NotIn(k, vs) => write!(f, "{k} notin ({})", vs.join(","))?,
                Requirement::Exists(k) => write!(f, "{k}")?,
                Requirement::DoesNotExist(k) => write!(f, "!{k}")?,
            }
        }
        Ok(())
    }
}

/// Splits on commas that are not inside a `( )` value set.
fn split_clauses(text: &str) -> Vec<&str> {
    let (mut clauses, mut depth, mut start) = (Vec::new(), 0i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                clauses.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    clauses.push(&text[start..]);
    clauses
}

fn parse_clause(clause: &str) -> Option<Requirement> {
    if let Some(key) = clause.strip_prefix('!') {
        return valid_key(key.trim()).map(Requirement::DoesNotExist);
    }
    if let Some((key, value)) = clause.split_once("!=") {
        return Some(Requirement::NotEquals(
            valid_key(key.trim())?,
            value.trim().to_string(),
        ));
    }
    if let Some((key, value)) = clause.split_once("==").or_else(|| clause.split_once('=')) {
        return Some(Requirement::Equals(
            valid_key(key.trim())?,
            value.trim().to_string(),
        ));
    }
    for (operator, negated) in [(" notin ", true), (" in ", false)] {
        if let Some((key, set)) = clause.split_once(operator) {
            let values = set
                .trim()
                .strip_prefix('(')?
                .strip_suffix(')')?
                .split(',')
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .collect();
            let key = valid_key(key.trim())?;
            return Some(if negated {
                Requirement::NotIn(key, values)
            } else {
                Requirement::In(key, values)
            });
        }
    }
    valid_key(clause).map(Requirement::Exists)
}

fn valid_key(key: &str) -> Option<String> {
    let ok = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    ok.then(|| key.to_string())
}

/// A parsed field selector over the few fields Kubernetes indexes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector(Vec<(String, bool, String)>);

/// Fields every kind supports, beside each kind's `selectable_fields`.
const COMMON_FIELDS: &[&str] = &["metadata.name", "metadata.namespace"];

impl FieldSelector {
    /// Parses `spec.nodeName=n1,status.phase!=Running` for objects of `resource`.
    ///
    /// # Errors
    /// `BadRequest` for a malformed clause or a field `kind` cannot be selected by, in
    /// Kubernetes' words.
    pub fn parse(text: &str, resource: &Resource) -> ApiResult<Self> {
        let extra = resource.selectable_fields;
        let mut terms = Vec::new();
        for clause in text.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            let (field, negated, value) = if let Some((f, v)) = clause.split_once("!=") {
                (f, true, v)
            } else if let Some((f, v)) = clause.split_once("==").or_else(|| clause.split_once('='))
            {
                (f, false, v)
            } else {
                return Err(ApiError::BadRequest(format!(
                    "invalid selector: '{clause}'; can't understand '{clause}'"
                )));
            };
            let field = field.trim();
            if !COMMON_FIELDS.contains(&field) && !extra.contains(&field) {
                return Err(ApiError::BadRequest(format!(
                    "\"{field}\" is not a known field selector: only \"{}\"",
                    COMMON_FIELDS
                        .iter()
                        .chain(extra)
                        .copied()
                        .collect::<Vec<_>>()
                        .join("\", \"")
                )));
            }
            terms.push((field.to_string(), negated, value.trim().to_string()));
        }
        Ok(Self(terms))
    }

    pub fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|(field, negated, wanted)| {
            let pointer = format!("/{}", field.replace('.', "/"));
            let actual = object
                .pointer(&pointer)
                .and_then(Value::as_str)
                .unwrap_or("");
            (actual == wanted) != *negated
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::kinds::{NODES, PODS};
    use serde_json::json;

    fn labelled(labels: Value) -> Value {
        json!({"metadata": {"labels": labels}})
    }

    #[test]
    fn every_label_operator_matches_as_kubernetes_does() {
        let web = labelled(json!({"app": "web", "tier": "front"}));
        let cases = [
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app in (web, db)", true),
            ("app notin (web)", false),
            ("tier", true),
            ("!tier", false),
            ("!legacy", true),
            ("app=web,tier=back", false),
            ("env notin (prod)", true),
            ("", true),
        ];
        for (selector, expected) in cases {
            assert_eq!(
                LabelSelector::parse(selector).unwrap().matches(&web),
                expected,
                "{selector}"
            );
        }
    }

    #[test]
    fn match_labels_and_expressions_select_and_print_as_a_query() {
        let selector: K8sLabelSelector = serde_json::from_value(json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]},
                                 {"key": "legacy", "operator": "DoesNotExist"}]
        }))
        .unwrap();
        let selector = LabelSelector::from_k8s(&selector).unwrap();
        assert!(selector.matches(&labelled(json!({"app": "web", "tier": "b"}))));
        assert!(!selector.matches(&labelled(json!({"app": "web", "tier": "c"}))));
        assert!(!selector.matches(&labelled(json!({"app": "web", "tier": "a", "legacy": "1"}))));
        assert_eq!(selector.to_string(), "app=web,tier in (a,b),!legacy");
        assert_eq!(
            LabelSelector::parse(&selector.to_string()).unwrap(),
            selector
        );
        let bad: K8sLabelSelector =
            serde_json::from_value(json!({"matchExpressions": [{"key": "a", "operator": "Near"}]}))
                .unwrap();
        assert!(LabelSelector::from_k8s(&bad).is_err());
    }

    #[test]
    fn malformed_label_selector_is_a_bad_request() {
        assert!(LabelSelector::parse("app in web").is_err());
        assert!(LabelSelector::parse("a b=c").is_err());
    }

    #[test]
    fn field_selector_matches_pod_fields_and_rejects_unknown_ones() {
        let pod = json!({"metadata": {"name": "a", "namespace": "ns"}, "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}});
        assert!(
            FieldSelector::parse("spec.nodeName=n1", &PODS)
                .unwrap()
                .matches(&pod)
        );
        assert!(
            !FieldSelector::parse("status.phase!=Running", &PODS)
                .unwrap()
                .matches(&pod)
        );
        assert!(
            FieldSelector::parse("spec.nodeName=", &PODS)
                .unwrap()
                .matches(&json!({}))
        );
        assert!(FieldSelector::parse("spec.image=x", &PODS).is_err());
        assert!(FieldSelector::parse("spec.nodeName=n1", &NODES).is_err());
    }
}
