//! An event's columns: when, type, reason, the object it is about, and the message.

use k8s_openapi::api::core::v1::Event;
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

use super::{Column, Columns, decode, since};

pub static COLUMNS: Columns = Columns {
    columns: &[
        Column::standard("LAST SEEN"),
        Column::standard("TYPE"),
        Column::standard("REASON"),
        Column::standard("OBJECT"),
        Column::standard("MESSAGE"),
    ],
    cells,
};

fn cells(object: &Value, now: Timestamp) -> Vec<String> {
    let event: Event = decode(object);
    let about = &event.involved_object;
    vec![
        since(event_last_seen(&event), now),
        event.type_.clone().unwrap_or_default(),
        event.reason.clone().unwrap_or_default(),
        format!(
            "{}/{}",
            about.kind.clone().unwrap_or_default().to_lowercase(),
            about.name.clone().unwrap_or_default()
        ),
        event
            .message
            .clone()
            .unwrap_or_default()
            .trim_end()
            .to_string(),
    ]
}

/// When an event was last seen: lastTimestamp, else eventTime, else firstTimestamp, else
/// its creation.
pub fn event_last_seen(event: &Event) -> Option<Timestamp> {
    event
        .last_timestamp
        .as_ref()
        .map(|t| t.0)
        .or_else(|| {
            event
                .series
                .as_ref()
                .and_then(|s| s.last_observed_time.as_ref())
                .map(|t| t.0)
        })
        .or_else(|| event.event_time.as_ref().map(|t| t.0))
        .or_else(|| event.first_timestamp.as_ref().map(|t| t.0))
        .or_else(|| event.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

#[cfg(test)]
mod tests {
    use super::super::test_now;
    use super::*;
    use serde_json::json;

    #[test]
    fn rows_name_the_object() {
        let event = json!({
            "metadata": {"name": "e1", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "demo"},
            "reason": "Started", "type": "Normal", "message": "Started container writer",
            "lastTimestamp": "2024-01-09T23:58:00Z"
        });
        assert_eq!(
            cells(&event, test_now()),
            [
                "2m",
                "Normal",
                "Started",
                "pod/demo",
                "Started container writer"
            ]
        );
    }
}
