//! The kinds one API server serves: the built-in table, plus kinds registered at run time
//! (CustomResourceDefinitions, or a test's own kind).

use std::sync::RwLock;

use super::BUILT_IN;
use super::resource::Resource;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{plural}.{group}/{version} is already served")]
    AlreadyServed {
        group: &'static str,
        version: &'static str,
        plural: &'static str,
    },
}

/// The served kinds. Lookups hand out `&'static Resource`: built-in kinds are statics, and a
/// kind registered at run time lives as long as the process, as in kube-apiserver's registry
/// (a definition that is removed and registered again is a new, small allocation).
pub struct Registry {
    kinds: RwLock<Vec<&'static Resource>>,
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            kinds: RwLock::new(BUILT_IN.to_vec()),
        }
    }
}

impl Registry {
    /// Serves `resource` from now on.
    ///
    /// # Errors
    /// `AlreadyServed` when its group, version and plural are taken.
    pub fn register(&self, resource: &'static Resource) -> Result<(), Error> {
        let mut kinds = self.kinds.write().unwrap_or_else(|p| p.into_inner());
        if kinds.contains(&resource) {
            return Err(Error::AlreadyServed {
                group: resource.group,
                version: resource.version,
                plural: resource.plural,
            });
        }
        kinds.push(resource);
        Ok(())
    }

    /// Stops serving the kind at `group`/`version`/`plural` (its stored objects stay).
    pub fn unregister(&self, group: &str, version: &str, plural: &str) {
        let mut kinds = self.kinds.write().unwrap_or_else(|p| p.into_inner());
        kinds.retain(|k| (k.group, k.version, k.plural) != (group, version, plural));
    }

    /// Every served kind, built-in ones first.
    pub fn all(&self) -> Vec<&'static Resource> {
        self.kinds.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The kind served at `/apis/{group}/{version}/{plural}`.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
        self.all()
            .into_iter()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
    }

    /// The kind a manifest names by `apiVersion` and `kind`.
    pub fn for_kind(&self, api_version: &str, kind: &str) -> Option<&'static Resource> {
        self.all()
            .into_iter()
            .find(|r| r.kind == kind && r.api_version() == api_version)
    }
}

/// The built-in kind a user names on the command line (see [`Resource::is_named`]).
pub fn lookup(name: &str) -> Option<&'static Resource> {
    BUILT_IN.iter().copied().find(|r| r.is_named(name))
}

/// The built-in kind a manifest names by `apiVersion` and `kind`.
pub fn for_manifest(api_version: &str, kind: &str) -> Option<&'static Resource> {
    BUILT_IN
        .iter()
        .copied()
        .find(|r| r.kind == kind && r.api_version() == api_version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::kinds::{NODES, PODS, REPLICA_SETS};

    #[test]
    fn lookup_by_kind_needs_the_right_api_version() {
        assert_eq!(for_manifest("v1", "Pod"), Some(&PODS));
        assert_eq!(for_manifest("apps/v1", "Pod"), None);
        assert_eq!(for_manifest("v1", "pod"), None);
        assert_eq!(for_manifest("apps/v1", "ReplicaSet"), Some(&REPLICA_SETS));
    }

    #[test]
    fn lookup_accepts_what_users_type() {
        assert_eq!(lookup("no"), Some(&NODES));
        assert_eq!(lookup("rs"), Some(&REPLICA_SETS));
        assert_eq!(lookup("widgets"), None);
    }

    #[test]
    fn a_kind_is_served_once_and_can_be_withdrawn() {
        let registry = Registry::default();
        assert!(registry.register(&PODS).is_err());
        registry.unregister("", "v1", "pods");
        assert_eq!(registry.find("", "v1", "pods"), None);
        registry.register(&PODS).unwrap();
        assert_eq!(registry.find("", "v1", "pods"), Some(&PODS));
    }
}
