//! The image store: components imported under names (`wasmkube images import`, as `kind load`
//! and `k3s ctr images import` do for containers), kept once per content digest, so a
//! container's `image: hello:v1` names an imported component. The control plane keeps the
//! store clients import into; a node resolves names in its own, and a joined node fills its
//! own from the control plane's. Pulling from OCI registries will fill the same store.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::atomic_file;

/// The most an imported component may weigh (a node refuses to compile more anyway).
pub const MAX_IMAGE_BYTES: usize = 256 * 1024 * 1024;

/// An imported image: its normalized name and the component it names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    pub name: String,
    /// `sha256:<hex>` of the component's bytes.
    pub digest: String,
    pub size: u64,
    /// When it was imported (RFC 3339).
    pub imported: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid image name {0:?}: {1}")]
    InvalidName(String, &'static str),
    #[error("image {0:?} is not a WebAssembly component (no \\0asm header)")]
    NotWasm(String),
    #[error("image {name:?} is {size} bytes, more than the limit of {MAX_IMAGE_BYTES}")]
    TooLarge { name: String, size: usize },
    #[error("image {0:?} not found")]
    NotFound(String),
    #[error("image store: {0}")]
    Io(#[from] io::Error),
}

/// Whether a container's `image` names an imported image rather than a file: not a path (no
/// `/` at the start, no `./` or `../`, no `.wasm` ending) and no URL.
pub fn is_name(image: &str) -> bool {
    !(image.is_empty()
        || image.starts_with('/')
        || image.starts_with("./")
        || image.starts_with("../")
        || image.ends_with(".wasm")
        || image.contains("://"))
}

/// The name an image is kept under: `localhost/` dropped (kubectl and kind write it), `:latest`
/// when no tag is given. Names are the OCI reference grammar's lower-case path components.
///
/// # Errors
/// `InvalidName` saying what is wrong.
pub fn normalize(name: &str) -> Result<String, Error> {
    let invalid = |why| Error::InvalidName(name.to_string(), why);
    let bare = name.strip_prefix("localhost/").unwrap_or(name);
    let (path, tag) = match bare.rsplit_once(':') {
        Some((path, tag)) if !tag.contains('/') => (path, tag),
        _ => (bare, "latest"),
    };
    if path.is_empty() || path.len() > 255 {
        return Err(invalid("the name must have 1 to 255 characters"));
    }
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
            && c.as_bytes()[0].is_ascii_alphanumeric()
    };
    if !path.split('/').all(component_ok) {
        return Err(invalid(
            "name components are lower-case letters, digits, '.', '_' and '-', starting with a letter or digit",
        ));
    }
    let tag_ok = tag.len() <= 128
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && tag
            .as_bytes()
            .first()
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
    if !tag_ok {
        return Err(invalid(
            "a tag is up to 128 letters, digits, '.', '_' and '-', not starting with '.' or '-'",
        ));
    }
    Ok(format!("{path}:{tag}"))
}

/// The images under one directory: `blobs/sha256/<hex>.wasm` and `index.json`.
#[derive(Clone)]
pub struct ImageStore {
    dir: PathBuf,
    /// Serializes changes to the index.
    index_lock: Arc<Mutex<()>>,
}

impl ImageStore {
    /// The store under `<data_dir>/images` (created on first import).
    pub fn open(data_dir: &Path) -> ImageStore {
        ImageStore {
            dir: data_dir.join("images"),
            index_lock: Arc::default(),
        }
    }

    /// Keeps `component` under `name`, replacing what the name named before.
    ///
    /// # Errors
    /// An invalid name, bytes that are no wasm, too many bytes, or a write failure.
    pub fn import(&self, name: &str, component: &[u8]) -> Result<Image, Error> {
        let name = normalize(name)?;
        if component.len() > MAX_IMAGE_BYTES {
            let size = component.len();
            return Err(Error::TooLarge { name, size });
        }
        if !component.starts_with(b"\0asm") {
            return Err(Error::NotWasm(name));
        }
        let hex = hex::encode(Sha256::digest(component));
        let blob = self.blob(&hex);
        if !blob.exists() {
            atomic_file::write_private(&blob, component)?;
        }
        let image = Image {
            name: name.clone(),
            digest: format!("sha256:{hex}"),
            size: component.len() as u64,
            imported: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        };
        let _changing = self.index_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut index = self.index()?;
        let replaced = index.insert(name, image.clone());
        self.write_index(&index)?;
        if let Some(old) = replaced {
            self.drop_unreferenced(&index, &old.digest)?;
        }
        Ok(image)
    }

    /// Every image, by name.
    ///
    /// # Errors
    /// When the index cannot be read.
    pub fn list(&self) -> Result<Vec<Image>, Error> {
        Ok(self.index()?.into_values().collect())
    }

    /// Forgets `name`; its component goes when no other name refers to it.
    ///
    /// # Errors
    /// `NotFound`, or a failure to rewrite the index.
    pub fn remove(&self, name: &str) -> Result<Image, Error> {
        let name = normalize(name)?;
        let _changing = self.index_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut index = self.index()?;
        let removed = index.remove(&name).ok_or(Error::NotFound(name))?;
        self.write_index(&index)?;
        self.drop_unreferenced(&index, &removed.digest)?;
        Ok(removed)
    }

    /// The image `name` names and the file of its component.
    ///
    /// # Errors
    /// `NotFound`, or an unreadable index.
    pub fn resolve(&self, name: &str) -> Result<(Image, PathBuf), Error> {
        let name = normalize(name)?;
        let image = self.index()?.remove(&name).ok_or(Error::NotFound(name))?;
        let hex = image.digest.trim_start_matches("sha256:").to_string();
        Ok((image, self.blob(&hex)))
    }

    /// Runs `call` on this store off the async workers (its reads and fsyncs block).
    ///
    /// # Errors
    /// What `call` returns; `Io` if its thread died.
    pub async fn off_thread<T: Send + 'static>(
        &self,
        call: impl FnOnce(&ImageStore) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || call(&store))
            .await
            .unwrap_or_else(|e| Err(Error::Io(io::Error::other(e))))
    }

    fn blob(&self, hex: &str) -> PathBuf {
        self.dir
            .join("blobs")
            .join("sha256")
            .join(format!("{hex}.wasm"))
    }

    fn index(&self) -> Result<BTreeMap<String, Image>, Error> {
        match fs::read(self.dir.join("index.json")) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| Error::Io(io::Error::new(io::ErrorKind::InvalidData, e))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(e.into()),
        }
    }

    fn write_index(&self, index: &BTreeMap<String, Image>) -> Result<(), Error> {
        let json = serde_json::to_vec_pretty(index).map_err(io::Error::other)?;
        Ok(atomic_file::write_private(
            &self.dir.join("index.json"),
            &json,
        )?)
    }

    fn drop_unreferenced(&self, index: &BTreeMap<String, Image>, digest: &str) -> io::Result<()> {
        if index.values().any(|image| image.digest == digest) {
            return Ok(());
        }
        match fs::remove_file(self.blob(digest.trim_start_matches("sha256:"))) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMPONENT: &[u8] = b"\0asm\x0d\x00\x01\x00rest";

    #[test]
    fn names_are_normalized_as_kubectl_and_kind_write_them() {
        assert_eq!(normalize("hello").unwrap(), "hello:latest");
        assert_eq!(normalize("hello:v1").unwrap(), "hello:v1");
        assert_eq!(normalize("localhost/hello:v1").unwrap(), "hello:v1");
        assert_eq!(normalize("team/app:1.0").unwrap(), "team/app:1.0");
        for bad in ["Hello:v1", "hello:", "hello:-x", "", "a//b", "hello world"] {
            assert!(
                matches!(normalize(bad), Err(Error::InvalidName(..))),
                "{bad}"
            );
        }
    }

    #[test]
    fn paths_and_urls_are_not_names() {
        for path in ["/a/b.wasm", "./b.wasm", "b.wasm", "file:///b.wasm", "../x"] {
            assert!(!is_name(path), "{path}");
        }
        for name in ["hello", "hello:v1", "localhost/hello:v1", "team/app:1"] {
            assert!(is_name(name), "{name}");
        }
    }

    #[test]
    fn an_imported_component_resolves_under_its_name_until_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = ImageStore::open(dir.path());
        let image = store.import("hello:v1", COMPONENT).unwrap();
        assert!(image.digest.starts_with("sha256:"));
        let (found, path) = store.resolve("localhost/hello:v1").unwrap();
        assert_eq!(found, image);
        assert_eq!(fs::read(&path).unwrap(), COMPONENT);
        store.import("hello:latest", COMPONENT).unwrap();
        store.remove("hello:v1").unwrap();
        assert!(path.exists(), "still named by hello:latest");
        store.remove("hello").unwrap();
        assert!(!path.exists(), "no name refers to it any more");
        assert!(matches!(store.resolve("hello:v1"), Err(Error::NotFound(_))));
        assert!(store.list().unwrap().is_empty());
    }

    #[test]
    fn what_is_not_a_component_is_refused_and_nothing_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = ImageStore::open(dir.path());
        let refused = store.import("hello:v1", b"#!/bin/sh\n").unwrap_err();
        assert!(matches!(refused, Error::NotWasm(_)), "{refused}");
        assert!(store.list().unwrap().is_empty());
    }
}
