//! Request parameters (selectors, delete options), watch events and query encoding.

use serde_json::{Value, json};

use super::error::{ClientError, Status};
pub use crate::api::kinds::percent_encode;

/// `labelSelector` and `fieldSelector` of a list or watch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListParams {
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
}

impl ListParams {
    pub fn labels(selector: &str) -> Self {
        ListParams {
            label_selector: Some(selector.to_string()),
            ..Self::default()
        }
    }

    pub fn fields(selector: &str) -> Self {
        ListParams {
            field_selector: Some(selector.to_string()),
            ..Self::default()
        }
    }

    pub(crate) fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        if let Some(selector) = self.label_selector.as_deref().filter(|s| !s.is_empty()) {
            pairs.push(("labelSelector", selector.to_string()));
        }
        if let Some(selector) = self.field_selector.as_deref().filter(|s| !s.is_empty()) {
            pairs.push(("fieldSelector", selector.to_string()));
        }
        pairs
    }
}

/// `DeleteOptions` of a delete.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeleteParams {
    /// 0 deletes at once (force); None uses the object's own grace period.
    pub grace_period_seconds: Option<i64>,
    /// `Background`, `Foreground` or `Orphan`.
    pub propagation_policy: Option<String>,
    /// Delete only this incarnation (`preconditions.uid`).
    pub precondition_uid: Option<String>,
}

impl DeleteParams {
    pub(crate) fn body(&self) -> Option<Value> {
        if *self == DeleteParams::default() {
            return None;
        }
        let mut body = json!({"apiVersion": "v1", "kind": "DeleteOptions"});
        if let Some(grace) = self.grace_period_seconds {
            body["gracePeriodSeconds"] = json!(grace);
        }
        if let Some(policy) = &self.propagation_policy {
            body["propagationPolicy"] = json!(policy);
        }
        if let Some(uid) = &self.precondition_uid {
            body["preconditions"] = json!({"uid": uid});
        }
        Some(body)
    }
}

/// The type of a watch event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchEventType {
    Added,
    Modified,
    Deleted,
    Bookmark,
}

/// One event of a watch stream.
#[derive(Clone, Debug, PartialEq)]
pub struct WatchEvent {
    pub event_type: WatchEventType,
    pub object: Value,
}

impl WatchEvent {
    /// Reads one line of a watch stream.
    ///
    /// # Errors
    /// `Api` for an `ERROR` event (410 Expired for a compacted resourceVersion),
    /// `Decode` for a line that is not a watch event.
    pub fn parse(line: &str, url: &str) -> Result<WatchEvent, ClientError> {
        let value: Value = serde_json::from_str(line).map_err(|source| ClientError::Decode {
            url: url.to_string(),
            source,
        })?;
        let event_type = match value.get("type").and_then(Value::as_str) {
            Some("ADDED") => WatchEventType::Added,
            Some("MODIFIED") => WatchEventType::Modified,
            Some("DELETED") => WatchEventType::Deleted,
            Some("BOOKMARK") => WatchEventType::Bookmark,
            _ => {
                return Err(ClientError::Api(Box::new(Status::from_value(
                    &value["object"],
                    500,
                ))));
            }
        };
        let object = value.get("object").cloned().unwrap_or(Value::Null);
        Ok(WatchEvent { event_type, object })
    }
}

/// `path` with `pairs` appended as a percent-encoded query.
pub fn with_query(path: &str, pairs: &[(&str, String)]) -> String {
    if pairs.is_empty() {
        return path.to_string();
    }
    let query: Vec<String> = pairs
        .iter()
        .map(|(key, value)| format!("{}={}", percent_encode(key), percent_encode(value)))
        .collect();
    let separator = if path.contains('?') { '&' } else { '?' };
    format!("{path}{separator}{}", query.join("&"))
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        let path = with_query(
            "/api/v1/pods",
            &[
                ("labelSelector", "app in (a,b),tier!=db".to_string()),
                ("watch", "true".to_string()),
            ],
        );
        assert_eq!(
            path,
            "/api/v1/pods?labelSelector=app%20in%20%28a%2Cb%29%2Ctier%21%3Ddb&watch=true"
        );
        assert_eq!(with_query("/x?a=1", &[("b", "2".into())]), "/x?a=1&b=2");
    }

    #[test]
    fn watch_lines_parse_into_events_and_errors() {
        let event = WatchEvent::parse(r#"{"type":"ADDED","object":{"kind":"Pod"}}"#, "u").unwrap();
        assert_eq!(event.event_type, WatchEventType::Added);
        assert_eq!(event.object["kind"], "Pod");
        let gone = WatchEvent::parse(
            r#"{"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired","message":"too old resource version"}}"#,
            "u",
        )
        .unwrap_err();
        assert_eq!(gone.code(), Some(410));
    }

    #[test]
    fn delete_params_become_a_delete_options_body() {
        assert_eq!(DeleteParams::default().body(), None);
        let body = DeleteParams {
            grace_period_seconds: Some(0),
            propagation_policy: Some("Background".into()),
            precondition_uid: Some("u1".into()),
        }
        .body()
        .unwrap();
        assert_eq!(body["kind"], "DeleteOptions");
        assert_eq!(body["gracePeriodSeconds"], 0);
        assert_eq!(body["propagationPolicy"], "Background");
        assert_eq!(body["preconditions"]["uid"], "u1");
    }
}
