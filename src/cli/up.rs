//! `up`: runs a whole single-node cluster in this process until Ctrl-C or SIGTERM; with
//! `--demo` it applies the two-container demo pod and the web Deployment behind a
//! LoadBalancer Service, and shows them working.

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use k8s_openapi::api::core::v1::Pod;
use tokio::time::Instant;

use super::columns::Columns;
use super::get::items_of;
use super::logs::{LogRequest, print_logs};
use super::node_args::NodeArgs;
use super::server::ControlPlaneArgs;
use super::table::Table;
use super::{GlobalArgs, Session, apply, demo, demo_web, files, print, report};
use crate::api::kinds::PODS;
use crate::api::printers::now;
use crate::api::printers::pod::summarize;
use crate::client::{Client, ListParams};
use crate::cluster::{Cluster, ClusterConfig};

/// How long the demo pod may take to run (the first compile of a component included).
const DEMO_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the demo lets the writer write before showing the reader's log.
const DEMO_LOG_DELAY: Duration = Duration::from_secs(3);

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Where the API server listens
    #[arg(long, default_value = "127.0.0.1:6443", value_name = "ADDR")]
    pub api_addr: SocketAddr,
    /// The name of the embedded node [default: the host name]
    #[arg(long, value_name = "NAME")]
    pub node_name: Option<String>,
    /// The embedded node's address, where NodePort Services listen (a `server` has no node:
    /// its agents listen on their `--address`)
    #[arg(long, default_value = "127.0.0.1", value_name = "IP")]
    pub node_ip: std::net::IpAddr,
    /// Apply the demo (a two-container pod, and three HTTP replicas behind a LoadBalancer
    /// Service) and show it working
    #[arg(long)]
    pub demo: bool,
    #[command(flatten)]
    pub control_plane: ControlPlaneArgs,
    #[command(flatten)]
    pub node: NodeArgs,
}

pub async fn run(global: &GlobalArgs, args: UpArgs) -> anyhow::Result<()> {
    let mut config = ClusterConfig {
        api_addr: args.api_addr,
        ..ClusterConfig::default()
    };
    if let Some(data_dir) = &global.data_dir {
        config.data_dir = data_dir.clone();
    }
    if let Some(node_name) = args.node_name {
        config.node_name = node_name;
    }
    args.control_plane.configure(&mut config);
    config.proxy.node_ip = args.node_ip;
    config.node_limits = args.node.limits();
    config.kubelet_port = args.node.kubelet_port;
    let started = Instant::now();
    let cluster = Cluster::start(config)
        .await
        .context("cannot start the cluster")?;
    print(&banner(&cluster, started.elapsed()))?;
    if args.demo {
        let client = cluster.client()?;
        if let Err(error) = run_demo(&client, cluster.data_dir()).await {
            report(&error);
            eprintln!(
                "The demo did not finish; the cluster keeps running. Try `wasmkube describe pod demo` or `wasmkube describe service web`."
            );
        }
    }
    let signal = shutdown_signal().await;
    eprintln!("\n{signal} received, shutting down");
    cluster.shutdown().await;
    Ok(())
}

fn banner(cluster: &Cluster, took: Duration) -> String {
    let kubeconfig = cluster.kubeconfig_path();
    let default_kubeconfig = crate::cluster::default_data_dir().join("kubeconfig");
    let cli = if kubeconfig == default_kubeconfig {
        "wasmkube".to_string()
    } else {
        format!("wasmkube --kubeconfig {}", kubeconfig.display())
    };
    format!(
        "wasmkube is up ({} ms)\n  API server:  {}\n  kubeconfig:  {}\n\nTry:  {cli} get nodes\n      KUBECONFIG={} kubectl get pods\nPress Ctrl-C to stop.\n\n",
        took.as_millis(),
        cluster.api_url(),
        kubeconfig.display(),
        kubeconfig.display(),
    )
}

/// Applies the demo pod, waits for `2/2 Running`, prints the pods and the reader's log; then
/// the web part (see [`demo_web`]).
async fn run_demo(client: &Client, data_dir: &Path) -> anyhow::Result<()> {
    let session = Session::new(client.clone(), None);
    let demo_dir = demo::install(data_dir)?;
    let manifests = files::read_file(&demo_dir.join(demo::POD_MANIFEST))?;
    apply::apply_manifests(&session, manifests, &Default::default()).await?;
    wait_until_running(client, "default", "demo", DEMO_TIMEOUT).await?;
    let list = client
        .list(&PODS.path(Some("default"), None), &ListParams::default())
        .await?;
    let columns = Columns {
        kind: &PODS,
        wide: false,
        namespace: false,
        labels: false,
    };
    let now = now();
    let mut rows = vec![columns.headers()];
    rows.extend(
        items_of(list, &PODS)
            .iter()
            .map(|pod| columns.row(pod, now)),
    );
    print(&format!(
        "\n$ wasmkube get pods\n{}",
        Table::new().render(&rows)
    ))?;
    tokio::time::sleep(DEMO_LOG_DELAY).await;
    print("\n$ wasmkube logs demo -c reader\n")?;
    let request = LogRequest {
        container: Some("reader".into()),
        ..LogRequest::default()
    };
    print_logs(client, "default", "demo", &request).await?;
    demo_web::show(&session, client, &demo_dir, DEMO_TIMEOUT).await?;
    print("\n")
}

/// Polls the pod until all its containers are ready and it is Running, showing progress.
///
/// # Errors
/// When the pod fails, or is not running after `timeout`.
pub async fn wait_until_running(
    client: &Client,
    namespace: &str,
    name: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let interactive = std::io::stderr().is_terminal();
    let mut last_shown = String::new();
    loop {
        let pod: Pod =
            serde_json::from_value(client.get(&PODS.path(Some(namespace), Some(name))).await?)?;
        let summary = summarize(&pod);
        let progress = format!("{} {}", summary.ready_column(), summary.status);
        if summary.ready == summary.total && summary.status == "Running" {
            if interactive {
                eprint!("\r\x1b[2K");
            }
            eprintln!(
                "pod/{name} is {progress} after {:.1}s",
                started.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        if matches!(summary.status.as_str(), "Failed" | "Succeeded" | "Error") {
            bail!("pod/{name} ended {progress} before it was ready");
        }
        if started.elapsed() > timeout {
            bail!(
                "timed out after {}s waiting for pod/{name} to be running (now {progress})",
                timeout.as_secs()
            );
        }
        if interactive {
            eprint!(
                "\r\x1b[2Kwaiting for pod/{name}: {progress} ({:.0}s)",
                started.elapsed().as_secs_f64()
            );
        } else if progress != last_shown {
            eprintln!("waiting for pod/{name}: {progress}");
        }
        last_shown = progress;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits for Ctrl-C or SIGTERM and names the one that came.
pub(crate) async fn shutdown_signal() -> &'static str {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => tokio::select! {
                () = interrupt => "interrupt",
                _ = terminate.recv() => "SIGTERM",
            },
            Err(_) => {
                interrupt.await;
                "interrupt"
            }
        }
    }
    #[cfg(not(unix))]
    {
        interrupt.await;
        "interrupt"
    }
}
