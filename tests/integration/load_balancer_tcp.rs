//! The built-in proxy beyond HTTP to pods: a LoadBalancer in front of a TCP server that does
//! not speak HTTP reaches every replica, a connection at a time, whether the port says
//! `appProtocol: tcp` or the client's first bytes (or its silence) tell; a selectorless
//! Service whose EndpointSlice names a native server on the host reaches it; and an HTTP
//! upgrade (as a WebSocket's) through a port the proxy reads as HTTP carries the bytes after
//! the 101 both ways.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wasmkube::api::kinds::{DEPLOYMENTS, ENDPOINT_SLICES, SERVICES};
use wasmkube::testing::Cluster;

use crate::load_balancer::{HttpClient, get, ingress};
use crate::native_backend::native_backend;
use crate::support::{PodBuilder, eventually};

const CONVERGE: Duration = Duration::from_secs(60);

/// Three replicas of a TCP server (not HTTP) on port 9000 answering their pod's name.
fn tcp_deployment() -> Value {
    let pod = PodBuilder::named("template")
        .container("server", &["serve-tcp", "9000", "$(POD_NAME)"])
        .with(
            "env",
            json!([{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]),
        )
        .build();
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "tcp"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "tcp"}},
            "template": {"metadata": {"labels": {"app": "tcp"}}, "spec": pod["spec"]},
        },
    })
}

/// One connection: after `silence`, sends `text`, closes its side, reads the answer; the
/// pod that answered (`None` when the connection gave nothing).
async fn one_connection(address: SocketAddr, silence: Duration, text: &[u8]) -> Option<String> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(address).await.ok()?;
        tokio::time::sleep(silence).await;
        stream.write_all(text).await.ok()?;
        stream.shutdown().await.ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.ok()?;
        let pod = answer.split_whitespace().next()?;
        Some(pod.to_string())
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .ok()
        .flatten()
}

/// Waits until connections to `address` made as said have reached all three pods.
async fn reaches_three_pods(address: SocketAddr, silence: Duration, text: &[u8]) {
    let seen = std::cell::RefCell::new(BTreeSet::new());
    let what = format!("connections to {address} ({text:?} after {silence:?}) reaching 3 pods");
    eventually(CONVERGE, &what, || async {
        for _ in 0..3 {
            if let Some(pod) = one_connection(address, silence, text).await {
                seen.borrow_mut().insert(pod);
            }
        }
        let seen = seen.borrow();
        assert!(seen.iter().all(|p| p.starts_with("tcp-")), "{seen:?}");
        (seen.len() == 3).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_load_balancer_in_front_of_a_tcp_server_reaches_every_replica_per_connection() {
    let cluster = Cluster::start().await.unwrap();
    let api = cluster.api();
    api.create(&DEPLOYMENTS, Some("default"), tcp_deployment())
        .unwrap();
    let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "tcp"},
        "spec": {"type": "LoadBalancer", "selector": {"app": "tcp"}, "ports": [
            {"name": "declared", "port": 7000, "targetPort": 9000, "appProtocol": "tcp"},
            {"name": "sniffed", "port": 7001, "targetPort": 9000}]}});
    api.create(&SERVICES, Some("default"), service).unwrap();
    let address = ingress(&cluster, "tcp").await;
    let declared = SocketAddr::new(address, 7000);
    let sniffed = SocketAddr::new(address, 7001);
    reaches_three_pods(declared, Duration::ZERO, b"hello").await;
    // A request line on a port said to be TCP is passed on as bytes, not proxied.
    reaches_three_pods(declared, Duration::ZERO, b"GET / HTTP/1.1\r\n\r\n").await;
    reaches_three_pods(sniffed, Duration::ZERO, b"hello").await;
    // Silent past the sniff window (a server-speaks-first client), then talking.
    reaches_three_pods(sniffed, Duration::from_millis(400), b"late").await;
    // Closing without a byte is not HTTP either: the server still gets the connection.
    reaches_three_pods(sniffed, Duration::ZERO, b"").await;
    cluster.shutdown().await;
}

/// A LoadBalancer Service `name` in front of the host server at `native` (a selectorless
/// Service and the slice its user writes); its ingress address and port.
async fn in_front_of(cluster: &Cluster, name: &str, native: SocketAddr) -> SocketAddr {
    let api = cluster.api();
    let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
        "spec": {"type": "LoadBalancer", "ports": [{"name": "http", "port": 8080}]}});
    api.create(&SERVICES, Some("default"), service).unwrap();
    let slice = json!({"metadata": {"name": format!("{name}-1"),
            "labels": {"kubernetes.io/service-name": name}},
        "addressType": "IPv4", "ports": [{"name": "http", "port": native.port()}],
        "endpoints": [{"addresses": [native.ip().to_string()], "conditions": {"ready": true}}]});
    api.create(&ENDPOINT_SLICES, Some("default"), slice)
        .unwrap();
    SocketAddr::new(ingress(cluster, name).await, 8080)
}

#[tokio::test]
async fn a_selectorless_load_balancer_reaches_a_native_server_its_slice_names() {
    let cluster = Cluster::start().await.unwrap();
    let native = native_backend("native").await;
    let url = format!("http://{}/", in_front_of(&cluster, "native", native).await);
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let answer = eventually(CONVERGE, &format!("the native server at {url}"), || async {
        get(&client, &url)
            .await
            .filter(|(status, _)| *status == 200)
    })
    .await;
    assert_eq!(answer.1, "native");
    cluster.shutdown().await;
}

/// A host server that answers any request head with a 101 to the `echo` protocol, then sends
/// back every byte it gets.
async fn upgrading_server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let head = read_head(&mut stream).await;
                assert!(
                    head.contains("upgrade: echo"),
                    "the upgrade reaches the server: {head}"
                );
                let switch = "HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n";
                stream.write_all(switch.as_bytes()).await.unwrap();
                let (mut from, mut to) = stream.split();
                let _ = tokio::io::copy(&mut from, &mut to).await;
            });
        }
    });
    address
}

/// Reads up to the blank line ending an HTTP head; lower-cased.
async fn read_head(stream: &mut tokio::net::TcpStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0];
        if stream.read(&mut byte).await.unwrap() == 0 {
            break;
        }
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).to_lowercase()
}

#[tokio::test]
async fn an_upgrade_through_the_http_path_carries_bytes_both_ways_after_the_101() {
    let cluster = Cluster::start().await.unwrap();
    let native = upgrading_server().await;
    let address = in_front_of(&cluster, "upgrading", native).await;
    let mut stream = eventually(CONVERGE, "the 101 through the proxy", || async {
        let mut stream = tokio::net::TcpStream::connect(address).await.ok()?;
        let ask = "GET /chat HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: echo\r\n\r\n";
        stream.write_all(ask.as_bytes()).await.ok()?;
        let head = read_head(&mut stream).await;
        head.starts_with("http/1.1 101").then_some(stream)
    })
    .await;
    for message in ["ping", "a longer message, after the first"] {
        stream.write_all(message.as_bytes()).await.unwrap();
        let mut echoed = vec![0; message.len()];
        stream.read_exact(&mut echoed).await.unwrap();
        assert_eq!(String::from_utf8(echoed).unwrap(), message);
    }
    cluster.shutdown().await;
}
