//! The built-in proxy from outside the cluster: a LoadBalancer Service's ingress address and
//! its node port reach every ready replica, 503 when none is, and a port that cannot be bound
//! is a Warning event and no ingress.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use wasmkube::api::Part;
use wasmkube::api::kinds::{DEPLOYMENTS, SERVICES};
use wasmkube::api::patch::PatchType;
use wasmkube::testing::Cluster;

use crate::cluster_ip::{echo_deployment, web_pods, web_service};
use crate::support::{eventually, wait_for_event};

const CONVERGE: Duration = Duration::from_secs(60);

pub type HttpClient = Client<HttpConnector, Empty<Bytes>>;

/// The status and body of a GET of `url`; `None` when no answer came.
pub async fn get(client: &HttpClient, url: &str) -> Option<(u16, String)> {
    let response = client.get(url.parse().ok()?).await.ok()?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.ok()?.to_bytes();
    Some((status, String::from_utf8_lossy(&body).into_owned()))
}

/// Waits until GETs of `url` have been answered by each pod of `names`.
pub async fn reaches_all(client: &HttpClient, url: &str, names: &[String]) {
    let seen = RefCell::new(BTreeSet::new());
    eventually(
        CONVERGE,
        &format!("answers of {names:?} at {url}"),
        || async {
            for _ in 0..6 {
                if let Some((200, body)) = get(client, url).await
                    && let Some(pod) = body.split_whitespace().next()
                {
                    let pod = pod.trim_start_matches("pod=").to_string();
                    seen.borrow_mut().insert(pod);
                }
            }
            names
                .iter()
                .all(|n| seen.borrow().contains(n))
                .then_some(())
        },
    )
    .await;
}

/// The Service's load balancer address, once published.
pub async fn ingress(cluster: &Cluster, name: &str) -> IpAddr {
    eventually(
        CONVERGE,
        &format!("an ingress address of {name}"),
        || async {
            let service = cluster.api().get(&SERVICES, Some("default"), name).ok()?;
            service["status"]["loadBalancer"]["ingress"][0]["ip"]
                .as_str()?
                .parse()
                .ok()
        },
    )
    .await
}

pub fn load_balancer(port: u16) -> Value {
    web_service(json!({"type": "LoadBalancer",
        "ports": [{"name": "http", "port": port, "targetPort": "http"}]}))
}

#[tokio::test]
async fn a_load_balancer_and_its_node_port_reach_all_three_replicas_and_503_without_any() {
    let cluster = Cluster::start().await.unwrap();
    let api = cluster.api();
    api.create(&DEPLOYMENTS, Some("default"), echo_deployment(3))
        .unwrap();
    let service = api
        .create(&SERVICES, Some("default"), load_balancer(8080))
        .unwrap();
    let names = web_pods(api, 3).await;
    let address = ingress(&cluster, "web").await;
    assert!(cluster.proxy().lb_pool.contains(match address {
        IpAddr::V4(ip) => ip,
        IpAddr::V6(_) => panic!("an IPv4 pool"),
    }));
    let node_port = service["spec"]["ports"][0]["nodePort"].as_u64().unwrap() as u16;
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let by_address = format!("http://{}/", SocketAddr::new(address, 8080));
    let by_node_port = format!(
        "http://{}/",
        SocketAddr::new(cluster.proxy().node_ip, node_port)
    );
    reaches_all(&client, &by_address, &names).await;
    reaches_all(&client, &by_node_port, &names).await;

    let none = json!({"spec": {"replicas": 0}});
    api.patch(
        &DEPLOYMENTS,
        Some("default"),
        "web",
        &none,
        PatchType::Merge,
        Part::Main,
    )
    .unwrap();
    for url in [&by_address, &by_node_port] {
        let body = eventually(CONVERGE, &format!("a 503 at {url}"), || async {
            match get(&client, url).await? {
                (503, body) => Some(body),
                _ => None,
            }
        })
        .await;
        assert!(body.contains("default/web has no ready endpoint"), "{body}");
    }

    api.delete(&SERVICES, Some("default"), "web", &Default::default())
        .unwrap();
    for url in [&by_address, &by_node_port] {
        let fresh: HttpClient = Client::builder(TokioExecutor::new()).build_http();
        eventually(CONVERGE, &format!("{url} closed"), || async {
            get(&fresh, url).await.is_none().then_some(())
        })
        .await;
    }
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_load_balancer_port_taken_on_the_host_is_a_warning_and_no_ingress() {
    let cluster = Cluster::start().await.unwrap();
    let api = cluster.api();
    // The first address of the pool is the one the Service gets; hold its port.
    let first = cluster.proxy().lb_pool.nth(1).unwrap();
    let taken = std::net::TcpListener::bind((first, 0)).unwrap();
    let port = taken.local_addr().unwrap().port();
    api.create(&SERVICES, Some("default"), load_balancer(port))
        .unwrap();
    let message = wait_for_event(api, "default", "web", "SyncLoadBalancerFailed").await;
    assert!(message.contains(&format!("{first}:{port}")), "{message}");
    let service = api.get(&SERVICES, Some("default"), "web").unwrap();
    assert!(
        service["status"]["loadBalancer"]["ingress"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "{service}"
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn an_oversized_body_is_413_and_a_client_sending_its_head_slowly_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let cluster = Cluster::start().await.unwrap();
    cluster
        .api()
        .create(&SERVICES, Some("default"), load_balancer(8080))
        .unwrap();
    let address = SocketAddr::new(ingress(&cluster, "web").await, 8080);

    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let length = wasmkube::proxy::MAX_REQUEST_BODY + 1;
    let head = format!("POST / HTTP/1.1\r\nHost: web\r\nContent-Length: {length}\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    // The proxy answers once the limit is passed, without waiting for the rest.
    let _ = stream.write_all(&vec![b'x'; length]).await;
    let mut answer = vec![0; 4096];
    let read = tokio::time::timeout(CONVERGE, stream.read(&mut answer))
        .await
        .expect("an answer to the oversized body")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    let mut slow = tokio::net::TcpStream::connect(address).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: w").await.unwrap();
    let mut rest = [0u8; 1024];
    let closed = tokio::time::timeout(Duration::from_secs(30), slow.read(&mut rest)).await;
    assert!(
        matches!(closed, Ok(Ok(0) | Err(_))),
        "a client that never finished its head kept its connection for 30 s: {closed:?}"
    );
    cluster.shutdown().await;
}
