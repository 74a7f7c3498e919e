//! Serves what CustomResourceDefinitions define, as apiextensions-apiserver's naming,
//! establishing and finalizing controllers do: each definition's served versions become kinds
//! of the API's registry (`NamesAccepted` and `Established` conditions, or a refusal when the
//! names are taken); a deleted definition's custom resources are deleted before it goes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::api::kinds::custom_resource::served_kinds;
use crate::api::kinds::{CLEANUP_FINALIZER, CUSTOM_RESOURCE_DEFINITIONS, Resource};
use crate::api::objects::{now, take_items};
use crate::api::watch::{WatchEvent, follow};
use crate::api::{Api, ApiError, DeleteOptions, ListOptions, Part, WriteOptions};

/// How often a deleted definition's remaining custom resources are looked at again.
const RECHECK: Duration = Duration::from_millis(500);

/// The kinds served for one definition, made from its `generation`.
struct Served {
    generation: i64,
    kinds: Vec<&'static Resource>,
}

/// Serves the definitions until `shutdown`.
pub async fn run(api: Arc<Api>, shutdown: CancellationToken) {
    let mut served: HashMap<String, Served> = HashMap::new();
    follow(
        &api,
        &CUSTOM_RESOURCE_DEFINITIONS,
        ListOptions::default(),
        &shutdown,
        |event| {
            handle(&api, &mut served, &shutdown, event);
        },
    )
    .await;
}

fn handle(
    api: &Arc<Api>,
    served: &mut HashMap<String, Served>,
    shutdown: &CancellationToken,
    event: WatchEvent,
) {
    let name = event.object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if event.kind == "DELETED" {
        if let Some(gone) = served.remove(&name) {
            withdraw(api, &gone.kinds);
        }
        return;
    }
    if event.object["metadata"]["deletionTimestamp"].is_string() {
        let kinds = served
            .get(&name)
            .map(|s| s.kinds.clone())
            .unwrap_or_default();
        tokio::spawn(finalize(api.clone(), name, kinds, shutdown.clone()));
        return;
    }
    let generation = event.object["metadata"]["generation"].as_i64().unwrap_or(0);
    if served
        .get(&name)
        .is_some_and(|s| s.generation == generation)
    {
        return;
    }
    let crd: CustomResourceDefinition = match serde::Deserialize::deserialize(&event.object) {
        Ok(crd) => crd,
        Err(error) => {
            tracing::warn!(%error, crd = name, "cannot read the definition");
            return;
        }
    };
    if let Some(previous) = served.remove(&name) {
        withdraw(api, &previous.kinds);
    }
    let outcome = serve(api, &crd);
    let kinds = outcome.clone().unwrap_or_default();
    served.insert(name.clone(), Served { generation, kinds });
    write_status(api, &name, &crd, outcome.err());
}

/// Registers the definition's kinds; on a clash none stays registered.
fn serve(api: &Api, crd: &CustomResourceDefinition) -> Result<Vec<&'static Resource>, String> {
    let kinds = served_kinds(crd)?;
    let registry = api.registry();
    for (index, kind) in kinds.iter().enumerate() {
        if let Err(error) = registry.register(kind) {
            withdraw(api, &kinds[..index]);
            return Err(error.to_string());
        }
    }
    Ok(kinds)
}

fn withdraw(api: &Api, kinds: &[&'static Resource]) {
    for kind in kinds {
        api.registry()
            .unregister(kind.group, kind.version, kind.plural);
    }
}

/// Accepts the names and establishes the definition, or says why not.
fn write_status(api: &Api, name: &str, crd: &CustomResourceDefinition, refused: Option<String>) {
    let condition = |kind: &str, accepted: bool, reason: &str, message: &str| {
        json!({"type": kind, "status": if accepted { "True" } else { "False" },
               "reason": reason, "message": message, "lastTransitionTime": now()})
    };
    let conditions = match &refused {
        None => vec![
            condition("NamesAccepted", true, "NoConflicts", "no conflicts found"),
            condition(
                "Established",
                true,
                "InitialNamesAccepted",
                "the initial names have been accepted",
            ),
        ],
        Some(why) => vec![
            condition("NamesAccepted", false, "NameConflict", why),
            condition(
                "Established",
                false,
                "NotAccepted",
                "not all names are accepted",
            ),
        ],
    };
    let target = (&CUSTOM_RESOURCE_DEFINITIONS, None, name, Part::Status);
    let result = api.update_retrying(target, false, &WriteOptions::default(), |stored| {
        if refused.is_none() {
            stored["status"]["acceptedNames"] =
                serde_json::to_value(&crd.spec.names).unwrap_or_default();
        }
        stored["status"]["conditions"] = json!(conditions);
        Ok(())
    });
    if let Err(error) = result {
        tracing::warn!(%error, crd = name, "cannot write the definition's status");
    }
}

/// Deletes the definition's custom resources (in every namespace), then withdraws its kinds
/// and lets it go.
async fn finalize(
    api: Arc<Api>,
    name: String,
    kinds: Vec<&'static Resource>,
    shutdown: CancellationToken,
) {
    loop {
        match delete_all(&api, &kinds) {
            Ok(0) => break,
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, crd = name, "deleting custom resources failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(RECHECK) => {}
            _ = shutdown.cancelled() => return,
        }
    }
    withdraw(&api, &kinds);
    let target = (
        &CUSTOM_RESOURCE_DEFINITIONS,
        None,
        name.as_str(),
        Part::Main,
    );
    let result = api.update_retrying(target, false, &WriteOptions::default(), |crd| {
        if let Some(finalizers) = crd["metadata"]["finalizers"].as_array_mut() {
            finalizers.retain(|f| f != CLEANUP_FINALIZER);
        }
        Ok(())
    });
    match result {
        Ok(_) | Err(ApiError::NotFound { .. }) => {}
        Err(error) => tracing::warn!(%error, crd = name, "cannot release the definition"),
    }
}

/// Asks every custom resource of `kinds` to go; returns how many there were (none: done).
fn delete_all(api: &Api, kinds: &[&'static Resource]) -> Result<usize, ApiError> {
    let Some(kind) = kinds.first() else {
        return Ok(0);
    };
    let items = take_items(&mut api.list(kind, None, &ListOptions::default())?);
    for item in &items {
        let meta = &item["metadata"];
        let name = meta["name"].as_str().unwrap_or_default();
        if item["metadata"]["deletionTimestamp"].is_string() {
            continue;
        }
        match api.delete(
            kind,
            meta["namespace"].as_str(),
            name,
            &DeleteOptions::default(),
        ) {
            Ok(_) | Err(ApiError::NotFound { .. }) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(items.len())
}
