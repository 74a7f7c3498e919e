//! The node's disk: directories only its user may enter, how much a directory tree holds, and
//! how much room the filesystem under the data dir has left.

use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

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
}
