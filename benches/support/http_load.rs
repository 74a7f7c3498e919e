//! HTTP load on keep-alive connections, and the echo component's pods it is aimed at.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use wasmkube::api::kinds::PODS;

use super::percentile;

/// Concurrent keep-alive connections of the load.
pub const CONNECTIONS: usize = 4;
pub const LOAD_TIME: Duration = Duration::from_secs(3);

pub fn sample(file: &str) -> String {
    format!("{}/{file}", env!("WASMKUBE_SAMPLES_DIR"))
}

/// Requests per second over `CONNECTIONS` connections for `LOAD_TIME`, and the median latency
/// of one connection's requests made one at a time.
pub async fn load(address: SocketAddr) -> (f64, Duration) {
    let deadline = Instant::now() + LOAD_TIME;
    let workers: Vec<_> = (0..CONNECTIONS)
        .map(|_| tokio::spawn(requests_until(address, deadline)))
        .collect();
    let mut total = 0;
    for worker in workers {
        total += worker.await.unwrap().len();
    }
    let rate = total as f64 / LOAD_TIME.as_secs_f64();
    let mut alone = requests_until(address, Instant::now() + Duration::from_secs(1)).await;
    alone.sort();
    (rate, percentile(&alone, 0.5))
}

/// The wasmtime-cli the comparisons run against: the line wasmkube's wasmtime is on.
const WASMTIME_CLI: &str = "48.0.8";

/// Installs wasmtime-cli with `cargo install` unless `wasmtime` of that version is on the
/// PATH (about 15 minutes on two cores, once); whether it is there now.
fn ensure_wasmtime_cli() -> bool {
    let installed = || {
        Command::new("wasmtime")
            .arg("--version")
            .output()
            .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains(WASMTIME_CLI))
    };
    if installed() {
        return true;
    }
    eprintln!("installing wasmtime-cli {WASMTIME_CLI} for the comparison (cargo install)...");
    let status = Command::new("cargo")
        .args([
            "install",
            "wasmtime-cli",
            "--version",
            WASMTIME_CLI,
            "--locked",
        ])
        .status();
    status.is_ok_and(|s| s.success()) && installed()
}

/// [`load`] on `wasmtime serve` of the sample component `file`; `None` when wasmtime-cli is
/// not on the PATH and cannot be installed.
pub async fn wasmtime_serve_load(file: &str) -> Option<(f64, Duration)> {
    if !ensure_wasmtime_cli() {
        return None;
    }
    let port = super::processes::free_port();
    let child = Command::new("wasmtime")
        .args(["serve", "-Scli", "--addr", &format!("127.0.0.1:{port}")])
        .arg(sample(file))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    struct Kill(Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _guard = Kill(child);
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    wasmkube::testing::eventually(
        Duration::from_secs(30),
        "wasmtime serve to listen",
        || async { tokio::net::TcpStream::connect(address).await.ok() },
    )
    .await;
    Some(load(address).await)
}

/// The rows comparing `ours` (requests/s and p50 of one connection, from [`load`], under the
/// name `name`) with `wasmtime serve` of the same component, against the budgets of both
/// issues: at least 90% of its requests/s, p50 at most 0.3 ms above its.
pub fn against_wasmtime_serve(name: &str, ours: (f64, Duration), serve: Option<(f64, Duration)>) {
    let Some((serve_rate, serve_p50)) = serve else {
        let what = "wasmtime serve (wasmtime-cli not installable)";
        super::row(what, "not run".into(), ">= 90%");
        return;
    };
    let rate = format!("{serve_rate:.0} req/s");
    super::row("wasmtime serve, same component", rate, "reference");
    let p50 = super::millis(serve_p50);
    super::row("  p50 latency, one connection", p50, "reference");
    let share = format!("{:.0}%", 100.0 * ours.0 / serve_rate);
    super::row(
        &format!("{name} / wasmtime serve requests/s"),
        share,
        ">= 90%",
    );
    let extra = ours.1.as_secs_f64() - serve_p50.as_secs_f64();
    let extra = format!("{:.3} ms", extra * 1e3);
    super::row(
        &format!("{name} p50 - wasmtime serve p50"),
        extra,
        "<= 0.3 ms",
    );
}

/// GETs `/hello` on one connection until `deadline`; the latency of each.
pub async fn requests_until(address: SocketAddr, deadline: Instant) -> Vec<Duration> {
    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut latencies = Vec::new();
    while Instant::now() < deadline {
        let request = http::Request::get("/hello")
            .header("host", "bench")
            .body(Empty::<Bytes>::new())
            .unwrap();
        let start = Instant::now();
        sender.ready().await.unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.status(), 200);
        response.into_body().collect().await.unwrap();
        latencies.push(start.elapsed());
    }
    latencies
}

pub fn echo_pod(name: &str) -> Value {
    json!({"metadata": {"name": name}, "spec": {"containers": [{
        "name": "web", "image": sample("http-echo.wasm"),
        "ports": [{"containerPort": 8080}],
        "env": [{"name": "VERSION", "value": "bench"}]}]}})
}

pub fn loopback_of(pod: &Value) -> Ipv4Addr {
    let ip: Ipv4Addr = pod["status"]["podIP"].as_str().unwrap().parse().unwrap();
    let [_, b, c, d] = ip.octets();
    Ipv4Addr::new(127, b, c, d)
}

/// Waits for the pod to run, polling every 200 µs (as the cluster bench does: `eventually`'s
/// 20 ms would round every start up).
pub async fn running(api: &wasmkube::api::Api, name: &str) -> Value {
    let start = Instant::now();
    loop {
        let pod = api.get(&PODS, Some("default"), name).unwrap();
        if pod["status"]["phase"] == "Running" {
            return pod;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{name} never ran"
        );
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}
