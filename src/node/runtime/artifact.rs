//! Image files and compiled artifacts on disk: reading an image within its size limit with
//! its digest, compiling it and writing the artifact atomically, and loading an artifact back.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::Error;

#[allow(unsafe_code)]
pub(super) fn deserialize_artifact(
    engine: &Engine,
    artifact: &Path,
) -> wasmtime::Result<Component> {
    // SAFETY: `deserialize_file` trusts the file to be wasmtime's own output.
    // Artifacts under the cache dir are only ever written by `compile` below
    // (`Component::serialize`, then an atomic rename), named by the digest of
    // the source they were compiled from; wasmtime itself still checks the
    // header and engine compatibility and we recompile when that fails.
    unsafe { Component::deserialize_file(engine, artifact) }
}

/// Compiles `bytes` and stores the artifact at `artifact` (temp file +
/// rename, so readers never see half a file). A failed write only costs a
/// recompile next time.
pub(super) fn compile(
    engine: &Engine,
    digest: &str,
    bytes: &[u8],
    artifact: &Path,
) -> Result<Component, Error> {
    let component = Component::new(engine, bytes).map_err(|e| Error::CompileFailed {
        digest: digest.to_owned(),
        message: format!("{e:#}"),
    })?;
    let written = component
        .serialize()
        .map_err(std::io::Error::other)
        .and_then(|serialized| write_atomically(artifact, &serialized));
    if let Err(error) = written {
        tracing::warn!(artifact = %artifact.display(), %error, "could not cache compiled component");
    }
    Ok(component)
}

fn write_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut temp = tempfile::NamedTempFile::new_in(dir)?;
    temp.write_all(contents)?;
    temp.as_file().sync_data()?;
    temp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Reads at most `limit` bytes of the image and returns them with their
/// sha256 in hex. The size is checked before reading anything.
pub(super) fn read_image(path: &Path, limit: u64) -> Result<(Vec<u8>, String), Error> {
    let unreadable = |source: std::io::Error| match source.kind() {
        std::io::ErrorKind::NotFound => Error::ImageNotFound {
            path: path.to_owned(),
            source,
        },
        _ => Error::ImageUnreadable {
            path: path.to_owned(),
            source,
        },
    };
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let size = file.metadata().map_err(unreadable)?.len();
    if size > limit {
        return Err(Error::TooLarge { size, limit });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    // `take` guards against the file growing after the metadata check.
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > limit {
        return Err(Error::TooLarge {
            size: bytes.len() as u64,
            limit,
        });
    }
    let hex = hex::encode(Sha256::digest(&bytes));
    Ok((bytes, hex))
}
