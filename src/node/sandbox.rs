//! Running one container: a WASI command instance in its own store (or, for an HTTP
//! component, an instance per request), with only the capabilities the pod declared — its
//! volumes and its pod's network — under memory and CPU limits.

use std::path::PathBuf;
use std::sync::Arc;
use std::task::Poll;

use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use wasmtime::component::{ResourceTable, ResourceTableError};
use wasmtime::{Store, Trap};
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::disk::GuestDisk;
use super::limits::{
    BusyClock, ContainerShare, CpuThrottle, GuestFiles, LimitExceeded, MemoryCap, MemoryLimiter,
    PodShare,
};
use super::logs::ContainerLog;
use super::network::PodNet;
use super::network::http::PodHttpHooks;
use super::network::sockets::{PodSockets, SocketsView};
use super::runtime::{Entry, PreparedComponent, Runtime};

mod filesystem;
mod http;

pub(crate) use filesystem::add_to_linker as add_metered_filesystem;

/// Exit code of a guest that trapped (as a process killed by SIGABRT).
pub const EXIT_CODE_TRAP: i32 = 134;
/// Exit code of a guest killed by the agent or for exceeding its memory
/// (as a process killed by SIGKILL).
pub const EXIT_CODE_KILLED: i32 = 137;
/// Exit code when the sandbox could not be set up (a mount, instantiation).
pub const EXIT_CODE_START_FAILED: i32 = 128;
/// Longest `Exit::message` kept.
const MAX_MESSAGE_BYTES: usize = 4096;
/// Resource-table entries per open file a guest may have besides its files (streams,
/// pollables, directory listings), and a floor for a guest with few files: handles cost the
/// host memory, so they are bounded too.
const HANDLES_PER_FILE: usize = 4;
const MIN_HANDLES: usize = 256;

/// Everything one container run gets; nothing else is visible to the guest.
pub struct ContainerRun {
    /// `argv[0]`.
    pub name: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub mounts: Vec<Mount>,
    /// Total linear memory, in bytes.
    pub memory_limit: Option<u64>,
    pub cpu_limit_millicores: Option<u64>,
    /// What the container shares with the other containers of its pod.
    pub pod: Arc<PodShare>,
    /// The pod's network; `None`: no sockets at all.
    pub network: Option<PodNet>,
    /// The `containerPort`s (TCP) an HTTP component is served on.
    pub ports: Vec<u16>,
    /// Receives stdout and stderr; closed when the run ends.
    pub log: Arc<ContainerLog>,
}

/// A host directory preopened in the guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    pub host_path: PathBuf,
    pub guest_path: String,
    pub read_only: bool,
}

/// How a container run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exit {
    pub code: i32,
    pub reason: ExitReason,
    /// Why, for anything but a plain exit (trap message, setup failure).
    pub message: Option<String>,
}

/// The Kubernetes `terminated.reason` of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExitReason {
    /// Exit code 0.
    Completed,
    /// Non-zero exit, trap, or a sandbox that could not start.
    Error,
    /// The memory limit was hit and the guest then failed.
    OomKilled,
    /// Cancelled by the agent.
    Killed,
}

impl ExitReason {
    /// The `terminated.reason` Kubernetes shows (a container the kubelet
    /// killed shows as `Error`, exit code 137).
    pub fn as_str(self) -> &'static str {
        match self {
            ExitReason::Completed => "Completed",
            ExitReason::Error | ExitReason::Killed => "Error",
            ExitReason::OomKilled => "OOMKilled",
        }
    }
}

impl Exit {
    fn code(code: i32) -> Exit {
        let reason = if code == 0 {
            ExitReason::Completed
        } else {
            ExitReason::Error
        };
        Exit {
            code,
            reason,
            message: None,
        }
    }

    fn killed() -> Exit {
        Exit {
            code: EXIT_CODE_KILLED,
            reason: ExitReason::Killed,
            message: None,
        }
    }

    /// A container that could not be set up (a mount, instantiation).
    pub fn start_failed(message: String) -> Exit {
        Exit {
            code: EXIT_CODE_START_FAILED,
            reason: ExitReason::Error,
            message: Some(truncate(message)),
        }
    }
}

/// The store data of one container instance (WASI context and limits).
pub struct InstanceState {
    wasi: WasiCtx,
    table: ResourceTable,
    memory: MemoryLimiter,
    cpu: CpuThrottle,
    files: GuestFiles,
    disk: GuestDisk,
    /// The guest's log, whose writing to disk it is charged for.
    log: Arc<ContainerLog>,
    network: Option<PodSockets>,
    http: WasiHttpCtx,
    hooks: PodHttpHooks,
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for InstanceState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

impl SocketsView for InstanceState {
    fn pod_sockets(&mut self) -> Option<&mut PodSockets> {
        self.network.as_mut()
    }

    fn guest_files(&mut self) -> &mut GuestFiles {
        &mut self.files
    }
}

impl Runtime {
    /// Runs `component` as one container until it exits or `cancel` fires.
    ///
    /// # Guarantees
    /// - Never fails: guest exits, traps, limit breaches and setup failures
    ///   all come back as an [`Exit`].
    /// - Returns promptly after `cancel` ([`ExitReason::Killed`]) even for a
    ///   guest that never calls the host: guests yield to tokio every few ms.
    /// - `run.log` is closed (partial lines flushed) before returning; use a
    ///   fresh log per run and keep the old one for `--previous`.
    /// - An HTTP component is served on `run.ports` until `cancel`; it ends earlier only when
    ///   it cannot be served (a port is taken).
    pub async fn run(
        &self,
        component: &PreparedComponent,
        run: ContainerRun,
        cancel: CancellationToken,
    ) -> Exit {
        let log = Arc::clone(&run.log);
        let share = ContainerShare::new(run.memory_limit, run.cpu_limit_millicores);
        let exit = match component.entry() {
            Entry::Command(command) => {
                let clock = BusyClock::new();
                let (this, command, meter) = (self.clone(), command.clone(), clock.clone());
                let metered = meter
                    .meter(async move { this.run_command(&command, &run, &share, &clock).await });
                self.run_guest(metered, &cancel).await
            }
            Entry::Http(proxy) => self.serve(proxy, run, Arc::new(share), cancel).await,
        };
        log.close();
        exit
    }

    /// Runs a command's instance: its first slice here, as a start of the container the pod
    /// worker sees at once (a guest that fails at start has ended before its pod is reported
    /// running, as the kubelet would first see it), the rest on the guest threads.
    async fn run_guest(
        &self,
        mut instance: impl Future<Output = Exit> + Send + Unpin + 'static,
        cancel: &CancellationToken,
    ) -> Exit {
        if cancel.is_cancelled() {
            return Exit::killed();
        }
        if let Poll::Ready(exit) = futures::poll!(&mut instance) {
            return exit;
        }
        // Moving the future is sound: its next poll, on the guest threads, registers their waker.
        let mut instance = AbortOnDropHandle::new(self.spawn_guest(instance));
        tokio::select! {
            biased;
            () = cancel.cancelled() => {
                // The guest is gone (its memory and sockets released) before a restart.
                instance.abort();
                let _ = (&mut instance).await;
                Exit::killed()
            }
            exit = &mut instance => exit.unwrap_or_else(|error| match error.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(_) => Exit::killed(),
            }),
        }
    }

    async fn run_command(
        &self,
        command: &wasmtime_wasi::p2::bindings::CommandPre<InstanceState>,
        run: &ContainerRun,
        share: &ContainerShare,
        clock: &Arc<BusyClock>,
    ) -> Exit {
        let mut store = match self.new_store(run, share, clock) {
            Ok(store) => store,
            Err(message) => return Exit::start_failed(message),
        };
        let command = match command.instantiate_async(&mut store).await {
            Ok(command) => command,
            Err(error) => {
                let exit = Exit::start_failed(format!("instantiation failed: {error:#}"));
                return oom_if_limited(exit, store.data());
            }
        };
        let result = command.wasi_cli_run().call_run(&mut store).await;
        let exit = match result {
            Ok(Ok(())) => Exit::code(0),
            Ok(Err(())) => Exit::code(1),
            Err(error) => exit_of_error(&error, store.data().table.max_capacity()),
        };
        if exit.code != 0 {
            return oom_if_limited(exit, store.data());
        }
        exit
    }

    /// A store for one instance of the container `run` describes, drawing on `share` with the
    /// container's other instances.
    fn new_store(
        &self,
        run: &ContainerRun,
        share: &ContainerShare,
        clock: &Arc<BusyClock>,
    ) -> Result<Store<InstanceState>, String> {
        let mut wasi = WasiCtxBuilder::new();
        wasi.arg(&run.name)
            .args(&run.args)
            .envs(&run.env)
            .stdout(run.log.stdout())
            .stderr(run.log.stderr());
        allow_pod_network(&mut wasi, run.network.as_ref());
        for mount in &run.mounts {
            let perms = if mount.read_only {
                FsPerms::ReadOnly
            } else {
                FsPerms::ReadWrite
            };
            wasi.preopened_dir(&mount.host_path, &mount.guest_path, perms)
                .map_err(|e| {
                    format!(
                        "mount {} at {}: {e:#}",
                        mount.host_path.display(),
                        mount.guest_path
                    )
                })?;
        }
        let mut table = ResourceTable::new();
        let files = usize::try_from(run.pod.files.limit()).unwrap_or(usize::MAX);
        table.set_max_capacity(files.saturating_mul(HANDLES_PER_FILE).max(MIN_HANDLES));
        let budgets = self.budgets();
        let state = InstanceState {
            wasi: wasi.build(),
            table,
            memory: MemoryLimiter::new(share.memory.clone(), budgets.memory.clone()),
            cpu: CpuThrottle::new(share.cpu.clone(), Arc::clone(clock)),
            log: Arc::clone(&run.log),
            files: GuestFiles::new(run.pod.files.clone(), budgets.files.clone()),
            disk: GuestDisk {
                room: budgets.disk.clone(),
                pod: run.pod.writes.clone(),
            },
            network: run.network.clone().map(PodSockets::new),
            http: WasiHttpCtx::new(),
            hooks: PodHttpHooks::new(run.network.clone()),
        };
        let mut store = Store::new(self.engine(), state);
        store.limiter(|state| &mut state.memory);
        store.set_epoch_deadline(store.data().cpu.slice_ticks());
        store.epoch_deadline_callback(|mut store| {
            let state = store.data_mut();
            let host_time = state.log.take_host_time();
            Ok(state.cpu.on_deadline(host_time))
        });
        Ok(store)
    }
}

/// Sockets and name lookups through the pod network, when there is one; without it the default
/// address check denies every address and TCP, UDP and lookups stay off.
fn allow_pod_network(wasi: &mut WasiCtxBuilder, network: Option<&PodNet>) {
    let Some(network) = network.cloned() else {
        wasi.allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        return;
    };
    wasi.allow_tcp(true)
        .allow_udp(true)
        .allow_ip_name_lookup(true)
        .socket_addr_check(move |address, usage| {
            let permitted = network.permits(address, usage);
            Box::pin(async move { permitted })
        });
}

/// An exit from a guest error: `exit(N)` from WASI, a limit the guest ran into, or a trap.
fn exit_of_error(error: &wasmtime::Error, max_handles: usize) -> Exit {
    if let Some(I32Exit(code)) = error.downcast_ref::<I32Exit>() {
        return Exit::code(*code);
    }
    let table_full = matches!(
        error.downcast_ref::<ResourceTableError>(),
        Some(ResourceTableError::Full)
    );
    let message = if let Some(limit) = error.downcast_ref::<LimitExceeded>() {
        limit.to_string()
    } else if table_full {
        format!(
            "too many open handles: the limit of {max_handles} files, streams and pollables was reached"
        )
    } else if let Some(trap) = error.downcast_ref::<Trap>() {
        format!("wasm trap: {trap}")
    } else {
        format!("{error:#}")
    };
    Exit {
        code: EXIT_CODE_TRAP,
        reason: ExitReason::Error,
        message: Some(truncate(message)),
    }
}

/// A failed run whose memory growth was denied is reported as OOMKilled, saying which limit.
fn oom_if_limited(exit: Exit, state: &InstanceState) -> Exit {
    let memory = &state.memory;
    let cap = match memory.limit_hit() {
        None => return exit,
        Some(MemoryCap::Container) => format!(
            "the container's memory limit of {} bytes",
            memory.limit_bytes().unwrap_or_default()
        ),
        Some(MemoryCap::Node) => format!(
            "the node's memory for pods ({} bytes allocatable)",
            memory.node_limit_bytes().unwrap_or_default()
        ),
    };
    let detail = exit.message.map(|m| format!(" ({m})")).unwrap_or_default();
    Exit {
        code: EXIT_CODE_KILLED,
        reason: ExitReason::OomKilled,
        message: Some(truncate(format!(
            "memory limit reached at {} bytes: growing past {cap} was refused{detail}",
            memory.used_bytes()
        ))),
    }
}

fn truncate(mut message: String) -> String {
    if message.len() > MAX_MESSAGE_BYTES {
        let mut cut = MAX_MESSAGE_BYTES;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push('…');
    }
    message
}

#[cfg(test)]
pub(crate) mod tests;

#[cfg(test)]
mod budget_tests;
