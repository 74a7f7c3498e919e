//! Group commit: SQLite commits to its write-ahead log with `synchronous=NORMAL` (no sync),
//! and a writer returns only after syncing the log through its own revision. That is what
//! `synchronous=FULL` does after each commit, but here outside the store's lock, and one sync
//! serves every writer that committed before it: concurrent writers share a disk flush.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::store::{Error, Result, Revision};

pub(super) struct Durability {
    wal_path: PathBuf,
    /// The log file, opened at the first sync, and the revision synced through.
    synced: Mutex<(Option<File>, Revision)>,
}

impl Durability {
    /// Everything up to `revision` is already on disk (it was there when the store opened).
    pub fn new(wal_path: &Path, revision: Revision) -> Self {
        Self {
            wal_path: wal_path.to_path_buf(),
            synced: Mutex::new((None, revision)),
        }
    }

    /// Returns once every write up to `revision` is on disk. `committed` reads the latest
    /// committed revision, which a sync started now covers as well.
    ///
    /// # Errors
    /// When the log cannot be opened or synced.
    pub fn sync_through(
        &self,
        revision: Revision,
        committed: impl FnOnce() -> Revision,
    ) -> Result<()> {
        let mut synced = self.synced.lock().unwrap_or_else(|p| p.into_inner());
        if synced.1 >= revision {
            return Ok(());
        }
        let target = committed();
        if synced.0.is_none() {
            let file = File::options()
                .write(true)
                .open(&self.wal_path)
                .map_err(|e| Error::Backend(format!("opening the write-ahead log: {e}")))?;
            synced.0 = Some(file);
        }
        if let Some(file) = &synced.0 {
            file.sync_data()
                .map_err(|e| Error::Backend(format!("syncing the write-ahead log: {e}")))?;
        }
        synced.1 = target;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_already_covered_by_a_sync_does_not_sync_again() {
        let dir = tempfile::tempdir().unwrap();
        let wal = dir.path().join("store.db-wal");
        let durability = Durability::new(&wal, 5);
        // Nothing to do up to 5: the (missing) log is not even opened.
        durability.sync_through(5, || unreachable!()).unwrap();
        std::fs::write(&wal, b"frames").unwrap();
        // A sync for 6 covers everything committed when it starts (9)...
        durability.sync_through(6, || 9).unwrap();
        // ...so writers up to 9 return at once.
        durability.sync_through(9, || unreachable!()).unwrap();
        std::fs::remove_file(&wal).unwrap();
        durability.sync_through(10, || 10).unwrap();
    }

    #[test]
    fn a_missing_log_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let durability = Durability::new(&dir.path().join("gone-wal"), 0);
        let error = durability.sync_through(1, || 1).unwrap_err();
        assert!(error.to_string().contains("write-ahead log"), "{error}");
    }
}
