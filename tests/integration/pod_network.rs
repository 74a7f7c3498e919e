//! The pod network on one node, with real guests and real sockets: a private loopback per pod,
//! nothing outside the pod network, HTTP components served on their ports, pod IPs.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use wasmkube::api::kinds::{NODES, PODS};
use wasmkube::api::logs::LogOptions;
use wasmkube::testing::Cluster;

use crate::support::{
    PodBuilder, eventually, phase, pod_logs, sample, wait_for_event, wait_for_pod,
};

/// Adds a container running the `client` sample with `args`.
pub fn with_client(builder: PodBuilder, name: &str, args: &[&str]) -> PodBuilder {
    builder
        .container(name, args)
        .with("image", json!(sample("client.wasm")))
}

/// Adds the `http-echo` sample as container `web`, served on port 8080 (named `http`).
pub fn with_echo(builder: PodBuilder) -> PodBuilder {
    builder
        .container("web", &[])
        .with("image", json!(sample("http-echo.wasm")))
        .with("ports", json!([{"name": "http", "containerPort": 8080}]))
        .with(
            "env",
            json!([{"name": "VERSION", "value": "v1"},
                   {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                   {"name": "STATE_DIR", "value": "/state"}]),
        )
        .with(
            "volumeMounts",
            json!([{"name": "state", "mountPath": "/state"}]),
        )
        .empty_dir("state")
}

/// Waits until container `container` of pod `name` has logged `needle`; returns the log.
async fn logged(cluster: &Cluster, name: &str, container: &str, needle: &str) -> String {
    let what = format!("{name}/{container} to log {needle:?}");
    let options = LogOptions {
        container: Some(container.into()),
        ..Default::default()
    };
    eventually(Duration::from_secs(20), &what, || async {
        // Not scheduled or not started yet: try again.
        let mut chunks = cluster
            .api()
            .pod_logs("default", name, &options)
            .await
            .ok()?;
        let mut text = String::new();
        while let Some(chunk) = chunks.recv().await {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
        text.contains(needle).then_some(text)
    })
    .await
}

async fn running(cluster: &Cluster, name: &str) -> Value {
    wait_for_pod(cluster.api(), "default", name, "Running", |p| {
        phase(p) == "Running"
    })
    .await
}

/// The pod's IP, and the host address that stands for it (its loopback address).
fn addresses(pod: &Value) -> (Ipv4Addr, Ipv4Addr) {
    let ip: Ipv4Addr = pod["status"]["podIP"].as_str().unwrap().parse().unwrap();
    let [_, b, c, d] = ip.octets();
    (ip, Ipv4Addr::new(127, b, c, d))
}

/// GETs each of `paths` in turn on one HTTP/1.1 connection to `address`; status and body.
pub async fn get_on_one_connection(address: SocketAddr, paths: &[&str]) -> Vec<(u16, String)> {
    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut answers = Vec::new();
    for path in paths {
        let request = http::Request::get(*path)
            .header("host", "web")
            .body(Empty::<Bytes>::new())
            .unwrap();
        // The connection takes the next request once the last answer is read to its end.
        sender.ready().await.unwrap();
        let call = sender.send_request(request);
        let response = tokio::time::timeout(Duration::from_secs(10), call)
            .await
            .unwrap_or_else(|_| panic!("no answer to {path} within 10 s"))
            .unwrap();
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        answers.push((status, String::from_utf8_lossy(&body).into_owned()));
    }
    answers
}

/// A GET over HTTP/2 without TLS (prior knowledge), as h2c clients make it.
async fn h2c_get(address: SocketAddr, path: &str) -> String {
    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let request = http::Request::get(format!("http://web{path}"))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let call = sender.send_request(request);
    let response = tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .expect("an h2c answer within 10 s")
        .unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&body).into_owned()
}

fn tcp_pair(name: &str, text: &str) -> Value {
    let builder = PodBuilder::named(name).container("server", &["serve-tcp", "9000", text]);
    let by_address = ["--count", "0", "--every", "200", "127.0.0.1:9000", "ping"];
    let by_name = ["--count", "0", "--every", "200", "localhost:9000", "ping"];
    let builder = with_client(builder, "client", &by_address);
    with_client(builder, "by-name", &by_name).build()
}

#[tokio::test]
async fn containers_of_a_pod_share_its_loopback_and_two_pods_bind_one_port_apart() {
    let cluster = Cluster::start().await.unwrap();
    let api = cluster.api();
    api.create(&PODS, Some("default"), tcp_pair("a", "from-a"))
        .unwrap();
    api.create(&PODS, Some("default"), tcp_pair("b", "from-b"))
        .unwrap();
    let lonely = ["--count", "0", "--every", "200", "127.0.0.1:9000", "ping"];
    let c = with_client(PodBuilder::named("c"), "client", &lonely).build();
    api.create(&PODS, Some("default"), c).unwrap();

    for (pod, text) in [("a", "from-a"), ("b", "from-b")] {
        let seen = format!("{text} (to 127.0.0.1:9000 from 127.0.0.1:");
        for container in ["client", "by-name"] {
            let log = logged(&cluster, pod, container, &seen).await;
            let other = if pod == "a" { "from-b" } else { "from-a" };
            assert!(!log.contains(other), "{pod} reached the other pod: {log}");
        }
    }
    let log = logged(&cluster, "c", "client", "error: connect 127.0.0.1:9000").await;
    assert!(log.to_lowercase().contains("refused"), "{log}");
    assert!(
        !log.contains("from-"),
        "c reached another pod's loopback: {log}"
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_guest_reaches_no_host_address_outside_its_pod_and_denials_are_told() {
    let cluster = Cluster::start().await.unwrap();
    let host = TcpListener::bind("127.0.0.1:0").unwrap();
    let other_loopback = TcpListener::bind("127.0.0.2:0").unwrap();
    for listener in [&host, &other_loopback] {
        listener.set_nonblocking(true).unwrap();
    }
    let api_port = cluster.api_url().rsplit(':').next().unwrap().to_string();
    let targets = [
        host.local_addr().unwrap().to_string(),
        other_loopback.local_addr().unwrap().to_string(),
        format!("127.0.0.1:{api_port}"),
        "10.1.2.3:80".to_string(),
        format!("[::1]:{}", host.local_addr().unwrap().port()),
    ];
    let steps: Vec<&str> = targets.iter().flat_map(|t| ["connect", t]).collect();
    let pod = PodBuilder::named("prober")
        .restart_policy("Never")
        .container("c", &steps)
        .build();
    cluster.api().create(&PODS, Some("default"), pod).unwrap();
    // 10.1.2.3 answers nothing: only a denial, not a connection attempt, ends in time.
    wait_for_pod(cluster.api(), "default", "prober", "Succeeded", |p| {
        phase(p) == "Succeeded"
    })
    .await;
    let log = pod_logs(&cluster, "default", "prober", "c").await;
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), targets.len(), "{log}");
    for (line, target) in lines.iter().zip(&targets) {
        assert!(line.starts_with("connect denied"), "{target}: {line}");
    }
    for listener in [&host, &other_loopback] {
        let accepted = listener.accept();
        assert!(accepted.is_err(), "a guest reached the host: {accepted:?}");
    }
    let event = wait_for_event(cluster.api(), "default", "prober", "NetworkDenied").await;
    assert!(event.contains("10.1.2.3:80"), "{event}");
    cluster.shutdown().await;
}

#[tokio::test]
async fn an_http_component_answers_its_siblings_and_the_node_an_instance_per_request() {
    let cluster = Cluster::start().await.unwrap();
    let builder = with_echo(PodBuilder::named("web"))
        .with("resources", json!({"limits": {"memory": "32Mi"}}));
    let by_http = [
        "--count",
        "0",
        "--every",
        "300",
        "http://localhost:8080/hello",
    ];
    let builder = with_client(builder, "caller", &by_http);
    let by_tcp = [
        "--count",
        "0",
        "--every",
        "300",
        "localhost:8080",
        "GET /tcp HTTP/1.0\r\n",
    ];
    let pod = with_client(builder, "raw", &by_tcp).build();
    cluster.api().create(&PODS, Some("default"), pod).unwrap();
    let pod = running(&cluster, "web").await;
    logged(
        &cluster,
        "web",
        "caller",
        "200 pod=web version=v1 path=/hello",
    )
    .await;
    logged(&cluster, "web", "raw", "pod=web version=v1 path=/tcp").await;

    let (_, loopback) = addresses(&pod);
    let served = SocketAddr::from((loopback, 8080));
    let answers = get_on_one_connection(served, &["/one", "/two", "/bytes/3"]).await;
    assert_eq!(answers[0], (200, "pod=web version=v1 path=/one\n".into()));
    assert_eq!(answers[1], (200, "pod=web version=v1 path=/two\n".into()));
    assert_eq!(answers[2], (200, "xxx".into()));
    // 64 MB of body in a 32 MiB instance: that request fails, the next is served.
    let answers = get_on_one_connection(served, &["/bytes/64000000"]).await;
    assert_eq!(answers[0].0, 500, "{:?}", answers[0].1);
    let answers = get_on_one_connection(served, &["/after"]).await;
    assert_eq!(answers[0], (200, "pod=web version=v1 path=/after\n".into()));
    assert_eq!(
        h2c_get(served, "/h2").await,
        "pod=web version=v1 path=/h2\n"
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn pods_get_ips_from_their_nodes_block_and_reach_each_other_by_them() {
    let cluster = Cluster::start().await.unwrap();
    let api = cluster.api();
    let server = PodBuilder::named("server")
        .container("s", &["serve-tcp", "9000", "served"])
        .build();
    api.create(&PODS, Some("default"), server).unwrap();
    let server = running(&cluster, "server").await;
    let (ip, _) = addresses(&server);
    assert_eq!(server["status"]["podIPs"], json!([{"ip": ip.to_string()}]));
    let node = api.get(&NODES, None, "node-1").unwrap();
    let block: wasmkube::cidr::Ipv4Block =
        node["spec"]["podCIDR"].as_str().unwrap().parse().unwrap();
    assert!(block.contains(ip), "{ip} outside {block}");
    assert_eq!(node["spec"]["podCIDRs"], json!([block.to_string()]));

    let target = format!("{ip}:9000");
    let args = ["--count", "0", "--every", "200", target.as_str(), "ping"];
    let client = with_client(PodBuilder::named("client"), "c", &args).build();
    api.create(&PODS, Some("default"), client).unwrap();
    let client = running(&cluster, "client").await;
    let (client_ip, _) = addresses(&client);
    assert_ne!(client_ip, ip);
    let seen = format!("served (to {ip}:9000 from {client_ip}:");
    logged(&cluster, "client", "c", &seen).await;
    cluster.shutdown().await;
}
