//! Recording Kubernetes Events: the answers to "why?" that `describe` shows.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::api::objects::now;
use crate::api::resources::EVENTS;
use crate::api::{Api, Part};

/// `Normal` or `Warning`, as Event.type spells them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

type EventKey = (String, String, String);

/// Writes events for one component (`kubelet`, `default-scheduler`) on one host; repeats of
/// the same reason and message about the same object bump `count` instead of piling up.
#[derive(Clone)]
pub struct Recorder {
    api: Arc<Api>,
    component: String,
    host: String,
    /// (object uid, reason, message) → name of the event already written for it.
    seen: Arc<Mutex<HashMap<EventKey, String>>>,
}

impl Recorder {
    pub fn new(api: Arc<Api>, component: &str, host: &str) -> Self {
        Self {
            api,
            component: component.into(),
            host: host.into(),
            seen: Arc::default(),
        }
    }

    /// Records an event about `object` (a stored object), optionally about one of its parts
    /// (`spec.containers{web}`). Failures are logged, never returned: an event is advisory.
    pub fn record(
        &self,
        object: &Value,
        field_path: Option<&str>,
        kind: EventType,
        reason: &str,
        message: &str,
    ) {
        let meta = &object["metadata"];
        let namespace = meta["namespace"].as_str().unwrap_or("default").to_string();
        let uid = meta["uid"].as_str().unwrap_or_default().to_string();
        let dedupe_key = (uid.clone(), reason.to_string(), message.to_string());
        let existing = self
            .seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&dedupe_key)
            .cloned();
        if let Some(name) = existing
            && self.bump(&namespace, &name)
        {
            return;
        }
        let name = format!(
            "{}.{}",
            meta["name"].as_str().unwrap_or("object"),
            hex::encode(rand::random::<[u8; 8]>())
        );
        let timestamp = now();
        let event = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": {
                "apiVersion": object["apiVersion"], "kind": object["kind"], "name": meta["name"],
                "namespace": meta["namespace"], "uid": uid, "fieldPath": field_path,
                "resourceVersion": meta["resourceVersion"],
            },
            "reason": reason,
            "message": message,
            "type": match kind { EventType::Normal => "Normal", EventType::Warning => "Warning" },
            "source": {"component": self.component, "host": self.host},
            "reportingComponent": self.component,
            "reportingInstance": self.host,
            "firstTimestamp": timestamp,
            "lastTimestamp": timestamp,
            "count": 1,
        });
        match self.api.create(&EVENTS, Some(&namespace), event) {
            Ok(_) => {
                let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
                if seen.len() > 4096 {
                    seen.clear();
                }
                seen.insert(dedupe_key, name);
            }
            Err(error) => tracing::debug!(%error, reason, "event not recorded"),
        }
    }

    /// Counts one more occurrence of an event already written; false if it is gone.
    fn bump(&self, namespace: &str, name: &str) -> bool {
        let Ok(mut event) = self.api.get(&EVENTS, Some(namespace), name) else {
            return false;
        };
        let count = event["count"].as_i64().unwrap_or(1);
        event["count"] = json!(count + 1);
        event["lastTimestamp"] = json!(now());
        self.api
            .update(&EVENTS, Some(namespace), name, event, Part::Main)
            .is_ok()
    }
}
