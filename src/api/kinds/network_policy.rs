//! NetworkPolicy (`networking.k8s.io/v1`): which pods a namespace's pods may reach and be
//! reached by. Validation is Kubernetes' (`ValidateNetworkPolicy`); the node enforces it at
//! connect time (`node::network::policy`).

use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector as K8sLabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use super::resource::Resource;
use super::service::port_name_error;
use super::strategy::{Admission, Strategy, encode, schema_of};
use crate::api::error::{ApiResult, Bare, Cause};
use crate::api::printers;
use crate::api::selectors::LabelSelector;
use crate::cidr::IpCidr;

pub static NETWORK_POLICIES: Resource = Resource {
    group: "networking.k8s.io",
    version: "v1",
    kind: "NetworkPolicy",
    plural: "networkpolicies",
    singular: "networkpolicy",
    short_names: &["netpol"],
    categories: &[],
    namespaced: true,
    subresources: &[],
    label_names: false,
    selectable_fields: &[],
    strategy: &NetworkPolicyStrategy,
    printer: &printers::network_policy::COLUMNS,
};

const POLICY_TYPES: &[&str] = &["Ingress", "Egress"];
const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const PORT_RANGE: &str = "must be between 1 and 65535, inclusive";

struct NetworkPolicyStrategy;

impl Strategy for NetworkPolicyStrategy {
    fn admit(&self, admission: &mut Admission<'_>) -> ApiResult<Value> {
        let policy: NetworkPolicy = admission.decode()?;
        validate_spec(
            policy.spec.as_ref().unwrap_or(&Default::default()),
            &mut admission.causes,
        );
        encode(&policy)
    }

    fn schema(&self) -> Value {
        schema_of::<NetworkPolicy>()
    }
}

/// `ValidateNetworkPolicySpec`: selectors, rules' ports and peers, and the policy types.
fn validate_spec(spec: &NetworkPolicySpec, causes: &mut Vec<Cause>) {
    if let Some(selector) = &spec.pod_selector {
        validate_selector(selector, "spec.podSelector", causes);
    }
    for (i, rule) in spec.ingress.iter().flatten().enumerate() {
        let path = format!("spec.ingress[{i}]");
        for (j, port) in rule.ports.iter().flatten().enumerate() {
            validate_port(port, &format!("{path}.ports[{j}]"), causes);
        }
        for (j, peer) in rule.from.iter().flatten().enumerate() {
            validate_peer(peer, &format!("{path}.from[{j}]"), causes);
        }
    }
    for (i, rule) in spec.egress.iter().flatten().enumerate() {
        let path = format!("spec.egress[{i}]");
        for (j, port) in rule.ports.iter().flatten().enumerate() {
            validate_port(port, &format!("{path}.ports[{j}]"), causes);
        }
        for (j, peer) in rule.to.iter().flatten().enumerate() {
            validate_peer(peer, &format!("{path}.to[{j}]"), causes);
        }
    }
    let types = spec.policy_types.as_deref().unwrap_or_default();
    if types.len() > POLICY_TYPES.len() {
        let shown = format!("[{}]", types.join(" "));
        let why = "may not specify more than two policyTypes";
        causes.push(Cause::invalid("spec.policyTypes", Bare(shown), why));
        return;
    }
    for (i, kind) in types.iter().enumerate() {
        if !POLICY_TYPES.contains(&kind.as_str()) {
            let field = format!("spec.policyTypes[{i}]");
            causes.push(Cause::unsupported(field, kind, POLICY_TYPES));
        }
    }
}

/// `ValidateLabelSelector`: known operators, values where they belong, valid keys.
fn validate_selector(selector: &K8sLabelSelector, path: &str, causes: &mut Vec<Cause>) {
    for (i, expression) in selector.match_expressions.iter().flatten().enumerate() {
        const OPERATORS: &[&str] = &["In", "NotIn", "Exists", "DoesNotExist"];
        if !OPERATORS.contains(&expression.operator.as_str()) {
            let field = format!("{path}.matchExpressions[{i}].operator");
            causes.push(Cause::unsupported(field, &expression.operator, OPERATORS));
        }
    }
    let labels = serde_json::to_value(&selector.match_labels).unwrap_or_default();
    super::meta::validate_labels(&labels, &format!("{path}.matchLabels"), causes);
    if let Err(error) = LabelSelector::from_k8s(selector) {
        causes.push(Cause::invalid(path, "", &error.to_string()));
    }
}

/// `ValidateNetworkPolicyPort`: a known protocol, a port number or name, and an `endPort`
/// only after a numeric port it does not precede.
fn validate_port(port: &NetworkPolicyPort, path: &str, causes: &mut Vec<Cause>) {
    if let Some(protocol) = &port.protocol
        && !PROTOCOLS.contains(&protocol.as_str())
    {
        causes.push(Cause::unsupported(
            format!("{path}.protocol"),
            protocol,
            PROTOCOLS,
        ));
    }
    let end = format!("{path}.endPort");
    match (&port.port, port.end_port) {
        (Some(IntOrString::Int(number)), end_port) => {
            if !(1..=65535).contains(number) {
                causes.push(Cause::invalid(format!("{path}.port"), *number, PORT_RANGE));
            }
            if let Some(end_port) = end_port {
                if end_port < *number {
                    let why = "must be greater than or equal to `port`";
                    causes.push(Cause::invalid(&end, *number, why));
                }
                if !(1..=65535).contains(&end_port) {
                    causes.push(Cause::invalid(&end, end_port, PORT_RANGE));
                }
            }
        }
        (Some(IntOrString::String(name)), end_port) => {
            if let Some(end_port) = end_port {
                let why = "may not be specified when `port` is non-numeric";
                causes.push(Cause::invalid(&end, end_port, why));
            }
            if let Some(error) = port_name_error(name) {
                causes.push(Cause::invalid(format!("{path}.port"), name, &error));
            }
        }
        (None, Some(end_port)) => {
            let why = "may not be specified when `port` is not specified";
            causes.push(Cause::invalid(&end, end_port, why));
        }
        (None, None) => {}
    }
}

/// `ValidateNetworkPolicyPeer`: at least one of the three, and an `ipBlock` alone.
fn validate_peer(peer: &NetworkPolicyPeer, path: &str, causes: &mut Vec<Cause>) {
    if let Some(selector) = &peer.pod_selector {
        validate_selector(selector, &format!("{path}.podSelector"), causes);
    }
    if let Some(selector) = &peer.namespace_selector {
        validate_selector(selector, &format!("{path}.namespaceSelector"), causes);
    }
    if let Some(block) = &peer.ip_block {
        validate_ip_block(block, &format!("{path}.ipBlock"), causes);
    }
    let given = [
        peer.pod_selector.is_some(),
        peer.namespace_selector.is_some(),
        peer.ip_block.is_some(),
    ];
    match given.iter().filter(|g| **g).count() {
        0 => causes.push(Cause {
            message: "Required value: must specify a peer".into(),
            ..Cause::required(path)
        }),
        1 => {}
        _ if peer.ip_block.is_some() => causes.push(Cause::forbidden(
            path,
            "may not specify both ipBlock and another peer",
        )),
        _ => {}
    }
}

/// `ValidateIPBlock`: a CIDR, and exceptions strictly inside it.
fn validate_ip_block(block: &IPBlock, path: &str, causes: &mut Vec<Cause>) {
    if block.cidr.is_empty() {
        causes.push(Cause::required(format!("{path}.cidr")));
        return;
    }
    let Some(cidr) = IpCidr::parse(&block.cidr) else {
        let why = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)";
        causes.push(Cause::invalid(format!("{path}.cidr"), &block.cidr, why));
        return;
    };
    for (i, text) in block.except.iter().flatten().enumerate() {
        let field = format!("{path}.except[{i}]");
        let Some(except) = IpCidr::parse(text) else {
            causes.push(Cause::invalid(field, text, "must be a valid CIDR"));
            return;
        };
        if !cidr.contains(except.ip()) || except.prefix() <= cidr.prefix() {
            causes.push(Cause::invalid(
                field,
                text,
                "must be a strict subset of `cidr`",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::kinds::strategy::tests::invalid_fields;

    fn policy(spec: Value) -> Value {
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "p", "namespace": "default"}, "spec": spec})
    }

    #[test]
    fn the_kubernetes_docs_examples_are_accepted() {
        let examples = [
            json!({"podSelector": {}, "policyTypes": ["Ingress"]}),
            json!({"podSelector": {}, "policyTypes": ["Egress"]}),
            json!({"podSelector": {}, "ingress": [{}], "egress": [{}]}),
            json!({"podSelector": {"matchLabels": {"role": "db"}},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{"from": [
                    {"ipBlock": {"cidr": "172.17.0.0/16", "except": ["172.17.1.0/24"]}},
                    {"namespaceSelector": {"matchLabels": {"project": "myproject"}}},
                    {"podSelector": {"matchLabels": {"role": "frontend"}}}],
                    "ports": [{"protocol": "TCP", "port": 6379}]}],
                "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/24"}}],
                    "ports": [{"protocol": "TCP", "port": 5978}]}]}),
            json!({"podSelector": {}, "ingress": [{"from": [{
                "namespaceSelector": {"matchLabels": {"user": "alice"}},
                "podSelector": {"matchLabels": {"role": "client"}}}]}]}),
            json!({"podSelector": {"matchLabels": {"role": "db"}}, "policyTypes": ["Egress"],
                "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/24"}}],
                    "ports": [{"protocol": "TCP", "port": 32000, "endPort": 32768}]}]}),
        ];
        for spec in examples {
            assert_eq!(
                invalid_fields(&NETWORK_POLICIES, policy(spec.clone())),
                Vec::<String>::new(),
                "{spec}"
            );
        }
    }

    #[test]
    fn bad_cidrs_ports_and_policy_types_are_named_as_kubernetes_names_them() {
        let spec = json!({"podSelector": {}, "policyTypes": ["Ingress", "Sideways"],
            "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/33"}},
                {"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.1.0.0/24"]}},
                {"ipBlock": {"cidr": "10.0.0.0/16"}, "podSelector": {}}, {}],
                "ports": [{"port": 70000}, {"port": 8080, "endPort": 80},
                    {"port": "http", "endPort": 90}, {"protocol": "ICMP"}]}]});
        assert_eq!(
            invalid_fields(&NETWORK_POLICIES, policy(spec)),
            [
                "spec.ingress[0].ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive",
                "spec.ingress[0].ports[1].endPort: Invalid value: 8080: must be greater than or equal to `port`",
                "spec.ingress[0].ports[2].endPort: Invalid value: 90: may not be specified when `port` is non-numeric",
                "spec.ingress[0].ports[3].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
                "spec.ingress[0].from[0].ipBlock.cidr: Invalid value: \"10.0.0.0/33\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
                "spec.ingress[0].from[1].ipBlock.except[0]: Invalid value: \"10.1.0.0/24\": must be a strict subset of `cidr`",
                "spec.ingress[0].from[2]: Forbidden: may not specify both ipBlock and another peer",
                "spec.ingress[0].from[3]: Required value: must specify a peer",
                "spec.policyTypes[1]: Unsupported value: \"Sideways\": supported values: \"Ingress\", \"Egress\"",
            ]
        );
    }
}
