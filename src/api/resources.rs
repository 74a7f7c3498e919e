//! The kinds the API serves: where each lives in the URL space and in the store.

/// One served resource type (a row of discovery's APIResourceList).
#[derive(Debug, PartialEq, Eq)]
pub struct Resource {
    /// API group; empty for the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub short_names: &'static [&'static str],
    pub namespaced: bool,
    /// Whether `status` is a subresource (writes to the main resource keep the old status).
    pub has_status: bool,
    /// Whether names must be DNS labels (≤63) rather than subdomains (≤253): these names
    /// become host names in cluster DNS.
    pub label_names: bool,
}

pub const NAMESPACES: Resource = Resource {
    group: "",
    version: "v1",
    kind: "Namespace",
    plural: "namespaces",
    singular: "namespace",
    short_names: &["ns"],
    namespaced: false,
    has_status: true,
    label_names: true,
};

pub const PODS: Resource = Resource {
    group: "",
    version: "v1",
    kind: "Pod",
    plural: "pods",
    singular: "pod",
    short_names: &["po"],
    namespaced: true,
    has_status: true,
    label_names: true,
};

pub const NODES: Resource = Resource {
    group: "",
    version: "v1",
    kind: "Node",
    plural: "nodes",
    singular: "node",
    short_names: &["no"],
    namespaced: false,
    has_status: true,
    label_names: false,
};

pub const EVENTS: Resource = Resource {
    group: "",
    version: "v1",
    kind: "Event",
    plural: "events",
    singular: "event",
    short_names: &["ev"],
    namespaced: true,
    has_status: false,
    label_names: false,
};

pub const REPLICA_SETS: Resource = Resource {
    group: "apps",
    version: "v1",
    kind: "ReplicaSet",
    plural: "replicasets",
    singular: "replicaset",
    short_names: &["rs"],
    namespaced: true,
    has_status: true,
    // Its name prefixes its pods' names, which must be DNS labels.
    label_names: true,
};

pub const DEPLOYMENTS: Resource = Resource {
    group: "apps",
    version: "v1",
    kind: "Deployment",
    plural: "deployments",
    singular: "deployment",
    short_names: &["deploy"],
    namespaced: true,
    has_status: true,
    // Its name prefixes its ReplicaSets' names, and theirs their pods'.
    label_names: true,
};

/// Node heartbeats: one Lease per node in `kube-node-lease`, renewed by its agent.
pub const LEASES: Resource = Resource {
    group: "coordination.k8s.io",
    version: "v1",
    kind: "Lease",
    plural: "leases",
    singular: "lease",
    short_names: &[],
    namespaced: true,
    has_status: false,
    label_names: false,
};

/// Every served resource.
pub const ALL: &[&Resource] = &[
    &NAMESPACES,
    &PODS,
    &NODES,
    &EVENTS,
    &REPLICA_SETS,
    &DEPLOYMENTS,
    &LEASES,
];

impl Resource {
    /// `v1` for the core group, `apps/v1` otherwise.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
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
    /// namespaces when `namespace` is `None`).
    pub fn path(&self, namespace: Option<&str>, name: Option<&str>) -> String {
        let mut path = if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        };
        if let Some(ns) = namespace.filter(|_| self.namespaced) {
            path.push_str("/namespaces/");
            path.push_str(ns);
        }
        path.push('/');
        path.push_str(self.plural);
        if let Some(name) = name {
            path.push('/');
            path.push_str(name);
        }
        path
    }

    /// Looks a resource up by its URL path parts.
    pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
        ALL.iter()
            .copied()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
    }

    /// Looks a resource up by `apiVersion` and `kind` as written in a manifest.
    pub fn for_kind(api_version: &str, kind: &str) -> Option<&'static Resource> {
        ALL.iter()
            .copied()
            .find(|r| r.api_version() == api_version && r.kind == kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_separate_namespaces_so_prefixes_do_not_overlap() {
        assert_eq!(
            PODS.key(Some("default"), Some("web")),
            "/core/pods/default/web"
        );
        assert_eq!(PODS.key(Some("default"), None), "/core/pods/default/");
        assert_eq!(PODS.key(None, None), "/core/pods/");
        assert_eq!(NODES.key(Some("ignored"), Some("n1")), "/core/nodes/n1");
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
    }

    #[test]
    fn lookup_by_kind_needs_the_right_api_version() {
        assert_eq!(Resource::for_kind("v1", "Pod"), Some(&PODS));
        assert_eq!(Resource::for_kind("apps/v1", "Pod"), None);
        assert_eq!(
            Resource::for_kind("apps/v1", "ReplicaSet"),
            Some(&REPLICA_SETS)
        );
        assert_eq!(
            REPLICA_SETS.key(Some("default"), Some("web")),
            "/apps/replicasets/default/web"
        );
    }
}
