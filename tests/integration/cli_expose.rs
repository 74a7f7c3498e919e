//! `wasmkube expose`, run as the real binary: a Service selecting what is exposed, in
//! kubectl's words, that reaches its pods; bad input is the server's 422 naming the field.

use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::net::SocketAddr;
use wasmkube::api::kinds::{DEPLOYMENTS, PODS, SERVICES};
use wasmkube::testing::Cluster;

use crate::cli::wasmkube;
use crate::cluster_ip::{echo_deployment, web_pods};
use crate::load_balancer::{HttpClient, ingress, reaches_all};
use crate::support::PodBuilder;

#[tokio::test]
async fn expose_deployment_makes_a_load_balancer_that_reaches_its_pods() {
    let cluster = Cluster::start().await.unwrap();
    let api = cluster.api();
    api.create(&DEPLOYMENTS, Some("default"), echo_deployment(2))
        .unwrap();
    let args = [
        "expose",
        "deployment",
        "web",
        "--port",
        "8080",
        "--target-port",
        "http",
        "--type",
        "LoadBalancer",
        "--name",
        "web-lb",
    ];
    let exposed = wasmkube(&cluster, &args, None).await;
    assert!(exposed.success, "{}", exposed.stderr);
    assert_eq!(exposed.stdout.trim(), "service/web-lb exposed");
    let service = api.get(&SERVICES, Some("default"), "web-lb").unwrap();
    assert_eq!(
        service["spec"]["selector"],
        serde_json::json!({"app": "web"})
    );
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "http");
    let names = web_pods(api, 2).await;
    let url = format!(
        "http://{}/",
        SocketAddr::new(ingress(&cluster, "web-lb").await, 8080)
    );
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    reaches_all(&client, &url, &names).await;
    cluster.shutdown().await;
}

#[tokio::test]
async fn expose_pod_selects_its_labels_and_bad_input_changes_nothing() {
    let cluster = Cluster::start().await.unwrap();
    let api = cluster.api();
    let mut pod = PodBuilder::named("solo")
        .container("c", &["sleep", "60000"])
        .build();
    pod["metadata"]["labels"] = serde_json::json!({"app": "solo"});
    api.create(&PODS, Some("default"), pod).unwrap();
    let exposed = wasmkube(&cluster, &["expose", "pod/solo", "--port", "80"], None).await;
    assert!(exposed.success, "{}", exposed.stderr);
    assert_eq!(exposed.stdout.trim(), "service/solo exposed");
    let service = api.get(&SERVICES, Some("default"), "solo").unwrap();
    assert_eq!(service["spec"]["selector"]["app"], "solo");
    assert_eq!(service["spec"]["ports"][0]["targetPort"], 80);

    let weird = [
        "expose", "pod/solo", "--port", "80", "--name", "w", "--type", "Weird",
    ];
    let refused = wasmkube(&cluster, &weird, None).await;
    assert!(!refused.success);
    assert!(refused.stderr.contains("spec.type"), "{}", refused.stderr);
    assert!(api.get(&SERVICES, Some("default"), "w").is_err());
    let missing = wasmkube(
        &cluster,
        &["expose", "pod", "nothing", "--port", "80"],
        None,
    )
    .await;
    assert!(!missing.success);
    assert!(missing.stderr.contains("nothing"), "{}", missing.stderr);
    cluster.shutdown().await;
}
