//! The built-in proxy's budgets: a LoadBalancer Service in front of three replicas of the
//! echo component against the same load sent straight to one of them (the node serving it,
//! no proxy); and how long an endpoint change takes to reach the proxy: the EndpointSlice of a
//! selectorless LoadBalancer Service rewritten, its address asked until it answers as the
//! change says (200 with an endpoint, 503 without); the proxy alone (a LoadBalancer in front
//! of a native hyper backend in this process) against Debian's nginx (a reverse proxy with
//! keep-alive upstream connections, as many worker processes as the proxy's runtime has
//! worker threads) in front of the same backend under the same load; and the memory the
//! proxy's table takes for 1,000 Services × 3 endpoints; and the LoadBalancer against
//! `wasmtime serve` of the same component (wasmtime-cli 48, installed when missing).
//!
//! `cargo bench --bench proxy` (nginx: `apt-get install nginx-light`; wasmtime-cli: `cargo
//! install wasmtime-cli --version 48.0.8 --locked`)

mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use support::http_load::{
    against_wasmtime_serve, echo_pod, load, loopback_of, running, wasmtime_serve_load,
};
use support::native_backend::native_backend;
use support::nginx::Nginx;
use support::{header, millis, p50_p99, row};
use wasmkube::api::kinds::{ENDPOINT_SLICES, PODS, SERVICES};
use wasmkube::api::{Api, Part};
use wasmkube::testing::{Cluster, eventually};

const REPLICAS: usize = 3;
/// Endpoint changes timed (half adding the endpoint, half taking it away).
const CHANGES: usize = 100;
const PORT: u16 = 8080;

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

/// The Service's load balancer address, once published.
async fn ingress(api: &Api, name: &str) -> Ipv4Addr {
    eventually(Duration::from_secs(60), "an ingress address", || async {
        let service = api.get(&SERVICES, Some("default"), name).ok()?;
        service["status"]["loadBalancer"]["ingress"][0]["ip"]
            .as_str()?
            .parse()
            .ok()
    })
    .await
}

/// The status of a GET of `url`, 0 when no answer came.
async fn status(client: &HttpClient, url: &str) -> u16 {
    match client.get(url.parse().unwrap()).await {
        Ok(response) => response.status().as_u16(),
        Err(_) => 0,
    }
}

/// Polls `url` until it answers `wanted`; how long that took from `since`.
async fn until_status(client: &HttpClient, url: &str, wanted: u16, since: Instant) -> Duration {
    while status(client, url).await != wanted {
        assert!(
            since.elapsed() < Duration::from_secs(10),
            "{url} never answered {wanted}"
        );
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    since.elapsed()
}

fn load_balancer(name: &str, selector: Option<Value>) -> Value {
    let mut spec = json!({"type": "LoadBalancer",
        "ports": [{"name": "http", "port": PORT, "targetPort": PORT}]});
    if let Some(selector) = selector {
        spec["selector"] = selector;
    }
    json!({"metadata": {"name": name}, "spec": spec})
}

/// Three echo pods behind a LoadBalancer: requests/s and p50 of one of them served straight
/// and of all three through the proxy. Returns one pod's IP for the change measurement.
async fn through_the_proxy(api: &Api) -> (((f64, Duration), (f64, Duration)), String) {
    let mut pods = Vec::new();
    for i in 0..REPLICAS {
        let mut pod = echo_pod(&format!("web-{i}"));
        pod["metadata"]["labels"] = json!({"app": "web"});
        api.create(&PODS, Some("default"), pod).unwrap();
        pods.push(running(api, &format!("web-{i}")).await);
    }
    let service = load_balancer("web", Some(json!({"app": "web"})));
    api.create(&SERVICES, Some("default"), service).unwrap();
    let address = SocketAddr::from((ingress(api, "web").await, PORT));
    let client = Client::builder(TokioExecutor::new()).build_http();
    until_status(&client, &format!("http://{address}/"), 200, Instant::now()).await;
    let direct = load(SocketAddr::from((loopback_of(&pods[0]), PORT))).await;
    let proxied = load(address).await;
    let pod_ip = pods[0]["status"]["podIP"].as_str().unwrap().to_string();
    ((direct, proxied), pod_ip)
}

/// Rewrites a selectorless Service's slice `CHANGES` times, alternately with and without
/// `pod_ip`; from each write to the proxy answering accordingly, sorted.
async fn endpoint_changes(api: &Api, pod_ip: &str) -> Vec<Duration> {
    api.create(&SERVICES, Some("default"), load_balancer("manual", None))
        .unwrap();
    let url = format!("http://{}:{PORT}/", ingress(api, "manual").await);
    let client = Client::builder(TokioExecutor::new()).build_http();
    let slice = |ready: bool| {
        let endpoints: Vec<Value> = ready
            .then(|| json!({"addresses": [pod_ip], "conditions": {"ready": true}}))
            .into_iter()
            .collect();
        json!({"metadata": {"name": "manual-1",
                            "labels": {"kubernetes.io/service-name": "manual"}},
               "addressType": "IPv4", "ports": [{"name": "http", "port": PORT}],
               "endpoints": endpoints})
    };
    api.create(&ENDPOINT_SLICES, Some("default"), slice(false))
        .unwrap();
    until_status(&client, &url, 503, Instant::now()).await;
    let mut latencies = Vec::new();
    for n in 0..CHANGES {
        let ready = n % 2 == 0;
        let start = Instant::now();
        let current = api
            .get(&ENDPOINT_SLICES, Some("default"), "manual-1")
            .unwrap();
        let mut wanted = slice(ready);
        wanted["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"].clone();
        api.update(
            &ENDPOINT_SLICES,
            Some("default"),
            "manual-1",
            wanted,
            Part::Main,
        )
        .unwrap();
        let answer = if ready { 200 } else { 503 };
        latencies.push(until_status(&client, &url, answer, start).await);
    }
    latencies.sort();
    latencies
}

/// The proxy alone and nginx, each in front of one native backend: (proxy, nginx).
async fn against_nginx(api: &Api, workers: usize) -> ((f64, Duration), (f64, Duration)) {
    let backend = native_backend("hello").await;
    api.create(&SERVICES, Some("default"), load_balancer("native", None))
        .unwrap();
    let slice = json!({"metadata": {"name": "native-1",
            "labels": {"kubernetes.io/service-name": "native"}},
        "addressType": "IPv4", "ports": [{"name": "http", "port": backend.port()}],
        "endpoints": [{"addresses": [backend.ip().to_string()]}]});
    api.create(&ENDPOINT_SLICES, Some("default"), slice)
        .unwrap();
    let address = SocketAddr::from((ingress(api, "native").await, PORT));
    let client = Client::builder(TokioExecutor::new()).build_http();
    until_status(&client, &format!("http://{address}/"), 200, Instant::now()).await;
    let proxied = load(address).await;
    let nginx = Nginx::start(workers, backend).await;
    let by_nginx = load(nginx.address).await;
    (proxied, by_nginx)
}

/// The growth of this process's resident memory while a table takes 1,000 Services of three
/// endpoints each, as the proxy's informers hand them over (a fresh table, no cluster): an
/// upper bound, as what the building of the objects freed may stay resident.
fn table_memory() -> u64 {
    let before = resident_bytes();
    let table = wasmkube::proxy::ServiceTable::default();
    for n in 0..1_000u32 {
        let name = format!("svc-{n}");
        let (hi, lo) = (n / 250, n % 250);
        let service: k8s_openapi::api::core::v1::Service = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"type": "NodePort", "clusterIP": format!("10.96.{hi}.{lo}"),
                     "ports": [{"name": "http", "port": 80, "nodePort": 30000 + n}]}}))
        .unwrap();
        let endpoints: Vec<Value> = (1..=3)
            .map(|e| json!({"addresses": [format!("10.244.{hi}.{}", lo * 3 % 250 + e)]}))
            .collect();
        let slice = serde_json::from_value(json!({"metadata": {"name": format!("{name}-1")},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 8080}],
            "endpoints": endpoints}))
        .unwrap();
        table.set_service("default", &name, Some(&service), &[slice]);
    }
    assert_eq!(
        table.fronts().len(),
        2_000,
        "a cluster IP and a node port each"
    );
    resident_bytes().saturating_sub(before)
}

/// This process's resident set (`/proc/self/statm`'s second field, in pages of 4 KiB).
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

fn rate_row(name: &str, (rate, p50): (f64, Duration), budget: &str) {
    row(&format!("{name}, requests/s"), format!("{rate:.0}"), budget);
    row(
        &format!("{name}, p50 (one connection)"),
        millis(p50),
        "reported",
    );
}

fn main() {
    // The proxy runs on the process's runtime: its worker threads are nginx's worker processes.
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap();
    let table = table_memory();
    let (((direct, proxied), _), changes, (alone, nginx)) = runtime.block_on(async {
        let cluster = Cluster::start().await.unwrap();
        let api = cluster.api().clone();
        let through = through_the_proxy(&api).await;
        let changes = endpoint_changes(&api, &through.1).await;
        let versus = against_nginx(&api, workers).await;
        cluster.shutdown().await;
        (through, changes, versus)
    });
    let serve = runtime.block_on(wasmtime_serve_load("http-echo.wasm"));
    header();
    rate_row(
        "one echo pod served straight by the node",
        direct,
        "reported",
    );
    rate_row("LoadBalancer -> three echo pods", proxied, "reported");
    row(
        "LoadBalancer / straight, requests/s",
        format!("{:.2}", proxied.0 / direct.0),
        "reported",
    );
    against_wasmtime_serve("LoadBalancer", proxied, serve);
    p50_p99(
        "endpoint change -> proxy answers by it",
        &changes,
        "< 100 ms",
    );
    rate_row(
        &format!("LoadBalancer -> native ({workers} threads)"),
        alone,
        "reported",
    );
    rate_row(
        &format!("nginx -> native ({workers} workers)"),
        nginx,
        "reported",
    );
    row(
        "LoadBalancer / nginx, requests/s",
        format!("{:.2}", alone.0 / nginx.0),
        ">= 1.00",
    );
    row(
        "1,000 Services x 3 endpoints: table memory",
        format!("{:.1} MiB", table as f64 / f64::from(1 << 20)),
        "< 50 MiB",
    );
}
