//! Probes against real guests: readiness drives `Ready` and `READY n/m`, a failing liveness probe
//! restarts the container with Kubernetes' events, startup gates the others; httpGet, tcpSocket
//! and exec.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde_json::{Value, json};
use wasmkube::api::kinds::PODS;
use wasmkube::testing::Cluster;

use crate::cli::wasmkube;
use crate::pod_network::{get_on_one_connection, with_echo};
use crate::support::{
    PodBuilder, container_status, eventually, phase, wait_for_event, wait_for_pod,
};

fn ready(pod: &Value) -> bool {
    let conditions = pod["status"]["conditions"].as_array();
    conditions
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// The READY column of `get pods` for `name`.
async fn ready_column(cluster: &Cluster, name: &str) -> Option<String> {
    let table = wasmkube(cluster, &["get", "pods"], None).await.stdout;
    let row = table.lines().find(|l| l.starts_with(&format!("{name} ")))?;
    row.split_whitespace().nth(1).map(str::to_string)
}

async fn wait_ready_column(cluster: &Cluster, name: &str, expected: &str) {
    let what = format!("{name} READY {expected}");
    eventually(Duration::from_secs(20), &what, || async {
        (ready_column(cluster, name).await? == expected).then_some(())
    })
    .await;
}

fn loopback(pod: &Value) -> Ipv4Addr {
    let ip: Ipv4Addr = pod["status"]["podIP"].as_str().unwrap().parse().unwrap();
    let [_, b, c, d] = ip.octets();
    Ipv4Addr::new(127, b, c, d)
}

#[tokio::test]
async fn a_failing_readiness_probe_takes_the_pod_out_of_ready_until_it_passes_again() {
    let cluster = Cluster::start().await.unwrap();
    let probe = json!({"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 1});
    let pod = with_echo(PodBuilder::named("web"))
        .with("readinessProbe", probe)
        .build();
    cluster.api().create(&PODS, Some("default"), pod).unwrap();
    let pod = wait_for_pod(cluster.api(), "default", "web", "web Ready", ready).await;
    wait_ready_column(&cluster, "web", "1/1").await;
    let web = SocketAddr::from((loopback(&pod), 8080));

    get_on_one_connection(web, &["/unready"]).await;
    let pod = wait_for_pod(cluster.api(), "default", "web", "web not Ready", |p| {
        !ready(p)
    })
    .await;
    assert_eq!(container_status(&pod, "web")["ready"], false);
    assert_eq!(phase(&pod), "Running");
    wait_ready_column(&cluster, "web", "0/1").await;
    let event = wait_for_event(cluster.api(), "default", "web", "Unhealthy").await;
    assert_eq!(
        event,
        "Readiness probe failed: HTTP probe failed with statuscode: 503"
    );

    get_on_one_connection(web, &["/ready"]).await;
    wait_for_pod(cluster.api(), "default", "web", "web Ready again", ready).await;
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_failing_liveness_probe_restarts_the_container_and_says_so() {
    let cluster = Cluster::start().await.unwrap();
    let probe = json!({"httpGet": {"path": "/status/500", "port": 8080},
                       "periodSeconds": 1, "failureThreshold": 2});
    let pod = with_echo(PodBuilder::named("sick"))
        .with("livenessProbe", probe)
        .build();
    cluster.api().create(&PODS, Some("default"), pod).unwrap();
    wait_for_pod(cluster.api(), "default", "sick", "a restart", |p| {
        container_status(p, "web")["restartCount"].as_i64() >= Some(1)
    })
    .await;
    let unhealthy = wait_for_event(cluster.api(), "default", "sick", "Unhealthy").await;
    assert_eq!(
        unhealthy,
        "Liveness probe failed: HTTP probe failed with statuscode: 500"
    );
    let killing = wait_for_event(cluster.api(), "default", "sick", "Killing").await;
    assert_eq!(
        killing,
        "Container web failed liveness probe, will be restarted"
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn tcp_socket_readiness_counts_only_the_container_whose_port_answers() {
    let cluster = Cluster::start().await.unwrap();
    let tcp = |port: u16| json!({"tcpSocket": {"port": port}, "periodSeconds": 1});
    let pod = PodBuilder::named("pair")
        .container("open", &["serve-tcp", "9000", "hi"])
        .with("readinessProbe", tcp(9000))
        .container("closed", &["sleep", "600000"])
        .with("readinessProbe", tcp(9001))
        .build();
    cluster.api().create(&PODS, Some("default"), pod).unwrap();
    let pod = wait_for_pod(cluster.api(), "default", "pair", "open ready", |p| {
        container_status(p, "open")["ready"] == true
    })
    .await;
    assert_eq!(container_status(&pod, "closed")["ready"], false);
    assert!(!ready(&pod));
    wait_ready_column(&cluster, "pair", "1/2").await;
    let event = wait_for_event(cluster.api(), "default", "pair", "Unhealthy").await;
    assert!(
        event.starts_with("Readiness probe failed: dial tcp ") && event.contains(":9001"),
        "{event}"
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn exec_probes_run_a_command_in_the_container_and_startup_gates_liveness() {
    let cluster = Cluster::start().await.unwrap();
    let exec = |argv: &[&str]| json!({"exec": {"command": argv}, "periodSeconds": 1});
    let pod = PodBuilder::named("execs")
        .container("c", &["sleep", "600000"])
        .with("startupProbe", exec(&["exerciser", "exit", "0"]))
        .with("livenessProbe", exec(&["exerciser", "read", "/missing"]))
        .build();
    cluster.api().create(&PODS, Some("default"), pod).unwrap();
    let pod = wait_for_pod(cluster.api(), "default", "execs", "a restart", |p| {
        container_status(p, "c")["restartCount"].as_i64() >= Some(1)
    })
    .await;
    assert_eq!(phase(&pod), "Running");
    let unhealthy = wait_for_event(cluster.api(), "default", "execs", "Unhealthy").await;
    assert!(
        unhealthy.starts_with(
            "Liveness probe failed: command [\"exerciser\", \"read\", \"/missing\"] exited with 1"
        ),
        "{unhealthy}"
    );
    // A started container that is not restarting is ready (it has no readiness probe).
    wait_for_pod(cluster.api(), "default", "execs", "started", |p| {
        container_status(p, "c")["started"] == true
    })
    .await;
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_probe_without_a_handler_is_refused_naming_the_field_and_nothing_is_stored() {
    let cluster = Cluster::start().await.unwrap();
    let pod = PodBuilder::named("bad")
        .container("c", &["sleep", "600000"])
        .with("livenessProbe", json!({"periodSeconds": 3}))
        .with("readinessProbe", json!({"tcpSocket": {"port": 70000}}))
        .build();
    let refused = cluster.api().create(&PODS, Some("default"), pod);
    let error = refused.expect_err("an invalid probe was stored");
    let status = error.to_status();
    assert_eq!(status["code"], 422, "{status}");
    let message = status["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(
            "spec.containers[0].livenessProbe: Required value: must specify a handler type"
        ),
        "{message}"
    );
    assert!(
        message.contains("spec.containers[0].readinessProbe.tcpSocket.port"),
        "{message}"
    );
    assert!(cluster.api().get(&PODS, Some("default"), "bad").is_err());
    cluster.shutdown().await;
}
