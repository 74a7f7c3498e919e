//! Macro benchmarks of issue #2's budgets; prints a table to compare run to run.
//!
//! `cargo bench --bench cluster` (release build). Budgets: `up` to API ready < 300 ms; pod
//! create → Running with a cached component p50 < 20 ms, p99 < 100 ms over 100 pods; loading a
//! cached compiled component < 5 ms; idle `up` RSS < 64 MiB.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use wasmkube::api::kinds::PODS;
use wasmkube::node::runtime::{Runtime, RuntimeConfig};
use wasmkube::testing::Cluster;

mod support;
use support::processes::{Process, free_port};
use support::{exerciser, millis, percentile, row};

/// Whether `/readyz` answers 200 over TLS, trusting the CA the cluster wrote under `data_dir`.
fn healthy(data_dir: &Path, port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(ca_pem) = std::fs::read_to_string(data_dir.join("tls/ca.crt")) else {
        return false;
    };
    let Ok(config) = wasmkube::tls::client_config(&ca_pem) else {
        return false;
    };
    let name = rustls::pki_types::ServerName::from(std::net::IpAddr::from([127, 0, 0, 1]));
    let Ok(connection) = rustls::ClientConnection::new(std::sync::Arc::new(config), name) else {
        return false;
    };
    let Ok(socket) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let mut stream = rustls::StreamOwned::new(connection, socket);
    let _ = stream.write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.starts_with("HTTP/1.1 200")
}

/// Time from spawning `wasmkube up` to `/readyz` answering, and its idle RSS.
fn measure_up() -> (Duration, u64) {
    let mut times = Vec::new();
    let mut rss = 0;
    for _ in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let start = Instant::now();
        let data_dir = dir.path().to_str().unwrap();
        let address = format!("127.0.0.1:{port}");
        let mut up = Process::start(
            &[
                "up",
                "--data-dir",
                data_dir,
                "--api-addr",
                &address,
                "--kubelet-port",
                "0",
                "--dns-addr",
                "127.0.0.1:0",
            ],
            dir.path(),
        );
        while !healthy(dir.path(), port) {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "up never became ready"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        times.push(start.elapsed());
        std::thread::sleep(Duration::from_secs(2));
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", up.id())).unwrap_or_default();
        rss = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .unwrap_or(0);
        up.kill_9();
    }
    times.sort();
    (times[times.len() / 2], rss)
}

async fn measure_component_loads() -> (Duration, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let config = || RuntimeConfig {
        cache_dir: dir.path().to_path_buf(),
        ..RuntimeConfig::default()
    };
    let first = Runtime::new(config())
        .unwrap()
        .load(Path::new(&exerciser()))
        .await
        .unwrap()
        .duration;
    let mut cached = Vec::new();
    for _ in 0..9 {
        let runtime = Runtime::new(config()).unwrap();
        cached.push(
            runtime
                .load(Path::new(&exerciser()))
                .await
                .unwrap()
                .duration,
        );
    }
    cached.sort();
    (first, cached[cached.len() / 2])
}

async fn measure_pod_starts() -> Vec<Duration> {
    let cluster = Cluster::start().await.unwrap();
    let api = cluster.api().clone();
    let warm = json!({"metadata": {"name": "warm"}, "spec": {"restartPolicy": "Never",
        "containers": [{"name": "c", "image": exerciser(), "args": ["print", "warm"]}]}});
    api.create(&PODS, Some("default"), warm).unwrap();
    wait_for_phase(&api, "warm", &["Succeeded"]).await;
    let mut latencies = Vec::new();
    for i in 0..100 {
        let name = format!("bench-{i}");
        let pod = json!({"metadata": {"name": name}, "spec": {
            "containers": [{"name": "c", "image": exerciser(), "args": ["sleep", "600000"]}]}});
        let start = Instant::now();
        api.create(&PODS, Some("default"), pod).unwrap();
        wait_for_phase(&api, &name, &["Running"]).await;
        latencies.push(start.elapsed());
    }
    cluster.shutdown().await;
    latencies.sort();
    latencies
}

async fn wait_for_phase(api: &wasmkube::api::Api, name: &str, phases: &[&str]) {
    let start = Instant::now();
    loop {
        let pod = api.get(&PODS, Some("default"), name).unwrap();
        if phases.iter().any(|p| pod["status"]["phase"] == *p) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{name} never reached {phases:?}"
        );
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

/// A CPU-bound run (limited to `work_cpu` millicores, `None`: unlimited) alone, then beside a
/// guest spinning forever with `limits.cpu` of `spinner_cpu`. Run on one thread so both guests
/// compete for one core.
async fn measure_cpu_isolation(
    work_cpu: Option<u64>,
    spinner_cpu: Option<u64>,
) -> (Duration, Duration) {
    use wasmkube::node::logs::ContainerLog;
    use wasmkube::node::sandbox::ContainerRun;
    let dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: dir.path().to_path_buf(),
        ..RuntimeConfig::default()
    })
    .unwrap();
    let component = runtime
        .load(Path::new(&exerciser()))
        .await
        .unwrap()
        .component;
    let run = |args: &[&str], cpu: Option<u64>| ContainerRun {
        name: "c".into(),
        args: args.iter().map(|a| a.to_string()).collect(),
        env: vec![],
        mounts: vec![],
        memory_limit: None,
        cpu_limit_millicores: cpu,
        pod: wasmkube::node::limits::PodShare::new(1024),
        network: None,
        ports: vec![],
        log: ContainerLog::new(1 << 16),
    };
    let time_work = || async {
        let mut times = Vec::new();
        for _ in 0..3 {
            let start = Instant::now();
            runtime
                .run(
                    &component,
                    run(&["work", "200"], work_cpu),
                    Default::default(),
                )
                .await;
            times.push(start.elapsed());
        }
        times.sort();
        times[1]
    };
    let alone = time_work().await;
    let stop = tokio_util::sync::CancellationToken::new();
    let spinner = {
        let (runtime, component, stop) = (runtime.clone(), component.clone(), stop.clone());
        let spin = run(&["spin"], spinner_cpu);
        tokio::spawn(async move { runtime.run(&component, spin, stop).await })
    };
    let beside = time_work().await;
    stop.cancel();
    let _ = spinner.await;
    (alone, beside)
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (first_compile, cached_load) = runtime.block_on(measure_component_loads());
    let starts = runtime.block_on(measure_pod_starts());
    let one_core = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (work_alone, work_beside) = one_core.block_on(measure_cpu_isolation(None, Some(100)));
    let (unlimited_alone, unlimited_beside) = one_core.block_on(measure_cpu_isolation(None, None));
    let (half_core, _) = one_core.block_on(measure_cpu_isolation(Some(500), Some(1)));
    let (up_ready, idle_rss_kib) = measure_up();
    println!(
        "| {:<44} | {:>14} | {:<10} |",
        "measure", "median/value", "budget"
    );
    println!("|{:-<46}|{:-<16}|{:-<12}|", "", "", "");
    row(
        "up → API ready (median of 5)",
        format!("{:.1} ms", up_ready.as_secs_f64() * 1e3),
        "< 300 ms",
    );
    row(
        "idle up RSS",
        format!("{:.1} MiB", idle_rss_kib as f64 / 1024.0),
        "< 64 MiB",
    );
    row(
        "first compile of the exerciser",
        format!("{:.1} ms", first_compile.as_secs_f64() * 1e3),
        "reported",
    );
    row(
        "cached component load (median of 9)",
        format!("{:.2} ms", cached_load.as_secs_f64() * 1e3),
        "< 5 ms",
    );
    row(
        "pod create → Running p50 (100 pods)",
        millis(percentile(&starts, 0.5)),
        "< 20 ms",
    );
    row(
        "pod create → Running p99 (100 pods)",
        millis(percentile(&starts, 0.99)),
        "< 100 ms",
    );
    row(
        "work beside a 100m spinner / alone (1 core)",
        format!(
            "{:.2}x",
            work_beside.as_secs_f64() / work_alone.as_secs_f64()
        ),
        "< 2x",
    );
    row(
        "same beside an unlimited spinner (reference)",
        format!(
            "{:.2}x",
            unlimited_beside.as_secs_f64() / unlimited_alone.as_secs_f64()
        ),
        "—",
    );
    row(
        "work limited to 500m / unlimited",
        format!("{:.2}x", half_core.as_secs_f64() / work_alone.as_secs_f64()),
        "≈ 2x",
    );
}
