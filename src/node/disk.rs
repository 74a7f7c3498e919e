//! The node's disk: directories only its user may enter, how much a directory tree holds, and
//! how much room the filesystem under the data dir has left.

use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use tokio::sync::Notify;

/// Mode of the data dir, pod dirs and everything the node creates under them: the store,
/// tokens, compiled code and pods' files are the user's alone.
const PRIVATE_DIR_MODE: u32 = 0o700;
const PRIVATE_FILE_MODE: u32 = 0o600;

/// Creates `path` (and missing parents) as a directory only its owner may enter, and
/// tightens it if it exists with a looser mode.
///
/// # Errors
/// When a directory cannot be created or its mode set.
pub fn create_private_dir(path: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR_MODE)
        .create(path)?;
    tighten(path, PRIVATE_DIR_MODE)
}

/// Makes sure the file at `path` is readable by its owner only: created empty with mode 0600
/// when missing (so a database opened there afterwards, and the journal files SQLite makes
/// beside it with the same mode, are private from the first byte), tightened when looser.
///
/// # Errors
/// When the file cannot be created or its mode set.
pub fn ensure_private_file(path: &Path) -> io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(PRIVATE_FILE_MODE)
        .open(path)?;
    tighten(path, PRIVATE_FILE_MODE)
}

fn tighten(path: &Path, mode: u32) -> io::Result<()> {
    let current = std::fs::metadata(path)?.permissions().mode() & 0o777;
    if current & !mode != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(current & mode))?;
    }
    Ok(())
}

/// Bytes of disk the files under `path` occupy (allocated blocks, as `du` counts them: a
/// sparse file costs only what it holds). Symlinks are not followed; entries that vanish
/// meanwhile are skipped. A missing `path` holds 0.
pub fn usage(path: &Path) -> u64 {
    let mut total = 0u64;
    let mut pending = vec![path.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(metadata) = entry.metadata() else {
                continue;
            };
            total = total.saturating_add(metadata.blocks().saturating_mul(512));
            if metadata.is_dir() {
                pending.push(entry.path());
            }
        }
    }
    total
}

/// Size and room of the filesystem holding `path`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FsStats {
    pub capacity_bytes: u64,
    /// What an unprivileged writer may still use (`f_bavail`).
    pub available_bytes: u64,
}

/// The statistics of the filesystem holding `path`.
///
/// # Errors
/// When `statvfs` fails (the path does not exist).
pub fn fs_stats(path: &Path) -> io::Result<FsStats> {
    let stats = rustix::fs::statvfs(path)?;
    Ok(FsStats {
        capacity_bytes: stats.f_blocks.saturating_mul(stats.f_frsize),
        available_bytes: stats.f_bavail.saturating_mul(stats.f_frsize),
    })
}

/// How much guests may still write on the data dir's filesystem before they reach the space
/// kept for the store: set from the filesystem's free space by the node's disk monitor, drawn
/// down by every guest write in between. A write that would go past it is refused, so the
/// store's commits never meet a full disk because of a pod.
#[derive(Debug)]
pub struct DiskRoom {
    room: AtomicI64,
    /// Wakes the monitor early: a pod wrote much since it was last measured.
    wake: Notify,
}

impl DiskRoom {
    /// Unbounded until first measured.
    pub fn new() -> Arc<DiskRoom> {
        Arc::new(DiskRoom {
            room: AtomicI64::new(i64::MAX),
            wake: Notify::new(),
        })
    }

    /// The filesystem has `available` bytes free, of which `reserved` are kept for the store.
    pub fn measured(&self, available: u64, reserved: u64) {
        let room = i128::from(available) - i128::from(reserved);
        let room = i64::try_from(room.max(0)).unwrap_or(i64::MAX);
        self.room.store(room, Ordering::Release);
    }

    /// Bytes guests may still write.
    pub fn room(&self) -> u64 {
        self.room.load(Ordering::Acquire).max(0) as u64
    }

    /// Takes `bytes` for a write; false (and nothing taken) when there is not that much room.
    pub fn take(&self, bytes: u64) -> bool {
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        self.room
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |room| {
                room.checked_sub(bytes).filter(|left| *left >= 0)
            })
            .is_ok()
    }

    /// Asks the monitor to measure now.
    pub fn wake_monitor(&self) {
        self.wake.notify_one();
    }

    /// Waits for [`wake_monitor`](Self::wake_monitor).
    pub async fn woken(&self) {
        self.wake.notified().await;
    }
}

/// Bytes one pod's guests wrote since the node last measured its disk usage: past
/// `measure_after` the monitor is woken, so a pod racing past its limit is caught between the
/// monitor's rounds.
#[derive(Debug)]
pub struct DiskWrites {
    since_measured: AtomicU64,
    measure_after: AtomicU64,
}

impl DiskWrites {
    pub fn new() -> Arc<DiskWrites> {
        Arc::new(DiskWrites {
            since_measured: AtomicU64::new(0),
            measure_after: AtomicU64::new(u64::MAX),
        })
    }

    /// Books a write of `bytes`; true when it carries the pod past `measure_after`.
    pub fn add(&self, bytes: u64) -> bool {
        let before = self.since_measured.fetch_add(bytes, Ordering::AcqRel);
        let after = self.measure_after.load(Ordering::Acquire);
        before < after && before.saturating_add(bytes) >= after
    }

    /// The pod was just measured: count again from zero, and wake the monitor once it has
    /// written `measure_after` more bytes.
    pub fn measured(&self, measure_after: u64) {
        self.since_measured.store(0, Ordering::Release);
        self.measure_after.store(measure_after, Ordering::Release);
    }
}

/// Where one container's writes are booked: the node's room, and its pod's count.
#[derive(Clone, Debug)]
pub struct GuestDisk {
    pub room: Arc<DiskRoom>,
    pub pod: Arc<DiskWrites>,
}

impl GuestDisk {
    /// Books a guest write of `bytes`; false when the disk has no room for it.
    pub fn write(&self, bytes: u64) -> bool {
        if !self.room.take(bytes) {
            return false;
        }
        if self.pod.add(bytes) {
            self.room.wake_monitor();
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn private_dirs_are_created_and_tightened_to_their_owner() {
        let root = tempfile::tempdir().unwrap();
        let nested = root.path().join("a/b");
        create_private_dir(&nested).unwrap();
        assert_eq!(mode(&root.path().join("a")), 0o700);
        assert_eq!(mode(&nested), 0o700);
        std::fs::set_permissions(&nested, std::fs::Permissions::from_mode(0o755)).unwrap();
        create_private_dir(&nested).unwrap();
        assert_eq!(mode(&nested), 0o700);
    }

    #[test]
    fn a_private_file_is_created_empty_and_an_existing_one_keeps_its_bytes() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("store.db");
        ensure_private_file(&file).unwrap();
        assert_eq!(mode(&file), 0o600);
        std::fs::write(&file, b"data").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        ensure_private_file(&file).unwrap();
        assert_eq!(mode(&file), 0o600);
        assert_eq!(std::fs::read(&file).unwrap(), b"data");
    }

    #[test]
    fn usage_counts_allocated_blocks_of_every_file_below_and_not_holes() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("sub")).unwrap();
        std::fs::write(root.path().join("sub/f"), vec![1u8; 256 * 1024]).unwrap();
        let sparse = std::fs::File::create(root.path().join("sparse")).unwrap();
        sparse.set_len(1 << 30).unwrap();
        let used = usage(root.path());
        assert!(used >= 256 * 1024, "{used}");
        assert!(used < 1 << 20, "a hole is not usage: {used}");
        assert_eq!(usage(&root.path().join("missing")), 0);
    }

    #[test]
    fn the_filesystem_of_a_directory_has_room_no_larger_than_its_size() {
        let root = tempfile::tempdir().unwrap();
        let stats = fs_stats(root.path()).unwrap();
        assert!(stats.capacity_bytes > 0);
        assert!(stats.available_bytes <= stats.capacity_bytes);
    }

    #[test]
    fn guest_writes_stop_at_the_room_left_above_the_stores_reserve() {
        let disk = GuestDisk {
            room: DiskRoom::new(),
            pod: DiskWrites::new(),
        };
        assert!(disk.write(1 << 40), "unbounded until measured");
        disk.room.measured(10_000, 4_000);
        assert!(disk.write(5_000));
        assert!(!disk.write(2_000));
        assert!(disk.write(1_000));
        assert_eq!(disk.room.room(), 0);
        disk.room.measured(1_000, 4_000);
        assert_eq!(disk.room.room(), 0, "below the reserve there is no room");
    }

    #[test]
    fn a_pod_writing_past_its_mark_wakes_the_monitor_once() {
        let writes = DiskWrites::new();
        writes.measured(100);
        assert!(!writes.add(60));
        assert!(writes.add(60));
        assert!(!writes.add(60));
        writes.measured(100);
        assert!(writes.add(100));
    }
}
