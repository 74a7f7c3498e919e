//! A served kind: where it lives in the URL space and in the store, what it serves, and the
//! strategy and printer the API applies to it.

use std::fmt;

use serde_json::{Value, json};

use super::strategy::Strategy;
use crate::api::printers::Printer;

/// One served resource type (a row of discovery's APIResourceList), declared once in its file
/// under `api/kinds/`.
pub struct Resource {
    /// API group; empty for the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub short_names: &'static [&'static str],
    /// Discovery categories: `all` is what `kubectl get all` expands.
    pub categories: &'static [&'static str],
    pub namespaced: bool,
    pub subresources: &'static [Subresource],
    /// Whether names must be DNS labels (≤63) rather than subdomains (≤253): these names
    /// become host names in cluster DNS, or prefixes of other DNS-label names.
    pub label_names: bool,
    /// Fields a field selector may name besides `metadata.name` and `metadata.namespace`.
    pub selectable_fields: &'static [&'static str],
    /// Defaults, validation, and what writes and deletes may do.
    pub strategy: &'static dyn Strategy,
    /// The columns of `kubectl get` and of server-side Tables.
    pub printer: &'static dyn Printer,
}

/// A part of an object served at `{object}/{name}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subresource {
    /// Status written apart from the rest; a write to the object keeps the stored status.
    Status,
    /// An autoscaling/v1 `Scale` of `spec.replicas`.
    Scale,
    /// A pod's container logs.
    Log,
    /// A pod's binding to a node.
    Binding,
    /// A policy/v1 `Eviction` of a pod.
    Eviction,
    /// A namespace's `spec.finalizers`.
    Finalize,
}

/// How discovery describes a subresource: its kind (in another group version when given) and
/// verbs.
pub struct SubresourceInfo {
    pub name: &'static str,
    pub group_version_kind: Option<(&'static str, &'static str, &'static str)>,
    pub verbs: &'static [&'static str],
}

impl Subresource {
    pub fn info(self) -> SubresourceInfo {
        let (name, group_version_kind, verbs): (_, _, &'static [&'static str]) = match self {
            Self::Status => ("status", None, &["get", "patch", "update"]),
            Self::Scale => (
                "scale",
                Some(("autoscaling", "v1", "Scale")),
                &["get", "patch", "update"],
            ),
            Self::Log => ("log", None, &["get"]),
            Self::Binding => ("binding", Some(("", "v1", "Binding")), &["create"]),
            Self::Eviction => ("eviction", Some(("policy", "v1", "Eviction")), &["create"]),
            Self::Finalize => ("finalize", None, &["update"]),
        };
        SubresourceInfo {
            name,
            group_version_kind,
            verbs,
        }
    }

    /// The subresource a path segment names.
    pub fn named(name: &str) -> Option<Self> {
        [
            Self::Status,
            Self::Scale,
            Self::Log,
            Self::Binding,
            Self::Eviction,
            Self::Finalize,
        ]
        .into_iter()
        .find(|s| s.info().name == name)
    }
}

impl PartialEq for Resource {
    fn eq(&self, other: &Self) -> bool {
        (self.group, self.version, self.plural) == (other.group, other.version, other.plural)
    }
}

impl Eq for Resource {}

impl fmt::Debug for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.object_name(""))
    }
}

impl Resource {
    /// `v1` for the core group, `apps/v1` otherwise.
    /// How errors name the resource, as kube-apiserver's qualified resource: `pods`,
    /// `deployments.apps`.
    pub fn qualified(&self) -> String {
        match self.group {
            "" => self.plural.to_string(),
            group => format!("{}.{group}", self.plural),
        }
    }

    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn serves(&self, subresource: Subresource) -> bool {
        self.subresources.contains(&subresource)
    }

    /// The store key of one object, or the prefix of a collection when `name` is `None`.
    pub fn key(&self, namespace: Option<&str>, name: Option<&str>) -> String {
        let group = if self.group.is_empty() {
            "core"
        } else {
            self.group
        };
        let mut key = format!("/{group}/{}/", self.plural);
        if let Some(ns) = namespace.filter(|_| self.namespaced) {
            key.push_str(ns);
            key.push('/');
        }
        if let Some(name) = name {
            key.push_str(name);
        }
        key
    }

    /// The URL path of one object, or of a collection when `name` is `None` (across all
    /// namespaces when `namespace` is `None`). Namespace and name are percent-encoded: they are
    /// DNS names once admitted, but a typo must not make a different path.
    pub fn path(&self, namespace: Option<&str>, name: Option<&str>) -> String {
        let mut path = if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        };
        if let Some(ns) = namespace.filter(|_| self.namespaced) {
            path.push_str("/namespaces/");
            path.push_str(&percent_encode(ns));
        }
        path.push('/');
        path.push_str(self.plural);
        if let Some(name) = name {
            path.push('/');
            path.push_str(&percent_encode(name));
        }
        path
    }

    /// How kubectl names an object of this kind in its output: `pod/demo`,
    /// `deployment.apps/web`.
    pub fn object_name(&self, name: &str) -> String {
        match self.group {
            "" => format!("{}/{name}", self.singular),
            group => format!("{}.{group}/{name}", self.singular),
        }
    }

    /// The reference a controller of this kind puts on the objects it owns (`controller` and
    /// `blockOwnerDeletion` set).
    pub fn controller_reference(&self, owner: &Value) -> Value {
        let metadata = &owner["metadata"];
        json!({
            "apiVersion": self.api_version(),
            "kind": self.kind,
            "name": metadata["name"],
            "uid": metadata["uid"],
            "controller": true,
            "blockOwnerDeletion": true,
        })
    }

    /// Whether an owner reference points at this kind.
    pub fn is_kind_of(&self, reference: &Value) -> bool {
        reference["kind"] == self.kind
    }

    /// Whether a user's name for a kind names this one: plural, singular, short name or kind,
    /// in any case, optionally qualified by group or version and group (`pods.v1`,
    /// `deployments.apps`, `deployments.v1.apps`).
    pub fn is_named(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        let (name, qualifier) = match name.split_once('.') {
            Some((name, qualifier)) => (name, Some(qualifier)),
            None => (name.as_str(), None),
        };
        let matches_name = self.plural == name
            || self.singular == name
            || self.kind.eq_ignore_ascii_case(name)
            || self.short_names.contains(&name);
        let matches_qualifier = qualifier.is_none_or(|q| {
            q == self.group
                || q == self.api_version()
                || q == format!("{}.{}", self.version, self.group)
        });
        matches_name && matches_qualifier
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::{DEPLOYMENTS, LEASES, NODES, PODS, REPLICA_SETS};

    #[test]
    fn keys_separate_namespaces_so_prefixes_do_not_overlap() {
        assert_eq!(
            PODS.key(Some("default"), Some("web")),
            "/core/pods/default/web"
        );
        assert_eq!(PODS.key(Some("default"), None), "/core/pods/default/");
        assert_eq!(PODS.key(None, None), "/core/pods/");
        assert_eq!(NODES.key(Some("ignored"), Some("n1")), "/core/nodes/n1");
        assert_eq!(
            REPLICA_SETS.key(Some("default"), Some("web")),
            "/apps/replicasets/default/web"
        );
    }

    #[test]
    fn paths_follow_the_rest_layout_of_each_group() {
        assert_eq!(
            PODS.path(Some("default"), Some("web")),
            "/api/v1/namespaces/default/pods/web"
        );
        assert_eq!(PODS.path(None, None), "/api/v1/pods");
        assert_eq!(NODES.path(Some("ignored"), Some("n1")), "/api/v1/nodes/n1");
        assert_eq!(
            LEASES.path(Some("kube-node-lease"), Some("n1")),
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1"
        );
        assert_eq!(
            DEPLOYMENTS.path(Some("a"), Some("web")),
            "/apis/apps/v1/namespaces/a/deployments/web"
        );
        assert_eq!(
            PODS.path(Some("a b"), Some("x/y")),
            "/api/v1/namespaces/a%20b/pods/x%2Fy"
        );
    }

    #[test]
    fn objects_are_named_as_kubectl_names_them() {
        assert_eq!(DEPLOYMENTS.object_name("web"), "deployment.apps/web");
        assert_eq!(PODS.object_name("demo"), "pod/demo");
    }

    #[test]
    fn user_names_match_plural_singular_short_and_kind_names() {
        for name in ["pods", "pod", "po", "Pod", "PODS", "pods.v1"] {
            assert!(PODS.is_named(name), "{name}");
        }
        assert!(!PODS.is_named("pods.apps"));
        for name in [
            "deploy",
            "deployment",
            "deployments.apps",
            "deployments.v1.apps",
        ] {
            assert!(DEPLOYMENTS.is_named(name), "{name}");
        }
        assert!(!DEPLOYMENTS.is_named("widgets"));
    }
}
