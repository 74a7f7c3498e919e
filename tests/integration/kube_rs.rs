//! kube-rs, unchanged, against the server: typed Api calls, server-side apply, a watcher, and
//! a Controller reconciling a custom resource of its own definition.

use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Config, CustomResource, CustomResourceExt, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use wasmkube::testing::Cluster;

use crate::support::{PodBuilder, eventually};

async fn client(cluster: &Cluster) -> Client {
    let kubeconfig = Kubeconfig::read_from(cluster.kubeconfig()).unwrap();
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

#[tokio::test]
async fn kube_rs_lists_creates_applies_and_watches_pods() {
    let cluster = Cluster::start().await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client(&cluster).await, "default");
    let mut events = watcher(pods.clone(), watcher::Config::default())
        .applied_objects()
        .boxed();

    let manifest = PodBuilder::named("typed")
        .container("c", &["sleep", "600000"])
        .build();
    let pod: Pod = serde_json::from_value(manifest).unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let listed = pods.list(&ListParams::default()).await.unwrap();
    assert_eq!(
        listed
            .items
            .iter()
            .map(|p| p.name_any())
            .collect::<Vec<_>>(),
        ["typed"]
    );

    let applied = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "typed",
        "labels": {"applied": "yes"}}});
    let params = PatchParams::apply("kube-rs-test");
    let patched = pods
        .patch("typed", &params, &Patch::Apply(&applied))
        .await
        .unwrap();
    assert_eq!(patched.labels()["applied"], "yes");

    let seen = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(pod) = events.try_next().await.unwrap() {
            if pod.labels().get("applied").is_some_and(|v| v == "yes") {
                return pod.name_any();
            }
        }
        String::new()
    })
    .await
    .expect("the watcher sees the applied label");
    assert_eq!(seen, "typed");
    cluster.shutdown().await;
}

/// A custom resource of this test's own, reconciled by a kube-rs Controller.
#[derive(CustomResource, Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[kube(group = "example.com", version = "v1", kind = "Gizmo", namespaced)]
#[kube(status = "GizmoStatus")]
pub struct GizmoSpec {
    size: i32,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
pub struct GizmoStatus {
    doubled: i32,
}

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct ReconcileError(#[from] kube::Error);

async fn reconcile(gizmo: Arc<Gizmo>, api: Arc<Api<Gizmo>>) -> Result<Action, ReconcileError> {
    let status = json!({"status": {"doubled": gizmo.spec.size * 2}});
    api.patch_status(
        &gizmo.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&status),
    )
    .await?;
    Ok(Action::await_change())
}

#[tokio::test]
async fn a_kube_rs_controller_reconciles_a_custom_resource() {
    let cluster = Cluster::start().await.unwrap();
    let client = client(&cluster).await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &Gizmo::crd())
        .await
        .unwrap();
    let gizmos: Api<Gizmo> = Api::namespaced(client, "default");
    eventually(Duration::from_secs(5), "gizmos served", || async {
        gizmos.list(&ListParams::default()).await.ok()
    })
    .await;

    let context = Arc::new(gizmos.clone());
    let controller = tokio::spawn(
        Controller::new(gizmos.clone(), watcher::Config::default())
            .run(
                reconcile,
                |_, _, _| Action::requeue(Duration::from_secs(1)),
                context,
            )
            .for_each(|_| async {}),
    );
    let gizmo = Gizmo::new("g1", GizmoSpec { size: 21 });
    gizmos.create(&PostParams::default(), &gizmo).await.unwrap();
    let doubled = eventually(Duration::from_secs(20), "the Gizmo reconciled", || async {
        let gizmo = gizmos.get("g1").await.ok()?;
        gizmo.status.map(|s| s.doubled).filter(|d| *d != 0)
    })
    .await;
    assert_eq!(doubled, 42);
    controller.abort();
    cluster.shutdown().await;
}
