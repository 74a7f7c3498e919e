//! CPU limits that hold through host calls: how much CPU the whole process burns per second
//! while one guest with `limits.cpu` floods its stdout (bare newlines: the most host work per
//! guest instruction; 100-byte lines), its log written to rotated files as on a node.
//!
//! `cargo bench --bench guest_cpu`. Budget: a 10m guest costs the process about 10m (plus
//! the epoch ticker's and the log writer's own overhead), not a core.

use std::path::Path;
use std::time::{Duration, Instant};

use rustix::time::{ClockId, clock_gettime};
use tokio_util::sync::CancellationToken;
use wasmkube::node::limits::PodShare;
use wasmkube::node::logs::{ContainerLog, LogFiles, LogWriter, Rotation};
use wasmkube::node::runtime::{Runtime, RuntimeConfig};
use wasmkube::node::sandbox::ContainerRun;

mod support;
use support::{exerciser, row};

/// How long each guest floods while the process's CPU is measured.
const MEASURED: Duration = Duration::from_secs(5);

/// CPU time the process has used.
fn process_cpu() -> Duration {
    let time = clock_gettime(ClockId::ProcessCPUTime);
    Duration::new(time.tv_sec as u64, time.tv_nsec as u32)
}

/// Millicores the process used per second of wall time while `run` ran for [`MEASURED`].
async fn millicores_while(runtime: &Runtime, steps: &[&str], cpu: Option<u64>) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let component = runtime
        .load(Path::new(&exerciser()))
        .await
        .unwrap()
        .component;
    let files = LogFiles {
        dir: dir.path().join("logs"),
        restart: 0,
        rotation: Rotation {
            max_size: 10 << 20,
            max_files: 5,
        },
        room: None,
    };
    let writer = LogWriter::start().unwrap();
    let run = ContainerRun {
        name: "flood".into(),
        args: steps.iter().map(|s| s.to_string()).collect(),
        env: vec![],
        mounts: vec![],
        memory_limit: None,
        cpu_limit_millicores: cpu,
        pod: PodShare::new(1024),
        network: None,
        ports: vec![],
        log: ContainerLog::with_files(1 << 20, Some((files, writer))),
    };
    let stop = CancellationToken::new();
    let guest = {
        let (runtime, stop) = (runtime.clone(), stop.clone());
        tokio::spawn(async move { runtime.run(&component, run, stop).await })
    };
    // Past the start-up burst (instantiation, the first accounting window).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (cpu_before, wall_before) = (process_cpu(), Instant::now());
    tokio::time::sleep(MEASURED).await;
    let used = process_cpu() - cpu_before;
    let wall = wall_before.elapsed();
    stop.cancel();
    let _ = guest.await;
    used.as_secs_f64() / wall.as_secs_f64() * 1000.0
}

fn main() {
    let tokio = tokio::runtime::Runtime::new().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: cache.path().to_path_buf(),
        ..RuntimeConfig::default()
    })
    .unwrap();
    let idle = tokio.block_on(async {
        let (cpu, wall) = (process_cpu(), Instant::now());
        tokio::time::sleep(MEASURED).await;
        (process_cpu() - cpu).as_secs_f64() / wall.elapsed().as_secs_f64() * 1000.0
    });
    let cases = [
        (
            "10m guest flooding bare newlines",
            ["flood-stdout", "0", "1"],
            Some(10),
        ),
        (
            "10m guest flooding 100-byte lines",
            ["flood-stdout", "0", "100"],
            Some(10),
        ),
        (
            "100m guest flooding bare newlines",
            ["flood-stdout", "0", "1"],
            Some(100),
        ),
        (
            "unlimited guest flooding (reference)",
            ["flood-stdout", "0", "100"],
            None,
        ),
    ];
    println!("| {:<44} | {:>14} | {:<10} |", "measure", "value", "budget");
    println!("|{:-<46}|{:-<16}|{:-<12}|", "", "", "");
    row(
        "process CPU, idle runtime",
        format!("{idle:.0}m"),
        "reported",
    );
    for (name, steps, cpu) in cases {
        let used = tokio.block_on(millicores_while(&runtime, &steps, cpu));
        let budget = cpu.map_or("—".to_string(), |m| format!("≈ {m}m + idle"));
        row(
            &format!("process CPU, {name}"),
            format!("{used:.0}m"),
            &budget,
        );
    }
}
