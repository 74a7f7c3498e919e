//! The resource kinds the client knows: kind ↔ plural ↔ short names ↔ REST path.
//!
//! To add a kind, add a row to [`KINDS`]; paths, `get`/`delete` name lookup and manifest
//! mapping follow from it.

/// One resource kind and how it is addressed over the REST API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResourceKind {
    pub kind: &'static str,
    /// `v1` for the core group, `group/version` otherwise.
    pub api_version: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub short_names: &'static [&'static str],
    pub namespaced: bool,
}

pub const POD: ResourceKind = ResourceKind {
    kind: "Pod",
    api_version: "v1",
    plural: "pods",
    singular: "pod",
    short_names: &["po"],
    namespaced: true,
};

pub const EVENT: ResourceKind = ResourceKind {
    kind: "Event",
    api_version: "v1",
    plural: "events",
    singular: "event",
    short_names: &["ev"],
    namespaced: true,
};

pub const NODE: ResourceKind = ResourceKind {
    kind: "Node",
    api_version: "v1",
    plural: "nodes",
    singular: "node",
    short_names: &["no"],
    namespaced: false,
};

pub const NAMESPACE: ResourceKind = ResourceKind {
    kind: "Namespace",
    api_version: "v1",
    plural: "namespaces",
    singular: "namespace",
    short_names: &["ns"],
    namespaced: false,
};

pub const REPLICA_SET: ResourceKind = ResourceKind {
    kind: "ReplicaSet",
    api_version: "apps/v1",
    plural: "replicasets",
    singular: "replicaset",
    short_names: &["rs"],
    namespaced: true,
};

pub const DEPLOYMENT: ResourceKind = ResourceKind {
    kind: "Deployment",
    api_version: "apps/v1",
    plural: "deployments",
    singular: "deployment",
    short_names: &["deploy"],
    namespaced: true,
};

pub const LEASE: ResourceKind = ResourceKind {
    kind: "Lease",
    api_version: "coordination.k8s.io/v1",
    plural: "leases",
    singular: "lease",
    short_names: &[],
    namespaced: true,
};

/// Every kind the client maps. Later: Service, ConfigMap, Secret (`v1`).
pub const KINDS: &[ResourceKind] = &[POD, EVENT, NODE, NAMESPACE, REPLICA_SET, DEPLOYMENT, LEASE];

impl ResourceKind {
    /// The kind a user typed on the command line: plural, singular, short name or kind,
    /// in any case, optionally qualified by its group (`pods.v1`, `deployments.apps`).
    pub fn lookup(name: &str) -> Option<&'static ResourceKind> {
        let name = name.to_ascii_lowercase();
        let (name, group) = match name.split_once('.') {
            Some((name, group)) => (name.to_string(), Some(group.to_string())),
            None => (name, None),
        };
        KINDS.iter().find(|k| {
            let matches_name = k.plural == name
                || k.singular == name
                || k.kind.eq_ignore_ascii_case(&name)
                || k.short_names.contains(&name.as_str());
            let matches_group = group.as_deref().is_none_or(|g| {
                g == k.group()
                    || g == k.api_version
                    || g == format!("{}.{}", k.version(), k.group())
            });
            matches_name && matches_group
        })
    }

    /// The kind a manifest names by `apiVersion` and `kind`.
    pub fn for_manifest(api_version: &str, kind: &str) -> Option<&'static ResourceKind> {
        KINDS
            .iter()
            .find(|k| k.kind == kind && k.api_version == api_version)
    }

    /// The API group; empty for the core group.
    pub fn group(&self) -> &'static str {
        self.api_version
            .split_once('/')
            .map_or("", |(group, _)| group)
    }

    pub fn version(&self) -> &'static str {
        self.api_version
            .split_once('/')
            .map_or(self.api_version, |(_, version)| version)
    }

    /// How kubectl names an object of this kind in its output: `pod/demo`,
    /// `deployment.apps/web`.
    pub fn object_name(&self, name: &str) -> String {
        match self.group() {
            "" => format!("{}/{name}", self.singular),
            group => format!("{}.{group}/{name}", self.singular),
        }
    }

    /// The path of a collection (`name` None) or of one object. `namespace` is ignored for
    /// cluster-scoped kinds; None for a namespaced kind means across all namespaces.
    pub fn path(&self, namespace: Option<&str>, name: Option<&str>) -> String {
        let mut path = match self.group() {
            "" => format!("/api/{}", self.version()),
            group => format!("/apis/{group}/{}", self.version()),
        };
        if let (true, Some(namespace)) = (self.namespaced, namespace) {
            path.push_str("/namespaces/");
            path.push_str(&encode_segment(namespace));
        }
        path.push('/');
        path.push_str(self.plural);
        if let Some(name) = name {
            path.push('/');
            path.push_str(&encode_segment(name));
        }
        path
    }
}

/// The path of `kind_or_plural` (anything [`ResourceKind::lookup`] accepts), or None for an
/// unknown kind.
pub fn path_for(
    kind_or_plural: &str,
    namespace: Option<&str>,
    name: Option<&str>,
) -> Option<String> {
    ResourceKind::lookup(kind_or_plural).map(|kind| kind.path(namespace, name))
}

/// Percent-encodes one path segment (names are DNS labels, but a typo should not make a
/// different path).
fn encode_segment(segment: &str) -> String {
    super::client::percent_encode(segment)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_accepts_plural_singular_short_and_kind_names() {
        for name in ["pods", "pod", "po", "Pod", "PODS", "pods.v1"] {
            assert_eq!(ResourceKind::lookup(name), Some(&POD), "{name}");
        }
        assert_eq!(ResourceKind::lookup("no").map(|k| k.kind), Some("Node"));
        assert_eq!(
            ResourceKind::lookup("ns").map(|k| k.kind),
            Some("Namespace")
        );
        assert_eq!(ResourceKind::lookup("ev").map(|k| k.kind), Some("Event"));
        assert_eq!(ResourceKind::lookup("pods.apps"), None);
        for name in ["rs", "replicaset", "replicasets", "replicasets.apps"] {
            assert_eq!(ResourceKind::lookup(name), Some(&REPLICA_SET), "{name}");
        }
        for name in ["deploy", "deployment", "deployments", "deployments.apps"] {
            assert_eq!(ResourceKind::lookup(name), Some(&DEPLOYMENT), "{name}");
        }
        assert_eq!(ResourceKind::lookup("widgets"), None);
    }

    #[test]
    fn manifest_mapping_needs_the_right_api_version() {
        assert_eq!(ResourceKind::for_manifest("v1", "Pod"), Some(&POD));
        assert_eq!(ResourceKind::for_manifest("apps/v1", "Pod"), None);
        assert_eq!(ResourceKind::for_manifest("v1", "pod"), None);
    }

    #[test]
    fn paths_follow_the_kubernetes_layout() {
        assert_eq!(
            POD.path(Some("default"), Some("demo")),
            "/api/v1/namespaces/default/pods/demo"
        );
        assert_eq!(
            POD.path(Some("default"), None),
            "/api/v1/namespaces/default/pods"
        );
        assert_eq!(POD.path(None, None), "/api/v1/pods");
        assert_eq!(NODE.path(Some("default"), Some("n1")), "/api/v1/nodes/n1");
        assert_eq!(
            path_for("ns", None, Some("kube-system")).as_deref(),
            Some("/api/v1/namespaces/kube-system")
        );
        let deployment = ResourceKind {
            kind: "Deployment",
            api_version: "apps/v1",
            plural: "deployments",
            singular: "deployment",
            short_names: &["deploy"],
            namespaced: true,
        };
        assert_eq!(
            deployment.path(Some("a"), Some("web")),
            "/apis/apps/v1/namespaces/a/deployments/web"
        );
        assert_eq!(deployment.object_name("web"), "deployment.apps/web");
        assert_eq!(POD.object_name("demo"), "pod/demo");
    }
}
