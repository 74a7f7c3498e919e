//! The one write path: every create, update and delete, from HTTP or in process, comes here.

use std::sync::Arc;

use chrono::Utc;
use rand::Rng;
use serde_json::{Value, json};

use super::apply::managed;
use super::error::{ApiError, ApiResult};
use super::kinds::{
    self, Deletion, NAMESPACES, PODS, Resource, SERVICES, SYSTEM_NAMESPACES, Write,
};
use super::list_options::ListOptions;
use super::write::{WriteOptions, Written};
use super::{Api, clock};
use crate::store::{self, Revision};

/// How a delete should proceed (`DeleteOptions` and the query parameters).
#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    pub grace_period_seconds: Option<i64>,
    pub precondition_uid: Option<String>,
    pub precondition_resource_version: Option<String>,
    pub propagation_policy: PropagationPolicy,
    /// `dryRun: ["All"]`: answer what the delete would leave, change nothing.
    pub dry_run: bool,
}

/// What happens to an object's dependents when it is deleted (`propagationPolicy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PropagationPolicy {
    /// The owner goes at once; the garbage collector deletes its dependents afterwards.
    #[default]
    Background,
    /// The owner stays (finalizer `foregroundDeletion`) until its blocking dependents are gone.
    Foreground,
    /// The owner stays (finalizer `orphan`) until its dependents no longer reference it.
    Orphan,
}

impl DeleteOptions {
    /// Reads a `DeleteOptions` body (`Value::Null` for none): grace period, propagation
    /// (`orphanDependents: true` meaning Orphan) and preconditions.
    ///
    /// # Errors
    /// 400 for an unknown `propagationPolicy`.
    pub fn from_body(body: &Value) -> ApiResult<Self> {
        let text = |pointer: &str| body.pointer(pointer).and_then(Value::as_str);
        let propagation_policy = match text("/propagationPolicy") {
            Some(policy) => PropagationPolicy::parse(policy)?,
            None if body.get("orphanDependents") == Some(&Value::Bool(true)) => {
                PropagationPolicy::Orphan
            }
            None => PropagationPolicy::Background,
        };
        Ok(Self {
            grace_period_seconds: body.get("gracePeriodSeconds").and_then(Value::as_i64),
            propagation_policy,
            precondition_uid: text("/preconditions/uid").map(str::to_string),
            precondition_resource_version: text("/preconditions/resourceVersion")
                .map(str::to_string),
            dry_run: body["dryRun"]
                .as_array()
                .is_some_and(|modes| modes.iter().any(|m| m == "All")),
        })
    }
}

impl PropagationPolicy {
    /// Parses the wire spelling.
    ///
    /// # Errors
    /// 400 naming `propagationPolicy` for anything else.
    pub fn parse(text: &str) -> ApiResult<Self> {
        match text {
            "Background" => Ok(Self::Background),
            "Foreground" => Ok(Self::Foreground),
            "Orphan" => Ok(Self::Orphan),
            other => Err(ApiError::BadRequest(format!(
                "propagationPolicy: Unsupported value: {other:?}: supported values: \"Background\", \"Foreground\", \"Orphan\""
            ))),
        }
    }

    /// The finalizer that keeps the owner until the garbage collector has done its part.
    pub fn finalizer(self) -> Option<&'static str> {
        match self {
            Self::Background => None,
            Self::Foreground => Some(FOREGROUND_FINALIZER),
            Self::Orphan => Some(ORPHAN_FINALIZER),
        }
    }
}

/// Keeps an owner until its blocking dependents are gone.
pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";
/// Keeps an owner until its dependents' ownerReferences to it are cleared.
pub const ORPHAN_FINALIZER: &str = "orphan";

/// Which part of an object an update replaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Main,
    Status,
}

/// Takes the `items` out of a List (an empty list when it has none).
pub fn take_items(list: &mut Value) -> Vec<Value> {
    match list["items"].take() {
        Value::Array(items) => items,
        _ => Vec::new(),
    }
}

pub use super::clock::now;

fn random_uid() -> String {
    let bytes: [u8; 16] = rand::rng().random();
    let hex = hex::encode(bytes);
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

/// The five random characters Kubernetes appends to a `generateName`.
fn name_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

fn name_of(value: &Value) -> &str {
    value
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn revision_of(value: &Value) -> Option<&str> {
    value
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .filter(|rv| !rv.is_empty())
}

impl Api {
    fn store_error<'a>(
        resource: &'a Resource,
        name: &'a str,
    ) -> impl Fn(store::Error) -> ApiError + 'a {
        move |error| ApiError::from_store(error, &resource.qualified(), name)
    }

    /// Checks `apiVersion`/`kind` against the URL's resource (filling them when absent) and
    /// settles the namespace.
    fn check_identity(
        resource: &Resource,
        namespace: Option<&str>,
        value: &mut Value,
    ) -> ApiResult<()> {
        let object = value
            .as_object_mut()
            .ok_or_else(|| ApiError::BadRequest("the request body must be a JSON object".into()))?;
        for (field, expected) in [
            ("apiVersion", resource.api_version()),
            ("kind", resource.kind.to_string()),
        ] {
            match object.get(field).and_then(Value::as_str) {
                None | Some("") => {
                    object.insert(field.into(), Value::String(expected));
                }
                Some(actual) if actual != expected => {
                    return Err(ApiError::BadRequest(format!(
                        "the {field} in the data ({actual}) does not match the expected {field} ({expected})"
                    )));
                }
                Some(_) => {}
            }
        }
        let metadata = object.entry("metadata").or_insert_with(|| json!({}));
        let metadata = metadata
            .as_object_mut()
            .ok_or_else(|| ApiError::BadRequest("metadata: must be an object".into()))?;
        match namespace.filter(|_| resource.namespaced) {
            Some(ns) => {
                let body_ns = metadata
                    .get("namespace")
                    .and_then(Value::as_str)
                    .unwrap_or(ns);
                if body_ns != ns {
                    return Err(ApiError::BadRequest(
                        "the namespace of the provided object does not match the namespace sent on the request".into(),
                    ));
                }
                metadata.insert("namespace".into(), Value::String(ns.into()));
            }
            None => {
                metadata.remove("namespace");
            }
        }
        Ok(())
    }

    /// Objects may only be created in a namespace that exists and is not terminating.
    fn check_namespace_open(&self, resource: &Resource, namespace: Option<&str>) -> ApiResult<()> {
        let Some(ns) = namespace.filter(|_| resource.namespaced) else {
            return Ok(());
        };
        let entry = self
            .store
            .get(&NAMESPACES.key(None, Some(ns)))
            .map_err(Self::store_error(&NAMESPACES, ns))?
            .ok_or_else(|| ApiError::NotFound {
                resource: "namespaces".into(),
                name: ns.into(),
            })?;
        if entry.value.pointer("/metadata/deletionTimestamp").is_some() {
            return Err(ApiError::Forbidden(format!(
                "{} \"{}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                resource.plural,
                name_of(&entry.value)
            )));
        }
        Ok(())
    }

    /// Creates an object.
    ///
    /// # Errors
    /// 400 for a malformed body, 404/403 for a missing or terminating namespace, 422 for
    /// invalid fields, 409 when the name is taken. Nothing is written on error.
    pub fn create(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        value: Value,
    ) -> ApiResult<Value> {
        let written = self.create_with(resource, namespace, value, &WriteOptions::default())?;
        Ok(written.object)
    }

    /// Creates an object as a client asked: validating its fields, recording its field
    /// manager, storing it unless this is a dry run.
    ///
    /// # Errors
    /// As [`Api::create`]; 400 for unknown fields under Strict validation.
    pub fn create_with(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        value: Value,
        options: &WriteOptions,
    ) -> ApiResult<Written> {
        let warnings = options.check_fields(resource, &value)?;
        let _allocating = self.serialize_allocation(resource);
        let (key, mut value) = self.admit_new(resource, namespace, value)?;
        if let Some(manager) = &options.field_manager {
            managed::record_update(resource, None, &mut value, manager, Part::Main);
        }
        let name = name_of(&value).to_string();
        if options.dry_run {
            return Ok(Written {
                object: value,
                warnings,
            });
        }
        let entry = self
            .store
            .create(&key, value)
            .map_err(Self::store_error(resource, &name))?;
        Ok(Written {
            object: entry.value,
            warnings,
        })
    }

    /// Creates several objects of one kind in one namespace with one write to disk: for
    /// in-process producers of many objects at once (a ReplicaSet's pods, a burst of events).
    /// Each object is admitted like a single create and has its own outcome.
    ///
    /// # Errors
    /// Only when the store fails as a whole; per-object refusals are in the list.
    pub fn create_many(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        values: Vec<Value>,
    ) -> ApiResult<Vec<ApiResult<Value>>> {
        if *resource == SERVICES {
            // Each allocation must see the Services stored before it.
            let create = |value| self.create(resource, namespace, value);
            return Ok(values.into_iter().map(create).collect());
        }
        let mut outcomes: Vec<Option<ApiResult<Value>>> = Vec::with_capacity(values.len());
        let mut admitted = Vec::new();
        for value in values {
            match self.admit_new(resource, namespace, value) {
                Ok(pair) => {
                    admitted.push(pair);
                    outcomes.push(None);
                }
                Err(error) => outcomes.push(Some(Err(error))),
            }
        }
        let names: Vec<String> = admitted
            .iter()
            .map(|(_, value)| name_of(value).to_string())
            .collect();
        let stored = self.store.create_many(admitted);
        Self::merge_outcomes(resource, outcomes, stored, names)
    }

    /// The outcomes of a batch in order: those settled before the store (refused, unchanged)
    /// and, in the gaps, the store's answers for the written objects named `names`.
    fn merge_outcomes(
        resource: &Resource,
        outcomes: Vec<Option<ApiResult<Value>>>,
        stored: store::Result<Vec<store::Result<crate::store::Entry>>>,
        names: Vec<String>,
    ) -> ApiResult<Vec<ApiResult<Value>>> {
        let mut stored = stored
            .map_err(Self::store_error(resource, ""))?
            .into_iter()
            .zip(names)
            .map(|(result, name)| {
                result
                    .map(|entry| entry.value)
                    .map_err(Self::store_error(resource, &name))
            });
        Ok(outcomes
            .into_iter()
            .map(|outcome| outcome.unwrap_or_else(|| stored.next().expect("one per write")))
            .collect())
    }

    /// A new object as it will be stored, and its key: identity, generated name, server-set
    /// metadata, admission, and an open namespace.
    fn admit_new(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        mut value: Value,
    ) -> ApiResult<(String, Value)> {
        Self::check_identity(resource, namespace, &mut value)?;
        let metadata = &mut value["metadata"];
        let unnamed = metadata
            .get("name")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty);
        if unnamed
            && let Some(prefix) = metadata
                .get("generateName")
                .and_then(Value::as_str)
                .filter(|p| !p.is_empty())
        {
            // Kubernetes cuts the prefix so that the generated name fits a DNS label.
            let prefix: String = prefix.chars().take(63 - 5).collect();
            metadata["name"] = Value::String(format!("{prefix}{}", name_suffix()));
        }
        let object = metadata.as_object_mut().expect("checked by check_identity");
        for server_owned in [
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ] {
            object.remove(server_owned);
        }
        object.insert("uid".into(), Value::String(random_uid()));
        object.insert("creationTimestamp".into(), Value::String(now()));
        object.insert("generation".into(), json!(1));
        if *resource == PODS
            && let Some(ns) = namespace
        {
            self.apply_limit_ranges(ns, &mut value)?;
        }
        let mut value = kinds::admit(resource, value, Write::Create)?;
        if *resource == SERVICES {
            self.allocate_service(&mut value, None)?;
        }
        self.check_namespace_open(resource, namespace)?;
        let key = resource.key(namespace, Some(name_of(&value)));
        Ok((key, value))
    }

    pub fn get(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        name: &str,
    ) -> ApiResult<Value> {
        let key = resource.key(namespace, Some(name));
        let mut object = self.current(resource, &key, name)?.value;
        as_served(resource, &mut object);
        Ok(object)
    }

    /// The stored entry at `key`, or 404 naming the object.
    fn current(&self, resource: &Resource, key: &str, name: &str) -> ApiResult<store::Entry> {
        self.store
            .get(key)
            .map_err(Self::store_error(resource, name))?
            .ok_or_else(|| ApiError::NotFound {
                resource: resource.qualified(),
                name: name.into(),
            })
    }

    /// Lists objects (all namespaces when `namespace` is `None`) as a `{Kind}List`.
    ///
    /// # Errors
    /// 410 for `resourceVersionMatch=Exact` at a version other than the current one.
    pub fn list(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        options: &ListOptions,
    ) -> ApiResult<Value> {
        let listed = self.listed(resource, namespace, options)?;
        let items: Vec<Value> = listed
            .entries
            .into_iter()
            .map(|entry| served(resource, entry))
            .collect();
        let mut list = json!({
            "kind": format!("{}List", resource.kind),
            "apiVersion": resource.api_version(),
            "metadata": {"resourceVersion": listed.revision.to_string()},
        });
        // Moved in: `json!` would serialize the items into a copy.
        list["items"] = Value::Array(items);
        Ok(list)
    }

    /// The stored objects a list selects, shared with the store (not yet as served): for
    /// readers that copy only part of each, as a Table does.
    ///
    /// # Errors
    /// As [`Api::list`].
    pub fn listed(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        options: &ListOptions,
    ) -> ApiResult<store::Listing> {
        let mut listing = self
            .store
            .list(&resource.key(namespace, None))
            .map_err(Self::store_error(resource, ""))?;
        if let Some(requested) = options.resource_version.filter(|_| options.exact)
            && requested != listing.revision
        {
            let oldest = listing.revision;
            return Err(ApiError::Gone { requested, oldest });
        }
        listing
            .entries
            .retain(|entry| options.matches(&entry.value));
        Ok(listing)
    }

    /// Replaces an object (or only its status), guarded by the body's resourceVersion.
    ///
    /// # Errors
    /// 404 when it does not exist, 409 when the body's resourceVersion is stale, 400/422 as for
    /// create.
    pub fn update(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        name: &str,
        value: Value,
        part: Part,
    ) -> ApiResult<Value> {
        let options = WriteOptions::default();
        let written = self.update_with(resource, namespace, name, value, part, &options)?;
        Ok(written.object)
    }

    /// Replaces an object as a client asked (see [`Api::create_with`]).
    ///
    /// # Errors
    /// As [`Api::update`]; 400 for unknown fields under Strict validation.
    pub fn update_with(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        name: &str,
        value: Value,
        part: Part,
        options: &WriteOptions,
    ) -> ApiResult<Written> {
        let warnings = options.check_fields(resource, &value)?;
        let written = |object| Written { object, warnings };
        let _allocating = self.serialize_allocation(resource);
        let admitted = self.admit_update(resource, namespace, name, value, part, options)?;
        let (key, value, current) = match admitted {
            Admitted::Unchanged(current) => return Ok(written(current)),
            Admitted::Finalized(_, current) if options.dry_run => {
                return Ok(written(current.value));
            }
            Admitted::Finalized(key, current) => {
                return self
                    .remove(resource, &key, name, current.revision)
                    .map(written);
            }
            Admitted::Changed { value, .. } if options.dry_run => return Ok(written(value)),
            Admitted::Changed {
                key,
                value,
                current,
            } => (key, value, current),
        };
        let entry = self
            .store
            .update(&key, value, current.revision)
            .map_err(Self::store_error(resource, name))?;
        Ok(written(entry.value))
    }

    /// Updates several objects of one kind in one namespace with one write to disk (a node's
    /// burst of pod statuses); each is admitted like a single update and has its own outcome.
    /// `(name, object)` pairs; an object whose last finalizer goes is removed on its own.
    ///
    /// # Errors
    /// Only when the store fails as a whole.
    pub fn update_many(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        objects: Vec<(String, Value)>,
        part: Part,
    ) -> ApiResult<Vec<ApiResult<Value>>> {
        if *resource == SERVICES {
            // Each allocation must see the Services stored before it.
            let update = |(name, value): (String, Value)| {
                self.update(resource, namespace, &name, value, part)
            };
            return Ok(objects.into_iter().map(update).collect());
        }
        let mut outcomes: Vec<Option<ApiResult<Value>>> = Vec::with_capacity(objects.len());
        let mut writes = Vec::new();
        let mut names = Vec::new();
        for (name, value) in objects {
            let options = WriteOptions::default();
            match self.admit_update(resource, namespace, &name, value, part, &options) {
                Ok(Admitted::Changed {
                    key,
                    value,
                    current,
                }) => {
                    writes.push((key, value, current.revision));
                    names.push(name);
                    outcomes.push(None);
                }
                Ok(Admitted::Unchanged(current)) => outcomes.push(Some(Ok(current))),
                Ok(Admitted::Finalized(key, current)) => {
                    outcomes.push(Some(self.remove(resource, &key, &name, current.revision)));
                }
                Err(error) => outcomes.push(Some(Err(error))),
            }
        }
        let stored = self.store.update_many(writes);
        Self::merge_outcomes(resource, outcomes, stored, names)
    }

    /// What an update of `name` to `value` comes to after the checks, merge and admission.
    fn admit_update(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        name: &str,
        mut value: Value,
        part: Part,
        options: &WriteOptions,
    ) -> ApiResult<Admitted> {
        Self::check_identity(resource, namespace, &mut value)?;
        if name_of(&value) != name {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                name_of(&value)
            )));
        }
        let key = resource.key(namespace, Some(name));
        let current = self.current(resource, &key, name)?;
        if revision_of(&value).is_some_and(|rv| rv != current.revision.to_string()) {
            return Err(ApiError::Conflict {
                resource: resource.qualified(),
                name: name.into(),
            });
        }
        let value = merge_for_update(resource, &current.value, value, part);
        let mut value = kinds::admit(
            resource,
            value,
            Write::Update {
                old: &current.value,
            },
        )?;
        if *resource == SERVICES && part == Part::Main {
            self.allocate_service(&mut value, Some(&current.value))?;
        }
        if let Some(manager) = &options.field_manager {
            managed::record_update(resource, Some(&current.value), &mut value, manager, part);
        }
        if without_revision(&value) == without_revision(&current.value) {
            return Ok(Admitted::Unchanged(current.value));
        }
        if resource.strategy.finalized(&value) {
            return Ok(Admitted::Finalized(key, current));
        }
        Ok(Admitted::Changed {
            key,
            value,
            current,
        })
    }

    /// Deletes an object: at once, or by marking it (graceful pod deletion, finalizers,
    /// namespaces) for the component that finishes the job; on a dry run, answers what the
    /// delete would leave and changes nothing. A concurrent write (a node's status update)
    /// makes it start over on the newer object, as kube-apiserver's delete does, unless the
    /// client pinned a resourceVersion.
    pub fn delete(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        name: &str,
        options: &DeleteOptions,
    ) -> ApiResult<Value> {
        let pinned = options.precondition_resource_version.is_some();
        super::retry_conflicts(pinned, || {
            self.delete_once(resource, namespace, name, options)
        })
    }

    fn delete_once(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        name: &str,
        options: &DeleteOptions,
    ) -> ApiResult<Value> {
        let key = resource.key(namespace, Some(name));
        let current = self.current(resource, &key, name)?;
        let object = &current.value;
        let uid = object.pointer("/metadata/uid").and_then(Value::as_str);
        let uid_mismatch = options
            .precondition_uid
            .as_deref()
            .is_some_and(|u| Some(u) != uid);
        let rv_mismatch = options
            .precondition_resource_version
            .as_deref()
            .is_some_and(|rv| rv != current.revision.to_string());
        if uid_mismatch || rv_mismatch {
            return Err(ApiError::Conflict {
                resource: resource.qualified(),
                name: name.into(),
            });
        }
        resource.strategy.check_delete(name)?;
        let (marking, finalizer) = match resource.strategy.deletion(object, options) {
            Deletion::Now if options.dry_run => return Ok(current.value),
            Deletion::Now => return self.remove(resource, &key, name, current.revision),
            Deletion::Mark { grace, finalizer } => (grace, finalizer),
            Deletion::AlreadyMarked => return Ok(current.value),
        };
        let mut marked = current.value.clone();
        if let Some(finalizer) = finalizer {
            let list = &mut marked["metadata"]["finalizers"];
            if !list.is_array() {
                *list = json!([]);
            }
            if let Some(list) = list.as_array_mut()
                && !list.iter().any(|f| f == finalizer)
            {
                list.push(json!(finalizer));
            }
        }
        let when = clock::add_seconds(Utc::now(), marking.unwrap_or(0));
        marked["metadata"]["deletionTimestamp"] = json!(clock::format(when));
        if let Some(grace) = marking {
            marked["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
        }
        resource.strategy.mark_for_deletion(&mut marked);
        if options.dry_run {
            return Ok(marked);
        }
        let entry = self
            .store
            .update(&key, marked, current.revision)
            .map_err(Self::store_error(resource, name))?;
        Ok(entry.value)
    }

    fn remove(
        &self,
        resource: &Resource,
        key: &str,
        name: &str,
        revision: Revision,
    ) -> ApiResult<Value> {
        let entry = self
            .store
            .delete(key, Some(revision))
            .map_err(Self::store_error(resource, name))?;
        Ok(entry.value)
    }

    /// Creates the namespaces every cluster starts with.
    pub fn bootstrap(self: &Arc<Self>) -> ApiResult<()> {
        for ns in SYSTEM_NAMESPACES {
            // apiVersion and kind are filled from the resource.
            let namespace = json!({"metadata": {"name": ns}});
            match self.create(&NAMESPACES, None, namespace) {
                Ok(_) | Err(ApiError::AlreadyExists { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        self.bootstrap_api_service()
    }
}

/// A listed object as served: its own copy (the listing shares it with the store), in the
/// version `resource` serves.
pub fn served(resource: &Resource, entry: Arc<store::Entry>) -> Value {
    let mut object = Arc::unwrap_or_clone(entry).value;
    as_served(resource, &mut object);
    object
}

/// Shows `object` in `resource`'s version. The served versions of a custom resource share
/// their storage and, with no conversion webhook (`strategy: None`), differ only in
/// `apiVersion`; built-in kinds have one version and are left as they are.
pub fn as_served(resource: &Resource, object: &mut Value) {
    let Some(stored) = object.get("apiVersion").and_then(Value::as_str) else {
        return;
    };
    let served = match resource.group {
        "" => stored == resource.version,
        group => stored
            .split_once('/')
            .is_some_and(|(g, v)| g == group && v == resource.version),
    };
    if !served {
        object["apiVersion"] = Value::String(resource.api_version());
    }
}

/// An update after its checks.
enum Admitted {
    /// Nothing would change: the stored object.
    Unchanged(Value),
    /// The last finalizer of an object being deleted goes: it is removed.
    Finalized(String, crate::store::Entry),
    Changed {
        key: String,
        value: Value,
        current: crate::store::Entry,
    },
}

/// Keeps what a client may not change: identity, timestamps, and (as the kind's strategy says)
/// the part not being written.
fn merge_for_update(resource: &Resource, current: &Value, mut value: Value, part: Part) -> Value {
    for field in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
        "generateName",
    ] {
        match current["metadata"].get(field) {
            Some(kept) => value["metadata"][field] = kept.clone(),
            None => {
                if let Some(meta) = value["metadata"].as_object_mut() {
                    meta.remove(field);
                }
            }
        }
    }
    // A write that leaves out managedFields keeps them, as in Kubernetes.
    if value.pointer("/metadata/managedFields").is_none()
        && let Some(kept) = current.pointer("/metadata/managedFields")
    {
        value["metadata"]["managedFields"] = kept.clone();
    }
    resource
        .strategy
        .prepare_for_update(resource, current, &mut value, part);
    if part == Part::Main && value.get("spec") != current.get("spec") {
        let generation = current
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        value["metadata"]["generation"] = json!(generation + 1);
    }
    value
}

fn without_revision(value: &Value) -> Value {
    let mut value = value.clone();
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
    }
    value
}
