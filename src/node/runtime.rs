//! The wasmtime engine of a node and its cache of compiled components.
//!
//! [`Runtime::load`] turns an image file into a [`PreparedComponent`]: looked
//! up by content digest in memory, else deserialized from
//! `<cache_dir>/<hex>.cwasm`, else compiled with Cranelift (once, however many
//! pods ask at the same time) and written back to the cache atomically.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::Engine;
use wasmtime::component::{Component, Linker};
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use super::disk::DiskRoom;
use super::limits::Budget;
use super::network::sockets;
use super::sandbox::{InstanceState, add_metered_filesystem};

mod artifact;
mod cache;
mod engine;
mod guest_threads;

use artifact::{compile, deserialize_artifact, read_image};
use cache::{ComponentCache, FileStamp};
use engine::{EpochTicker, new_engine};
use guest_threads::GuestThreads;
pub(super) use guest_threads::lower_priority;
#[cfg(test)]
pub(super) use guest_threads::policy_in_stat;

/// How a [`Runtime`] finds, bounds and caches components.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Where compiled artifacts (`<sha256 hex>.cwasm`) are kept.
    pub cache_dir: PathBuf,
    /// Longest a single Cranelift compilation may take.
    pub compile_timeout: Duration,
    /// Largest component file accepted, in bytes.
    pub max_component_bytes: u64,
    /// Compiled code kept in memory, beyond what running containers hold.
    pub max_memory_cache_bytes: u64,
    /// Compiled artifacts kept in `cache_dir`, beyond what running containers hold.
    pub max_disk_cache_bytes: u64,
    /// Linear memory all guests may hold together (the node's allocatable memory); `None`:
    /// only each container's own limit applies.
    pub guest_memory_bytes: Option<u64>,
    /// Files all guests may hold open together: what the process's own limit leaves after
    /// the descriptors the process keeps for itself.
    pub guest_open_files: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            cache_dir: PathBuf::from("./cache"),
            compile_timeout: Duration::from_secs(60),
            max_component_bytes: 64 * 1024 * 1024,
            max_memory_cache_bytes: 512 * 1024 * 1024,
            max_disk_cache_bytes: 2 * 1024 * 1024 * 1024,
            guest_memory_bytes: None,
            guest_open_files: usize::MAX,
        }
    }
}

/// What every guest of the node draws from together.
#[derive(Debug)]
pub struct NodeBudgets {
    /// The node's memory for pods (its allocatable memory).
    pub memory: Option<Arc<Budget>>,
    /// Files all pods may hold open together.
    pub files: Arc<Budget>,
    /// Room on the data dir's disk above the store's reserve; the node's disk monitor sets it.
    pub disk: Arc<DiskRoom>,
}

/// Why a component could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("image {path} not found")]
    ImageNotFound {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("image {path} could not be read")]
    ImageUnreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("image is {size} bytes, more than the limit of {limit}")]
    TooLarge { size: u64, limit: u64 },
    #[error("compiling {digest} took longer than {timeout:?}")]
    CompileTimeout { digest: String, timeout: Duration },
    #[error("{digest} is not a valid WebAssembly component: {message}")]
    CompileFailed { digest: String, message: String },
    #[error("{digest} exports neither wasi:cli/run nor wasi:http/incoming-handler: {message}")]
    NotACommand { digest: String, message: String },
    #[error("{digest} imports something the node does not provide: {message}")]
    Unlinkable { digest: String, message: String },
    #[error("wasmtime engine: {0}")]
    Engine(String),
}

/// Where [`Runtime::load`] found the component.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadSource {
    /// Compiled from the image just now.
    Compiled,
    /// Deserialized from the on-disk artifact cache.
    Cache,
    /// Already prepared in this runtime.
    Memory,
}

/// The result of [`Runtime::load`].
#[derive(Clone)]
pub struct Loaded {
    pub component: Arc<PreparedComponent>,
    /// `sha256:<hex>` of the image bytes.
    pub digest: String,
    pub source: LoadSource,
    pub duration: Duration,
}

/// A compiled component, linked against WASI p2 (and `wasi:http`) and ready to
/// instantiate (export lookups done once).
pub struct PreparedComponent {
    digest: String,
    component: Component,
    entry: Entry,
}

/// How a container's component is run: the world it exports.
pub enum Entry {
    /// `wasi:cli/run`: a process-like command, run once per container start.
    Command(CommandPre<InstanceState>),
    /// `wasi:http/incoming-handler`: served by the node, an instance per request.
    Http(ProxyPre<InstanceState>),
}

impl PreparedComponent {
    /// `sha256:<hex>` of the image bytes.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    pub fn component(&self) -> &Component {
        &self.component
    }

    pub(crate) fn entry(&self) -> &Entry {
        &self.entry
    }

    /// Whether the node serves this component over HTTP (it exports
    /// `wasi:http/incoming-handler`).
    pub fn is_http(&self) -> bool {
        matches!(self.entry, Entry::Http(_))
    }
}

/// A node's wasmtime engine, WASI linker and component cache. Cheap to
/// clone; the epoch ticker stops when the last clone is dropped.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    linker: Linker<InstanceState>,
    config: RuntimeConfig,
    budgets: NodeBudgets,
    /// Prepared components, and the digest of each image file version read: a pod of an
    /// unchanged file is started without reading and hashing it again.
    cache: ComponentCache,
    guests: GuestThreads,
    _ticker: EpochTicker,
}

impl Runtime {
    /// A runtime with a Cranelift engine (component model, async, epoch
    /// interruption; the pooling allocator where the address space allows).
    ///
    /// # Errors
    /// [`Error::Engine`] if wasmtime rejects the configuration or the cache
    /// directory cannot be created.
    pub fn new(config: RuntimeConfig) -> Result<Runtime, Error> {
        // Artifacts are native code `deserialize` trusts: nobody else may write there.
        super::disk::create_private_dir(&config.cache_dir)
            .map_err(|e| Error::Engine(format!("cache dir {}: {e}", config.cache_dir.display())))?;
        let engine = new_engine()?;
        let mut linker = Linker::new(&engine);
        // This links `wasi:cli/exit@0.2.12`'s `exit-with-code` too, so a guest ends with an exact
        // status (`exit 3`), not only success or failure.
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| Error::Engine(format!("{e:#}")))?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(|e| Error::Engine(format!("{e:#}")))?;
        add_metered_filesystem(&mut linker).map_err(|e| Error::Engine(format!("{e:#}")))?;
        sockets::add_to_linker(&mut linker).map_err(|e| Error::Engine(format!("{e:#}")))?;
        let ticker = EpochTicker::start(engine.clone())?;
        let config_max_memory = config.max_memory_cache_bytes;
        let budgets = NodeBudgets {
            memory: config.guest_memory_bytes.map(Budget::new),
            files: Budget::new(config.guest_open_files as u64),
            disk: DiskRoom::new(),
        };
        Ok(Runtime {
            inner: Arc::new(Inner {
                engine,
                linker,
                config,
                budgets,
                cache: ComponentCache::new(config_max_memory),
                guests: GuestThreads::start()?,
                _ticker: ticker,
            }),
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    pub fn budgets(&self) -> &NodeBudgets {
        &self.inner.budgets
    }

    /// Ends every guest still running, for good (see [`guest_threads`]).
    pub fn stop_guests(&self) {
        self.inner.guests.stop();
    }

    /// Runs a guest's instance on the guest threads (see [`guest_threads`]).
    pub(crate) fn spawn_guest<F>(&self, instance: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.inner.guests.spawn(instance)
    }

    /// Loads the component at `image`, compiling it only if neither memory
    /// nor the disk cache has it.
    ///
    /// # Errors
    /// A missing or oversized image, a compile failure or timeout, or a
    /// component that is not a `wasi:cli` command.
    pub async fn load(&self, image: &Path) -> Result<Loaded, Error> {
        let started = Instant::now();
        if let Some(loaded) = self.load_unchanged(image, started).await {
            return Ok(loaded);
        }
        let limit = self.inner.config.max_component_bytes;
        let stamp = tokio::fs::metadata(image)
            .await
            .ok()
            .map(|m| FileStamp::of(&m));
        let path = image.to_path_buf();
        let (bytes, hex) = tokio::task::spawn_blocking(move || read_image(&path, limit))
            .await
            .map_err(|e| Error::Engine(format!("reading image: {e}")))??;
        let digest = format!("sha256:{hex}");
        if let Some(stamp) = stamp {
            self.inner.cache.remember_digest(stamp, &digest);
        }
        // The preparation is its own task: when the pod that asked is deleted meanwhile, it
        // still fills the cell and the next pod of the image waits for it. Dropped with the
        // pod, it would leave its compile running (Cranelift cannot be interrupted) while
        // the next pod started another, a core busy per abandoned pod.
        let runtime = self.clone();
        let key = digest.clone();
        let (component, source) =
            tokio::spawn(async move { runtime.prepare_once(&key, &hex, bytes).await })
                .await
                .map_err(|e| Error::Engine(format!("preparing the component: {e}")))??;
        Ok(Loaded {
            component,
            digest,
            source,
            duration: started.elapsed(),
        })
    }

    /// The prepared component of `digest` from memory, or prepared once however many ask.
    async fn prepare_once(
        &self,
        digest: &str,
        hex: &str,
        bytes: Vec<u8>,
    ) -> Result<(Arc<PreparedComponent>, LoadSource), Error> {
        let cell = self.inner.cache.cell(digest);
        let mut source = LoadSource::Memory;
        let component = cell
            .get_or_try_init(|| async {
                let (component, found) = self.prepare(digest, hex, bytes).await?;
                source = found;
                Ok::<_, Error>(Arc::new(component))
            })
            .await?;
        if source != LoadSource::Memory {
            let code = component.component().image_range();
            let bytes = (code.end as usize).saturating_sub(code.start as usize) as u64;
            self.inner.cache.prepared(digest, bytes);
        }
        Ok((Arc::clone(component), source))
    }

    /// The component of an image file unchanged since it was last loaded, from memory.
    async fn load_unchanged(&self, image: &Path, started: Instant) -> Option<Loaded> {
        let stamp = FileStamp::of(&tokio::fs::metadata(image).await.ok()?);
        let digest = self.inner.cache.digest_of(&stamp)?;
        let component = self.inner.cache.ready(&digest)?;
        Some(Loaded {
            component,
            digest,
            source: LoadSource::Memory,
            duration: started.elapsed(),
        })
    }

    /// Components in memory and the bytes of their code.
    pub fn cached_components(&self) -> (usize, u64) {
        self.inner.cache.size()
    }

    async fn prepare(
        &self,
        digest: &str,
        hex: &str,
        bytes: Vec<u8>,
    ) -> Result<(PreparedComponent, LoadSource), Error> {
        let artifact = self.inner.config.cache_dir.join(format!("{hex}.cwasm"));
        if let Some(component) = self.deserialize(&artifact).await {
            let _ = tokio::task::spawn_blocking(move || cache::touch(&artifact)).await;
            return Ok((self.link(digest, component)?, LoadSource::Cache));
        }
        let engine = self.inner.engine.clone();
        let owned_digest = digest.to_owned();
        let (dir, max_bytes) = (
            self.inner.config.cache_dir.clone(),
            self.inner.config.max_disk_cache_bytes,
        );
        let mut keep = self.inner.cache.in_use();
        keep.insert(hex.to_string());
        let compile = tokio::task::spawn_blocking(move || {
            let compiled = compile(&engine, &owned_digest, &bytes, &artifact);
            cache::trim_dir(&dir, max_bytes, &keep);
            compiled
        });
        let timeout = self.inner.config.compile_timeout;
        let component = match tokio::time::timeout(timeout, compile).await {
            Ok(joined) => joined.map_err(|e| Error::Engine(format!("compiler task: {e}")))??,
            // Cranelift cannot be interrupted; the blocking thread finishes
            // on its own and its result is dropped.
            Err(_) => {
                return Err(Error::CompileTimeout {
                    digest: digest.to_owned(),
                    timeout,
                });
            }
        };
        Ok((self.link(digest, component)?, LoadSource::Compiled))
    }

    /// The cached artifact, or `None` (after removing it) if it is missing,
    /// corrupt or built by an incompatible engine.
    async fn deserialize(&self, artifact: &Path) -> Option<Component> {
        if !tokio::fs::try_exists(artifact).await.unwrap_or(false) {
            return None;
        }
        let loaded = deserialize_artifact(&self.inner.engine, artifact);
        match loaded {
            Ok(component) => Some(component),
            Err(error) => {
                tracing::warn!(artifact = %artifact.display(), error = %format!("{error:#}"),
                    "discarding unusable compiled component");
                let _ = tokio::fs::remove_file(artifact).await;
                None
            }
        }
    }

    fn link(&self, digest: &str, component: Component) -> Result<PreparedComponent, Error> {
        let instance =
            self.inner
                .linker
                .instantiate_pre(&component)
                .map_err(|e| Error::Unlinkable {
                    digest: digest.to_owned(),
                    message: format!("{e:#}"),
                })?;
        let entry = match CommandPre::new(instance.clone()) {
            Ok(command) => Entry::Command(command),
            Err(not_a_command) => match ProxyPre::new(instance) {
                Ok(proxy) => Entry::Http(proxy),
                Err(not_http) => {
                    return Err(Error::NotACommand {
                        digest: digest.to_owned(),
                        message: format!("{not_a_command:#}; {not_http:#}"),
                    });
                }
            },
        };
        Ok(PreparedComponent {
            digest: digest.to_owned(),
            component,
            entry,
        })
    }
}

#[cfg(test)]
mod tests;
