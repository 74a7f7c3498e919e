//! The `Pod Template:` section that `describe deployment`, `describe replicaset` and
//! `rollout history --revision` print, as kubectl's DescribePodTemplate does.

use serde_json::Value;

use super::describe::{Out, string_map, text};

/// Writes the template's labels, annotations (when it has any) and containers.
pub fn describe(out: &mut Out, template: &Value) {
    out.line(0, "Pod Template:");
    let metadata = &template["metadata"];
    out.map(1, "Labels", string_map(&metadata["labels"]).as_ref());
    let annotations = string_map(&metadata["annotations"]).filter(|a| !a.is_empty());
    if annotations.is_some() {
        out.annotations(1, "Annotations", annotations);
    }
    out.line(1, "Containers:");
    for container in template["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
    {
        // kubectl indents a template's container names one space more than their fields.
        out.line(1, format!(" {}:", text(&container["name"])));
        out.field(2, "Image", text(&container["image"]));
        if let Some(args) = container["args"].as_array() {
            out.line(2, "Args:");
            for arg in args {
                out.line(3, text(arg));
            }
        }
        let env = container["env"].as_array().cloned().unwrap_or_default();
        if env.is_empty() {
            out.field(2, "Environment", "<none>");
        } else {
            out.line(2, "Environment:");
            for var in env {
                out.field(3, &text(&var["name"]), text(&var["value"]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn template_shows_labels_annotations_and_containers() {
        let template = json!({
            "metadata": {"labels": {"app": "web"},
                         "annotations": {"kubernetes.io/change-cause": "set image"}},
            "spec": {"containers": [{"name": "c", "image": "a.wasm", "args": ["sleep", "9"],
                                     "env": [{"name": "MODE", "value": "fast"}]}]},
        });
        let mut out = Out::default();
        describe(&mut out, &template);
        assert_eq!(
            out.render(),
            "Pod Template:\n  Labels:       app=web\n  Annotations:  kubernetes.io/change-cause: set image\n  Containers:\n   c:\n    Image:  a.wasm\n    Args:\n      sleep\n      9\n    Environment:\n      MODE:  fast\n"
        );
    }
}
