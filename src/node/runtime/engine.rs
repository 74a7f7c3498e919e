//! The node's wasmtime engine: Cranelift, the component model, epoch interruption and the
//! pooling allocator; and the thread that advances its epoch.

use std::sync::mpsc;
use std::thread::JoinHandle;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Strategy};

use super::Error;
use crate::node::limits::EPOCH_TICK;

pub(super) fn new_engine() -> Result<Engine, Error> {
    let mut config = Config::new();
    config
        .strategy(Strategy::Cranelift)
        .wasm_component_model(true)
        .epoch_interruption(true)
        .parallel_compilation(true);
    let mut pool = PoolingAllocationConfig::new();
    // Each slot reserves (not commits) ~6 GiB of address space per memory, so 2,048
    // running containers take ~12 TiB of the 128 TiB a 64-bit process can address and
    // nothing of its RSS; a node is meant to run thousands of pods.
    pool.total_component_instances(2048)
        .total_memories(2048)
        .total_stacks(2048)
        .total_core_instances(8192)
        .total_tables(8192);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    match Engine::new(&config) {
        Ok(engine) => Ok(engine),
        Err(error) => {
            tracing::warn!(error = %format!("{error:#}"), "pooling allocator unavailable; allocating on demand");
            config.allocation_strategy(InstanceAllocationStrategy::OnDemand);
            Engine::new(&config).map_err(|e| Error::Engine(format!("{e:#}")))
        }
    }
}

/// Advances the engine epoch every [`EPOCH_TICK`] on a small thread; the
/// thread ends when this is dropped.
pub(super) struct EpochTicker {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    pub(super) fn start(engine: Engine) -> Result<EpochTicker, Error> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(EPOCH_TICK) {
                    engine.increment_epoch();
                }
            })
            .map_err(|e| Error::Engine(format!("epoch ticker: {e}")))?;
        Ok(EpochTicker {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
