use super::*;
use crate::api::kinds::strategy::tests::invalid_fields;
use crate::api::kinds::{Write, admit};
use serde_json::json;

fn service(spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": "web", "namespace": "default"}, "spec": spec})
}

fn fields(spec: Value) -> Vec<String> {
    invalid_fields(&SERVICES, service(spec))
}

#[test]
fn a_bare_service_gets_kubernetes_defaults() {
    let stored = admit(
        &SERVICES,
        service(json!({"selector": {"app": "web"}, "ports": [{"port": 80}]})),
        Write::Create,
    )
    .unwrap();
    let spec = &stored["spec"];
    assert_eq!(spec["type"], "ClusterIP");
    assert_eq!(spec["sessionAffinity"], "None");
    assert_eq!(spec["ports"][0]["protocol"], "TCP");
    assert_eq!(spec["ports"][0]["targetPort"], 80);
    assert_eq!(spec["ipFamilies"], json!(["IPv4"]));
    assert_eq!(spec["ipFamilyPolicy"], "SingleStack");
    assert_eq!(spec["internalTrafficPolicy"], "Cluster");
    assert!(spec.get("externalTrafficPolicy").is_none());
}

#[test]
fn node_ports_get_an_external_policy_and_client_ip_affinity_a_timeout() {
    let stored = admit(
        &SERVICES,
        service(
            json!({"type": "NodePort", "sessionAffinity": "ClientIP", "ports": [{"port": 80}]}),
        ),
        Write::Create,
    )
    .unwrap();
    assert_eq!(stored["spec"]["externalTrafficPolicy"], "Cluster");
    assert_eq!(
        stored["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"],
        10800
    );
}

#[test]
fn bad_ports_are_named_as_kube_apiserver_names_them() {
    let causes = fields(json!({"ports": [
        {"port": 0},
        {"name": "http", "port": 80, "targetPort": "Not_A_Name"},
        {"name": "http", "port": 81, "protocol": "ICMP", "nodePort": 30001},
    ]}));
    assert_eq!(
        causes,
        [
            "spec.ports[0].name: Required value",
            "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
            "spec.ports[0].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive",
            "spec.ports[1].targetPort: Invalid value: \"Not_A_Name\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-), contain at least one letter (a-z), not start or end with a hyphen and not contain adjacent hyphens, and be no more than 15 characters",
            "spec.ports[2].name: Duplicate value: \"http\"",
            "spec.ports[2].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'",
            "spec.ports[2].protocol: Unsupported value: \"ICMP\": supported values: \"TCP\", \"UDP\", \"SCTP\"",
        ]
    );
}

#[test]
fn ports_are_required_except_for_headless_and_external_name_services() {
    assert_eq!(fields(json!({})), ["spec.ports: Required value"]);
    assert!(fields(json!({"clusterIP": "None"})).is_empty());
    assert!(fields(json!({"type": "ExternalName", "externalName": "db.example.com"})).is_empty());
}

#[test]
fn external_names_selectors_and_affinity_timeouts_are_checked() {
    let causes = fields(json!({"type": "ExternalName", "externalName": "Not A Host"}));
    assert!(
        causes[0].starts_with("spec.externalName: Invalid value: \"Not A Host\""),
        "{causes:?}"
    );
    assert_eq!(
        fields(json!({"type": "ExternalName"})),
        ["spec.externalName: Required value"]
    );
    let causes = fields(json!({"selector": {"app": "we b"}, "ports": [{"port": 80}]}));
    assert!(
        causes[0].starts_with("spec.selector[app]: Invalid value: \"we b\""),
        "{causes:?}"
    );
    let causes = fields(
        json!({"ports": [{"port": 80}], "sessionAffinity": "ClientIP",
        "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 90000}}}),
    );
    assert_eq!(
        causes,
        [
            "spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 90000: must be greater than 0 and less than 86400"
        ]
    );
    assert_eq!(
        fields(json!({"type": "Magic", "ports": [{"port": 80}]})),
        [
            "spec.type: Unsupported value: \"Magic\": supported values: \"ClusterIP\", \"NodePort\", \"LoadBalancer\", \"ExternalName\""
        ]
    );
    assert_eq!(
        fields(json!({"type": "NodePort", "clusterIP": "None", "ports": [{"port": 80}]})),
        [
            "spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for NodePort services"
        ]
    );
}

#[test]
fn the_cluster_ip_may_not_change_but_an_update_that_omits_it_keeps_it() {
    let old = admit(
        &SERVICES,
        service(json!({"clusterIP": "10.96.0.9", "type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]})),
        Write::Create,
    )
    .unwrap();
    let omitted = admit(
        &SERVICES,
        service(json!({"type": "NodePort", "ports": [{"port": 80}]})),
        Write::Update { old: &old },
    )
    .unwrap();
    assert_eq!(omitted["spec"]["clusterIP"], "10.96.0.9");
    assert_eq!(omitted["spec"]["ports"][0]["nodePort"], 30080);
    let error = admit(
        &SERVICES,
        service(json!({"clusterIP": "10.96.0.10", "ports": [{"port": 80}]})),
        Write::Update { old: &old },
    )
    .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("spec.clusterIP: Invalid value: \"10.96.0.10\": field is immutable"),
        "{error}"
    );
}

#[test]
fn turning_a_node_port_service_into_a_cluster_ip_one_drops_its_node_ports() {
    let old = admit(
        &SERVICES,
        service(json!({"clusterIP": "10.96.0.9", "type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]})),
        Write::Create,
    )
    .unwrap();
    let mut changed = old.clone();
    changed["spec"]["type"] = json!("ClusterIP");
    let stored = admit(&SERVICES, changed, Write::Update { old: &old }).unwrap();
    assert!(
        stored["spec"]["ports"][0].get("nodePort").is_none(),
        "{stored}"
    );
    assert!(
        stored["spec"].get("externalTrafficPolicy").is_none(),
        "{stored}"
    );
}

#[test]
fn an_unknown_load_balancer_algorithm_is_refused_naming_the_annotation() {
    let annotated = |value: &str| {
        let mut object = service(json!({"ports": [{"port": 80}]}));
        object["metadata"]["annotations"] = json!({LOAD_BALANCER_ALGORITHM: value});
        invalid_fields(&SERVICES, object)
    };
    assert_eq!(
        annotated("fastest"),
        [
            "metadata.annotations[wasmkube.io/load-balancer-algorithm]: Unsupported value: \"fastest\": supported values: \"round-robin\", \"least-requests\""
        ]
    );
    assert!(annotated("least-requests").is_empty());
    assert!(annotated("round-robin").is_empty());
}
