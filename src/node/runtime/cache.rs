//! The runtime's caches, bounded: prepared components in memory and their compiled artifacts
//! on disk, each trimmed least recently used first by size and never one a running container
//! holds; and the digests of image files, keyed by the file's identity and version (not its
//! path), forgotten with their component.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use tokio::sync::OnceCell;

use super::PreparedComponent;

/// Image files whose digests are remembered, at most.
const MAX_STAMPS: usize = 4096;

/// What identifies one version of a file without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct FileStamp {
    device: u64,
    inode: u64,
    len: u64,
    modified: Option<SystemTime>,
}

impl FileStamp {
    pub(super) fn of(metadata: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        FileStamp {
            device: metadata.dev(),
            inode: metadata.ino(),
            len: metadata.len(),
            modified: metadata.modified().ok(),
        }
    }
}

/// A component being prepared or ready, shared by every load of its digest.
pub(super) type Cell = Arc<OnceCell<Arc<PreparedComponent>>>;

struct Entry {
    cell: Cell,
    /// Bytes of compiled code in memory, once prepared.
    bytes: u64,
    used: u64,
}

struct State {
    entries: HashMap<String, Entry>,
    /// The digest read from each file version, and when it was last asked for.
    stamps: HashMap<FileStamp, (String, u64)>,
    /// A counter standing for time: larger is more recent.
    clock: u64,
}

/// Prepared components by digest, and image digests by file version.
pub(super) struct ComponentCache {
    max_bytes: u64,
    state: Mutex<State>,
}

impl ComponentCache {
    pub(super) fn new(max_bytes: u64) -> Self {
        ComponentCache {
            max_bytes,
            state: Mutex::new(State {
                entries: HashMap::new(),
                stamps: HashMap::new(),
                clock: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The digest last read from the file version `stamp`.
    pub(super) fn digest_of(&self, stamp: &FileStamp) -> Option<String> {
        let mut state = self.lock();
        state.clock += 1;
        let now = state.clock;
        let (digest, used) = state.stamps.get_mut(stamp)?;
        *used = now;
        Some(digest.clone())
    }

    /// Remembers the digest of file version `stamp`, forgetting the least recently asked for
    /// past [`MAX_STAMPS`].
    pub(super) fn remember_digest(&self, stamp: FileStamp, digest: &str) {
        let mut state = self.lock();
        state.clock += 1;
        let now = state.clock;
        state.stamps.insert(stamp, (digest.to_string(), now));
        if state.stamps.len() > MAX_STAMPS {
            let oldest = state.stamps.iter().min_by_key(|(_, (_, used))| *used);
            if let Some(oldest) = oldest.map(|(stamp, _)| *stamp) {
                state.stamps.remove(&oldest);
            }
        }
    }

    /// The component of `digest` if it is prepared.
    pub(super) fn ready(&self, digest: &str) -> Option<Arc<PreparedComponent>> {
        let cell = self.cell(digest);
        cell.get().cloned()
    }

    /// The cell of `digest`, made if missing; counts as a use.
    pub(super) fn cell(&self, digest: &str) -> Cell {
        let mut state = self.lock();
        state.clock += 1;
        let now = state.clock;
        let entry = state
            .entries
            .entry(digest.to_string())
            .or_insert_with(|| Entry {
                cell: Cell::default(),
                bytes: 0,
                used: now,
            });
        entry.used = now;
        Arc::clone(&entry.cell)
    }

    /// `digest` is prepared with `bytes` of code: trims the cache back under its budget,
    /// least recently used first, sparing components in use and ones still being prepared.
    pub(super) fn prepared(&self, digest: &str, bytes: u64) {
        let mut state = self.lock();
        if let Some(entry) = state.entries.get_mut(digest) {
            entry.bytes = bytes;
        }
        let mut total: u64 = state.entries.values().map(|e| e.bytes).sum();
        let mut by_age: Vec<(u64, String)> = state
            .entries
            .iter()
            .filter(|(_, entry)| evictable(entry))
            .map(|(digest, entry)| (entry.used, digest.clone()))
            .collect();
        by_age.sort();
        for (_, digest) in by_age {
            if total <= self.max_bytes {
                break;
            }
            if let Some(entry) = state.entries.remove(&digest) {
                total -= entry.bytes;
                state.stamps.retain(|_, (d, _)| *d != digest);
            }
        }
    }

    /// Digests (hex, as the artifacts are named) of the components running containers hold.
    pub(super) fn in_use(&self) -> HashSet<String> {
        let state = self.lock();
        state
            .entries
            .iter()
            .filter(|(_, entry)| !evictable(entry))
            .map(|(digest, _)| digest.trim_start_matches("sha256:").to_string())
            .collect()
    }

    /// Components in memory, and the bytes of their code.
    pub(super) fn size(&self) -> (usize, u64) {
        let state = self.lock();
        let bytes = state.entries.values().map(|e| e.bytes).sum();
        (state.entries.len(), bytes)
    }
}

/// Whether nothing but the cache holds the entry: prepared, and no load or container has it.
fn evictable(entry: &Entry) -> bool {
    Arc::strong_count(&entry.cell) == 1
        && entry
            .cell
            .get()
            .is_some_and(|component| Arc::strong_count(component) == 1)
}

/// Removes the least recently used artifacts (`<hex>.cwasm`, by modification time) from `dir`
/// until they take at most `max_bytes`, sparing those named in `keep`. Blocking.
pub(super) fn trim_dir(dir: &Path, max_bytes: u64, keep: &HashSet<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut artifacts: Vec<(SystemTime, u64, std::path::PathBuf, bool)> = entries
        .flatten()
        .filter_map(|entry| {
            let path = entry.path();
            let hex = path
                .file_name()?
                .to_str()?
                .strip_suffix(".cwasm")?
                .to_string();
            let metadata = entry.metadata().ok()?;
            let modified = metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            Some((modified, metadata.len(), path, keep.contains(&hex)))
        })
        .collect();
    let mut total: u64 = artifacts.iter().map(|(_, len, _, _)| len).sum();
    artifacts.sort_by_key(|(modified, ..)| *modified);
    for (_, len, path, kept) in artifacts {
        if total <= max_bytes {
            break;
        }
        if kept {
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => total -= len,
            Err(error) => {
                tracing::warn!(%error, path = %path.display(), "cannot remove a compiled component")
            }
        }
    }
}

/// Marks an artifact as just used, for [`trim_dir`]'s order.
pub(super) fn touch(artifact: &Path) {
    let touched = std::fs::File::options()
        .write(true)
        .open(artifact)
        .and_then(|file| file.set_modified(SystemTime::now()));
    if let Err(error) = touched {
        tracing::debug!(%error, artifact = %artifact.display(), "cannot mark a compiled component used");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(inode: u64) -> FileStamp {
        FileStamp {
            device: 1,
            inode,
            len: 10,
            modified: None,
        }
    }

    #[test]
    fn digests_are_kept_per_file_version_and_the_least_recently_asked_go_first() {
        let cache = ComponentCache::new(u64::MAX);
        for inode in 0..MAX_STAMPS as u64 {
            cache.remember_digest(stamp(inode), &format!("sha256:{inode}"));
        }
        assert_eq!(cache.digest_of(&stamp(0)).as_deref(), Some("sha256:0"));
        cache.remember_digest(stamp(1 << 40), "sha256:new");
        assert_eq!(cache.lock().stamps.len(), MAX_STAMPS);
        assert_eq!(
            cache.digest_of(&stamp(0)).as_deref(),
            Some("sha256:0"),
            "asked for lately"
        );
        assert_eq!(
            cache.digest_of(&stamp(1)),
            None,
            "the least recently asked for went"
        );
    }

    #[test]
    fn the_disk_cache_loses_its_oldest_artifacts_first_but_keeps_those_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let old = SystemTime::now() - std::time::Duration::from_secs(3600);
        for (i, name) in ["a", "b", "c"].iter().enumerate() {
            let path = dir.path().join(format!("{name}.cwasm"));
            std::fs::write(&path, vec![0u8; 100]).unwrap();
            let file = std::fs::File::options().write(true).open(&path).unwrap();
            file.set_modified(old + std::time::Duration::from_secs(i as u64))
                .unwrap();
        }
        std::fs::write(dir.path().join("notes.txt"), vec![0u8; 1000]).unwrap();
        let keep = HashSet::from(["a".to_string()]);
        trim_dir(dir.path(), 200, &keep);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["a.cwasm", "c.cwasm", "notes.txt"]);
    }
}
