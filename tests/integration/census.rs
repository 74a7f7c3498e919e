//! What a node-failure check counts: Ready nodes, and the pods still meant to run. Shared with
//! `benches/node_death.rs`, which includes this file.

use serde_json::Value;
use wasmkube::api::Api;
use wasmkube::api::kinds::PODS;

/// Whether a Node reports `Ready=True`.
pub fn is_ready(node: &Value) -> bool {
    node["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

/// The pods of `default` not being deleted: their node, and whether their container runs.
pub fn live_pods(api: &Api) -> Vec<(String, bool)> {
    let list = api
        .list(&PODS, Some("default"), &Default::default())
        .unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .map(|p| {
            let node = p["spec"]["nodeName"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let running = p["status"]["containerStatuses"][0]["state"]["running"].is_object();
            (node, running)
        })
        .collect()
}
