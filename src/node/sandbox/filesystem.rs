//! The guest's filesystem calls the node meters, shadowing wasmtime-wasi's own in the linker
//! and delegating to them: every `open-at` takes a file from the pod's and the node's budgets
//! (given back when the guest drops the descriptor or ends), and every write to a file takes
//! its bytes from the disk's room above the store's reserve (refused with ENOSPC past it).

use bytes::Bytes;
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource, ResourceType};
use wasmtime_wasi::filesystem::WasiFilesystemView;
use wasmtime_wasi::p2::bindings::filesystem::types::{
    Descriptor, DescriptorFlags, ErrorCode, HostDescriptor, OpenFlags, PathFlags,
};
use wasmtime_wasi::p2::{DynOutputStream, FsResult, OutputStream, Pollable, StreamError};

use super::InstanceState;
use crate::node::disk::GuestDisk;

/// The one version of `wasi:filesystem` wasmtime-wasi 48 defines; guests importing any 0.2.x
/// resolve to it. A newer wasmtime would leave these overrides in an instance no guest sees:
/// the tests that open files past a pod's limit and write past the disk's room would fail.
const FILESYSTEM_TYPES: &str = "wasi:filesystem/types@0.2.12";

type Answer<T> = wasmtime::Result<(Result<T, ErrorCode>,)>;

/// Replaces the metered functions of `wasi:filesystem/types` in `linker` (after wasmtime-wasi
/// added its own).
///
/// # Errors
/// When wasmtime refuses a definition.
pub fn add_to_linker(linker: &mut Linker<InstanceState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut types = linker.instance(FILESYSTEM_TYPES)?;
    types.func_wrap_async(
        "[method]descriptor.open-at",
        |mut store: StoreContextMut<'_, InstanceState>,
         (dir, path_flags, path, open_flags, flags): (
            Resource<Descriptor>,
            PathFlags,
            String,
            OpenFlags,
            DescriptorFlags,
        )| {
            Box::new(async move {
                store.data_mut().files.reserve()?;
                let mut view = store.data_mut().filesystem();
                let opened =
                    HostDescriptor::open_at(&mut view, dir, path_flags, path, open_flags, flags)
                        .await;
                let files = &mut store.data_mut().files;
                match &opened {
                    Ok(descriptor) => files.opened(descriptor.rep()),
                    Err(_) => files.unreserve(),
                }
                answer(opened)
            })
        },
    )?;
    types.resource(
        "descriptor",
        ResourceType::host::<Descriptor>(),
        |mut store, rep| {
            HostDescriptor::drop(&mut store.data_mut().filesystem(), Resource::new_own(rep))?;
            store.data_mut().files.closed(rep);
            Ok(())
        },
    )?;
    types.func_wrap(
        "[method]descriptor.write-via-stream",
        |mut store: StoreContextMut<'_, InstanceState>,
         (file, offset): (Resource<Descriptor>, u64)| {
            let stream =
                HostDescriptor::write_via_stream(&mut store.data_mut().filesystem(), file, offset);
            metered(store.data_mut(), stream)
        },
    )?;
    types.func_wrap(
        "[method]descriptor.append-via-stream",
        |mut store: StoreContextMut<'_, InstanceState>, (file,): (Resource<Descriptor>,)| {
            let stream =
                HostDescriptor::append_via_stream(&mut store.data_mut().filesystem(), file);
            metered(store.data_mut(), stream)
        },
    )?;
    types.func_wrap_async(
        "[method]descriptor.write",
        |mut store: StoreContextMut<'_, InstanceState>,
         (file, buffer, offset): (Resource<Descriptor>, Vec<u8>, u64)| {
            Box::new(async move {
                if !store.data().disk.write(buffer.len() as u64) {
                    return Ok((Err(ErrorCode::InsufficientSpace),));
                }
                let mut view = store.data_mut().filesystem();
                answer(HostDescriptor::write(&mut view, file, buffer, offset).await)
            })
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// A filesystem result as the guest gets it: an error code, or a trap for anything else.
fn answer<T>(result: FsResult<T>) -> Answer<T> {
    match result {
        Ok(value) => Ok((Ok(value),)),
        Err(error) => Ok((Err(error.downcast()?),)),
    }
}

/// The file stream wasmtime-wasi made, swapped in the table for one that books its writes.
fn metered(
    state: &mut InstanceState,
    stream: FsResult<Resource<DynOutputStream>>,
) -> Answer<Resource<DynOutputStream>> {
    let stream = match stream {
        Ok(stream) => stream,
        Err(error) => return answer(Err(error)),
    };
    let inner = state.table.delete(stream)?;
    let stream: DynOutputStream = Box::new(MeteredFile {
        inner,
        disk: state.disk.clone(),
    });
    Ok((Ok(state.table.push(stream)?),))
}

/// A guest's output stream to a file whose writes take room on the disk first.
struct MeteredFile {
    inner: DynOutputStream,
    disk: GuestDisk,
}

#[wasmtime_wasi::async_trait]
impl OutputStream for MeteredFile {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        if !self.disk.write(bytes.len() as u64) {
            let full = std::io::Error::from_raw_os_error(rustix::io::Errno::NOSPC.raw_os_error());
            return Err(StreamError::LastOperationFailed(full.into()));
        }
        self.inner.write(bytes)
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        self.inner.flush()
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        self.inner.check_write()
    }

    async fn cancel(&mut self) {
        self.inner.cancel().await;
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for MeteredFile {
    async fn ready(&mut self) {
        self.inner.ready().await;
    }
}
