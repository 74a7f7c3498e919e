//! NetworkPolicy semantics as a pure function: the policies, pods and namespaces of the
//! cluster, and one connection (from, to, port), give allowed or denied.
//!
//! As Kubernetes defines it: a pod no policy of a type selects is not isolated for that
//! direction; once one does, only what some rule of such a policy names is allowed. A
//! connection needs both the source's egress and the destination's ingress to allow it.

use std::collections::HashMap;
use std::net::IpAddr;

use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector as K8sLabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

use crate::api::selectors::LabelSelector;
use crate::cidr::IpCidr;

/// A pod as policies see it: where it is, its labels, its named ports.
#[derive(Clone, Debug, Default)]
pub struct PodFacts {
    pub namespace: String,
    pub ip: Option<IpAddr>,
    /// `{"metadata": {"labels": ...}}`, what selectors match.
    pub labels: Value,
    /// `(name, containerPort, protocol)` of its containers.
    pub ports: Vec<(String, u16, String)>,
}

impl PodFacts {
    /// The facts of a Pod object.
    pub fn of(pod: &Value) -> PodFacts {
        let ports = pod["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|c| c["ports"].as_array().into_iter().flatten())
            .filter_map(|p| {
                let name = p["name"].as_str()?.to_string();
                let number = u16::try_from(p["containerPort"].as_u64()?).ok()?;
                let protocol = p["protocol"].as_str().unwrap_or("TCP").to_string();
                Some((name, number, protocol))
            })
            .collect();
        PodFacts {
            namespace: pod["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .into(),
            ip: pod["status"]["podIP"]
                .as_str()
                .and_then(|ip| ip.parse().ok()),
            labels: json!({"metadata": {"labels": pod["metadata"]["labels"]}}),
            ports,
        }
    }
}

/// One end of a connection: a pod of the cluster, or an address outside it.
#[derive(Clone, Copy, Debug)]
pub enum End<'a> {
    Pod(&'a PodFacts),
    Outside(IpAddr),
}

impl End<'_> {
    fn ip(&self) -> Option<IpAddr> {
        match self {
            End::Pod(pod) => pod.ip,
            End::Outside(ip) => Some(*ip),
        }
    }
}

/// Policies with their selectors parsed, and namespaces' labels: what a decision reads.
#[derive(Debug, Default)]
pub struct Policies {
    policies: Vec<Policy>,
    /// Namespace name → `{"metadata": {"labels": ...}}`.
    namespaces: HashMap<String, Value>,
}

#[derive(Debug)]
struct Policy {
    namespace: String,
    selects: LabelSelector,
    /// `None`: the policy does not isolate this direction.
    ingress: Option<Vec<Rule>>,
    egress: Option<Vec<Rule>>,
}

#[derive(Debug)]
struct Rule {
    /// Empty: every port.
    ports: Vec<NetworkPolicyPort>,
    /// Empty: every peer.
    peers: Vec<Peer>,
}

#[derive(Debug)]
enum Peer {
    /// Pods matching `pods` in the namespaces matching `namespaces` (`None`: the policy's own).
    Pods {
        namespaces: Option<LabelSelector>,
        pods: LabelSelector,
    },
    Block {
        cidr: IpCidr,
        except: Vec<IpCidr>,
    },
    /// A peer that cannot match (a selector the API should have refused).
    Nothing,
}

impl Policies {
    /// `policies` as stored, `namespaces` as Namespace objects.
    pub fn new<'a>(
        policies: impl IntoIterator<Item = &'a Value>,
        namespaces: impl IntoIterator<Item = &'a Value>,
    ) -> Policies {
        let policies = policies
            .into_iter()
            .filter_map(|p| serde_json::from_value::<NetworkPolicy>(p.clone()).ok())
            .filter_map(|p| {
                let namespace = p.metadata.namespace?;
                Policy::of(namespace, p.spec.unwrap_or_default())
            })
            .collect();
        let namespaces = namespaces
            .into_iter()
            .filter_map(|n| {
                let name = n["metadata"]["name"].as_str()?.to_string();
                Some((
                    name,
                    json!({"metadata": {"labels": n["metadata"]["labels"]}}),
                ))
            })
            .collect();
        Policies {
            policies,
            namespaces,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// Whether a TCP connection from `from` to `to`'s `port` is allowed: by the egress
    /// policies of the source and the ingress policies of the destination.
    pub fn allows(&self, from: End<'_>, to: End<'_>, port: u16) -> bool {
        self.egress_allows(from, to, port) && self.ingress_allows(from, to, port)
    }

    /// Whether the source's egress policies let it reach `to`'s `port`.
    pub fn egress_allows(&self, from: End<'_>, to: End<'_>, port: u16) -> bool {
        match from {
            End::Pod(pod) => self.direction_allows(pod, |p| p.egress.as_ref(), to, to, port),
            End::Outside(_) => true,
        }
    }

    /// Whether the destination's ingress policies let `from` reach its `port`.
    pub fn ingress_allows(&self, from: End<'_>, to: End<'_>, port: u16) -> bool {
        match to {
            End::Pod(pod) => self.direction_allows(pod, |p| p.ingress.as_ref(), from, to, port),
            End::Outside(_) => true,
        }
    }

    /// Whether an egress rule of a policy selecting `from` names `to` outside the cluster in an
    /// `ipBlock` (and its port): the only way a policy lets a pod out of the cluster, since
    /// pods reach only cluster addresses by default.
    pub fn lets_out(&self, from: &PodFacts, to: IpAddr, port: u16) -> bool {
        let outside = End::Outside(to);
        self.policies
            .iter()
            .filter(|p| p.namespace == from.namespace && p.selects.matches(&from.labels))
            .flat_map(|p| p.egress.iter().flatten().map(move |rule| (p, rule)))
            .any(|(policy, rule)| {
                let mut blocks = rule
                    .peers
                    .iter()
                    .filter(|p| matches!(p, Peer::Block { .. }));
                (rule.ports.is_empty() || rule.ports.iter().any(|p| port_matches(p, outside, port)))
                    && blocks.any(|peer| self.peer_matches(policy, peer, outside))
            })
    }

    /// Whether the policies isolating `pod` in one direction (`rules_of`) let `peer` through
    /// to `to`'s `port`; true when none isolates it.
    fn direction_allows(
        &self,
        pod: &PodFacts,
        rules_of: impl Fn(&Policy) -> Option<&Vec<Rule>>,
        peer: End<'_>,
        to: End<'_>,
        port: u16,
    ) -> bool {
        let mut isolated = false;
        for policy in &self.policies {
            if policy.namespace != pod.namespace || !policy.selects.matches(&pod.labels) {
                continue;
            }
            let Some(rules) = rules_of(policy) else {
                continue;
            };
            isolated = true;
            if rules
                .iter()
                .any(|rule| self.rule_allows(policy, rule, peer, to, port))
            {
                return true;
            }
        }
        !isolated
    }

    fn rule_allows(
        &self,
        policy: &Policy,
        rule: &Rule,
        peer: End<'_>,
        to: End<'_>,
        port: u16,
    ) -> bool {
        let port_ok = rule.ports.is_empty() || rule.ports.iter().any(|p| port_matches(p, to, port));
        port_ok
            && (rule.peers.is_empty()
                || rule
                    .peers
                    .iter()
                    .any(|p| self.peer_matches(policy, p, peer)))
    }

    fn peer_matches(&self, policy: &Policy, peer: &Peer, end: End<'_>) -> bool {
        match (peer, end) {
            (Peer::Block { cidr, except }, end) => end
                .ip()
                .is_some_and(|ip| cidr.contains(ip) && !except.iter().any(|e| e.contains(ip))),
            (Peer::Pods { namespaces, pods }, End::Pod(pod)) => {
                let namespace_ok = match namespaces {
                    None => pod.namespace == policy.namespace,
                    Some(selector) => self
                        .namespaces
                        .get(&pod.namespace)
                        .is_some_and(|labels| selector.matches(labels)),
                };
                namespace_ok && pods.matches(&pod.labels)
            }
            (Peer::Pods { .. } | Peer::Nothing, _) => false,
        }
    }
}

/// Whether `rule` names `port` of `to` over TCP: a number, a range up to `endPort`, or a
/// name the destination pod gives that port.
fn port_matches(rule: &NetworkPolicyPort, to: End<'_>, port: u16) -> bool {
    if rule.protocol.as_deref().is_some_and(|p| p != "TCP") {
        return false;
    }
    match &rule.port {
        None => true,
        Some(IntOrString::Int(number)) => {
            let end = rule.end_port.unwrap_or(*number);
            (*number..=end).contains(&i32::from(port))
        }
        Some(IntOrString::String(name)) => match to {
            End::Pod(pod) => pod
                .ports
                .iter()
                .any(|(n, number, protocol)| n == name && *number == port && protocol == "TCP"),
            End::Outside(_) => false,
        },
    }
}

impl Policy {
    /// The policy's effective types: as listed, or Ingress always and Egress when it has
    /// egress rules (Kubernetes' defaulting).
    fn of(namespace: String, spec: NetworkPolicySpec) -> Option<Policy> {
        // No selector is the empty one: every pod of the namespace.
        let selects = spec.pod_selector.as_ref().map(LabelSelector::from_k8s);
        let selects = selects.transpose().ok()?.unwrap_or_default();
        let types = spec.policy_types.clone().unwrap_or_else(|| {
            let mut types = vec!["Ingress".to_string()];
            if spec.egress.as_ref().is_some_and(|e| !e.is_empty()) {
                types.push("Egress".into());
            }
            types
        });
        let has = |kind: &str| types.iter().any(|t| t == kind);
        let ingress = has("Ingress").then(|| {
            let rules = spec.ingress.unwrap_or_default();
            rules
                .into_iter()
                .map(|r| Rule::of(r.ports, r.from))
                .collect()
        });
        let egress = has("Egress").then(|| {
            let rules = spec.egress.unwrap_or_default();
            rules.into_iter().map(|r| Rule::of(r.ports, r.to)).collect()
        });
        Some(Policy {
            namespace,
            selects,
            ingress,
            egress,
        })
    }
}

impl Rule {
    fn of(ports: Option<Vec<NetworkPolicyPort>>, peers: Option<Vec<NetworkPolicyPeer>>) -> Rule {
        Rule {
            ports: ports.unwrap_or_default(),
            peers: peers.unwrap_or_default().iter().map(Peer::of).collect(),
        }
    }
}

impl Peer {
    fn of(peer: &NetworkPolicyPeer) -> Peer {
        if let Some(block) = &peer.ip_block {
            let except: Option<Vec<IpCidr>> = block
                .except
                .iter()
                .flatten()
                .map(|e| IpCidr::parse(e))
                .collect();
            return match (IpCidr::parse(&block.cidr), except) {
                (Some(cidr), Some(except)) => Peer::Block { cidr, except },
                _ => Peer::Nothing,
            };
        }
        let selector =
            |s: &Option<K8sLabelSelector>| s.as_ref().map(LabelSelector::from_k8s).transpose();
        match (
            selector(&peer.namespace_selector),
            selector(&peer.pod_selector),
        ) {
            (Ok(namespaces), Ok(pods)) => Peer::Pods {
                namespaces,
                pods: pods.unwrap_or_default(),
            },
            _ => Peer::Nothing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(namespace: &str, ip: &str, labels: Value) -> PodFacts {
        PodFacts::of(
            &json!({"metadata": {"namespace": namespace, "labels": labels},
            "spec": {"containers": [{"ports": [{"name": "http", "containerPort": 8080}]}]},
            "status": {"podIP": ip}}),
        )
    }

    fn policies(specs: &[(&str, Value)]) -> Policies {
        let policies: Vec<Value> = specs
            .iter()
            .map(|(ns, spec)| json!({"metadata": {"name": "p", "namespace": ns}, "spec": spec}))
            .collect();
        let namespaces = [
            json!({"metadata": {"name": "front", "labels": {"team": "web"}}}),
            json!({"metadata": {"name": "back", "labels": {"team": "data"}}}),
        ];
        Policies::new(&policies, &namespaces)
    }

    #[test]
    fn without_policies_every_pod_reaches_every_pod() {
        let (a, b) = (
            pod("front", "10.244.1.2", json!({})),
            pod("back", "10.244.1.3", json!({})),
        );
        assert!(policies(&[]).allows(End::Pod(&a), End::Pod(&b), 80));
    }

    #[test]
    fn default_deny_egress_stops_its_namespaces_pods_and_nothing_else() {
        let set = policies(&[(
            "front",
            json!({"podSelector": {}, "policyTypes": ["Egress"]}),
        )]);
        let (a, b) = (
            pod("front", "10.244.1.2", json!({})),
            pod("back", "10.244.1.3", json!({})),
        );
        assert!(!set.allows(End::Pod(&a), End::Pod(&b), 80));
        assert!(
            set.allows(End::Pod(&b), End::Pod(&a), 80),
            "ingress of front is open"
        );
    }

    #[test]
    fn default_deny_ingress_stops_connections_into_its_namespace() {
        let set = policies(&[(
            "back",
            json!({"podSelector": {}, "policyTypes": ["Ingress"]}),
        )]);
        let (a, b) = (
            pod("front", "10.244.1.2", json!({})),
            pod("back", "10.244.1.3", json!({})),
        );
        assert!(!set.allows(End::Pod(&a), End::Pod(&b), 80));
        assert!(set.allows(End::Pod(&b), End::Pod(&a), 80));
    }

    #[test]
    fn an_allow_rule_opens_exactly_the_pods_namespaces_and_ports_it_names() {
        let set = policies(&[
            (
                "back",
                json!({"podSelector": {}, "policyTypes": ["Ingress"]}),
            ),
            (
                "back",
                json!({"podSelector": {"matchLabels": {"role": "db"}},
                "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "web"}},
                    "podSelector": {"matchLabels": {"role": "client"}}}],
                    "ports": [{"port": 5000, "endPort": 5010}, {"port": "http"}]}]}),
            ),
        ]);
        let client = pod("front", "10.244.1.2", json!({"role": "client"}));
        let other = pod("front", "10.244.1.4", json!({"role": "batch"}));
        let db = pod("back", "10.244.1.3", json!({"role": "db"}));
        let cache = pod("back", "10.244.1.5", json!({"role": "cache"}));
        assert!(set.allows(End::Pod(&client), End::Pod(&db), 5005));
        assert!(
            set.allows(End::Pod(&client), End::Pod(&db), 8080),
            "the named port"
        );
        assert!(!set.allows(End::Pod(&client), End::Pod(&db), 5011));
        assert!(!set.allows(End::Pod(&other), End::Pod(&db), 5005));
        assert!(!set.allows(End::Pod(&client), End::Pod(&cache), 5005));
        assert!(
            !set.allows(End::Pod(&db), End::Pod(&db), 5005),
            "not in a `team: web` namespace"
        );
    }

    #[test]
    fn a_pod_selector_alone_means_the_policys_own_namespace() {
        let set = policies(&[(
            "back",
            json!({"podSelector": {},
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "client"}}}]}]}),
        )]);
        let near = pod("back", "10.244.1.2", json!({"role": "client"}));
        let far = pod("front", "10.244.1.3", json!({"role": "client"}));
        let db = pod("back", "10.244.1.4", json!({}));
        assert!(set.allows(End::Pod(&near), End::Pod(&db), 80));
        assert!(!set.allows(End::Pod(&far), End::Pod(&db), 80));
    }

    #[test]
    fn ip_blocks_allow_their_range_but_not_its_exceptions() {
        let set = policies(&[(
            "front",
            json!({"podSelector": {}, "policyTypes": ["Egress"],
            "egress": [{"to": [{"ipBlock": {"cidr": "192.0.2.0/24", "except": ["192.0.2.128/25"]}}],
                "ports": [{"protocol": "TCP", "port": 443}]}]}),
        )]);
        let a = pod("front", "10.244.1.2", json!({}));
        let outside = |ip: &str| End::Outside(ip.parse().unwrap());
        assert!(set.allows(End::Pod(&a), outside("192.0.2.7"), 443));
        assert!(!set.allows(End::Pod(&a), outside("192.0.2.200"), 443));
        assert!(!set.allows(End::Pod(&a), outside("192.0.2.7"), 80));
        assert!(!set.allows(End::Pod(&a), outside("198.51.100.1"), 443));
        assert!(set.lets_out(&a, "192.0.2.7".parse().unwrap(), 443));
        assert!(!set.lets_out(&a, "192.0.2.200".parse().unwrap(), 443));
        let b = pod("back", "10.244.1.3", json!({}));
        assert!(
            !set.lets_out(&b, "192.0.2.7".parse().unwrap(), 443),
            "no policy selects it"
        );
        let open = policies(&[("front", json!({"podSelector": {}, "egress": [{}]}))]);
        assert!(
            !open.lets_out(&a, "192.0.2.7".parse().unwrap(), 443),
            "only an ipBlock lets out"
        );
    }

    #[test]
    fn allow_all_rules_open_what_a_default_deny_closed() {
        let set = policies(&[
            (
                "front",
                json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
            ),
            (
                "front",
                json!({"podSelector": {}, "ingress": [{}], "egress": [{}],
                "policyTypes": ["Ingress", "Egress"]}),
            ),
        ]);
        let (a, b) = (
            pod("front", "10.244.1.2", json!({})),
            pod("back", "10.244.1.3", json!({})),
        );
        assert!(set.allows(End::Pod(&a), End::Pod(&b), 80));
        assert!(set.allows(End::Pod(&b), End::Pod(&a), 80));
    }

    #[test]
    fn egress_rules_alone_make_a_policy_isolate_egress_too() {
        let set = policies(&[(
            "front",
            json!({"podSelector": {},
            "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"team": "web"}}}]}]}),
        )]);
        let (a, b) = (
            pod("front", "10.244.1.2", json!({})),
            pod("back", "10.244.1.3", json!({})),
        );
        let c = pod("front", "10.244.1.4", json!({}));
        assert!(!set.allows(End::Pod(&a), End::Pod(&b), 80));
        // Ingress is isolated as well (the default types), and no ingress rule is given.
        assert!(!set.allows(End::Pod(&a), End::Pod(&c), 80));
    }
}
