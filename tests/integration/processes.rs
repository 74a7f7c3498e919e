//! Real `wasmkube` processes, for tests that kill, freeze or restart them. Shared with the
//! benches, whose support module includes this file.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use wasmkube::client::Client;
use wasmkube::testing::eventually;

/// A child process, killed when dropped.
pub struct Process {
    child: Child,
}

impl Process {
    /// Starts `wasmkube ARGS`, its output going to `wasmkube.log` in `data_dir`.
    pub fn start(args: &[&str], data_dir: &Path) -> Process {
        std::fs::create_dir_all(data_dir).expect("create the data dir");
        let output =
            std::fs::File::create(data_dir.join("wasmkube.log")).expect("create the process log");
        let child = Command::new(env!("CARGO_BIN_EXE_wasmkube"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(output)
            .spawn()
            .expect("start wasmkube");
        Process { child }
    }

    /// The process id (the cluster bench reads its memory from `/proc`).
    #[allow(dead_code)] // Used by the benches, which include this file.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    pub fn kill_9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGSTOP: the process is frozen, its connections stay open but silent.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} failed");
    }
}

impl Drop for Process {
    /// Kills the process (it may be gone already), thawing it first so it is never left
    /// stopped.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        self.kill_9();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `wasmkube COMMAND --data-dir DIR --api-addr 127.0.0.1:PORT` (`up` or `server`) and
/// waits until its API answers; returns the process and an admin client. The node of `up`
/// serves its endpoint on a free port, as DNS does (tests run side by side).
pub async fn start_control_plane(command: &str, data_dir: &Path, port: u16) -> (Process, Client) {
    start_control_plane_with(command, data_dir, port, &[]).await
}

/// As [`start_control_plane`], with `extra` arguments.
pub async fn start_control_plane_with(
    command: &str,
    data_dir: &Path,
    port: u16,
    extra: &[&str],
) -> (Process, Client) {
    let api_addr = format!("127.0.0.1:{port}");
    let mut args = vec![command, "--data-dir", data_dir.to_str().unwrap()];
    args.extend(extra);
    // Cluster DNS on any free port: processes of tests side by side never share one.
    args.extend(["--api-addr", &api_addr, "--dns-addr", "127.0.0.1:0"]);
    if command == "up" {
        args.extend(["--kubelet-port", "0"]);
    }
    let process = Process::start(&args, data_dir);
    let kubeconfig = data_dir.join("kubeconfig");
    let client = eventually(Duration::from_secs(30), "the API to answer", || async {
        let client = Client::from_kubeconfig(&kubeconfig).ok()?;
        client.get("/api/v1/namespaces/default").await.ok()?;
        Some(client)
    })
    .await;
    (process, client)
}

/// Runs `wasmkube agent` named `name` with its data under `data_dir`, its endpoint on a free
/// port.
pub fn start_agent(server: &str, token: &str, name: &str, data_dir: &Path) -> Process {
    start_agent_at(server, token, name, "127.0.0.1", data_dir)
}

/// As [`start_agent`], the node at `address` (its endpoint and node ports listen there).
pub fn start_agent_at(
    server: &str,
    token: &str,
    name: &str,
    address: &str,
    data_dir: &Path,
) -> Process {
    Process::start(
        &[
            "agent",
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--server",
            server,
            "--token",
            token,
            "--name",
            name,
            "--kubelet-port",
            "0",
            "--address",
            address,
        ],
        data_dir,
    )
}

/// Where an agent keeps a pod's emptyDir volume.
pub fn volume_path(agent_dir: &Path, pod_uid: &str, volume: &str) -> PathBuf {
    agent_dir
        .join("pods")
        .join(pod_uid)
        .join("volumes")
        .join(volume)
}
