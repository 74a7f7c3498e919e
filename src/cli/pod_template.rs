//! The `Pod Template:` section that `describe deployment`, `describe replicaset` and
//! `rollout history --revision` print, as kubectl's DescribePodTemplate does.

use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde_json::Value;

use super::describe::Out;
use super::describe_container::{ContainersOf, containers};
use super::describe_pod::{scheduling, volumes};

/// Writes the template's labels, annotations (when it has any), containers, volumes and
/// scheduling constraints.
pub fn describe(out: &mut Out, template: &Value) {
    let template: PodTemplateSpec = serde::Deserialize::deserialize(template).unwrap_or_default();
    let metadata = template.metadata.unwrap_or_default();
    let spec = template.spec.unwrap_or_default();
    out.line(0, "Pod Template:");
    out.map(1, "Labels", metadata.labels.as_ref());
    if metadata.annotations.as_ref().is_some_and(|a| !a.is_empty()) {
        out.annotations(1, "Annotations", metadata.annotations);
    }
    if let Some(account) = spec
        .service_account_name
        .as_deref()
        .filter(|a| !a.is_empty())
    {
        out.field(1, "Service Account", account);
    }
    let init_containers = spec.init_containers.as_deref().unwrap_or_default();
    if !init_containers.is_empty() {
        out.line(1, "Init Containers:");
        containers(out, init_containers, ContainersOf::Template);
    }
    out.line(1, "Containers:");
    containers(out, &spec.containers, ContainersOf::Template);
    volumes(out, 1, spec.volumes.as_deref().unwrap_or_default());
    scheduling(out, 1, &spec);
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
            "Pod Template:\n  Labels:       app=web\n  Annotations:  kubernetes.io/change-cause: set image\n  Containers:\n   c:\n    Image:      a.wasm\n    Port:       <none>\n    Host Port:  <none>\n    Args:\n      sleep\n      9\n    Environment:\n      MODE:        fast\n    Mounts:        <none>\n  Volumes:         <none>\n  Node-Selectors:  <none>\n  Tolerations:     <none>\n"
        );
    }
}
