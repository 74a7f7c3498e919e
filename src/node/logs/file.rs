//! The on-disk copy of a container's logs, in the CRI log format, rotated as the kubelet
//! rotates it: `<dir>/<restart>.log` until it reaches the maximum size, then renamed
//! `<restart>.log.<time>`, with at most the maximum number of files kept per container over
//! all its restarts, oldest removed first. And the reader of such a file.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};

use super::{LogLine, Stream};
use crate::node::disk::DiskRoom;

/// How a container's log files are bounded (`--container-log-max-size`,
/// `--container-log-max-files`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rotation {
    pub max_size: u64,
    /// Files kept per container, the one being written included.
    pub max_files: usize,
}

/// Where one run of a container keeps its log on disk.
#[derive(Clone, Debug)]
pub struct LogFiles {
    /// The container's log directory, shared by all its restarts.
    pub dir: PathBuf,
    pub restart: i32,
    pub rotation: Rotation,
    /// The disk's room above the store's reserve: log bytes past it stay in memory only.
    pub room: Option<Arc<DiskRoom>>,
}

/// The log file being written, and its rotation.
pub(super) struct LogFile {
    files: LogFiles,
    file: File,
    len: u64,
    /// Whether a write was refused for want of room (said once).
    refused: bool,
}

impl LogFile {
    /// Opens (appends to) `<dir>/<restart>.log` and removes the container's oldest files past
    /// the maximum. Blocking.
    pub(super) fn open(files: LogFiles) -> std::io::Result<LogFile> {
        crate::node::disk::create_private_dir(&files.dir)?;
        let file = open_current(&files)?;
        let len = file.metadata()?.len();
        let log = LogFile {
            files,
            file,
            len,
            refused: false,
        };
        log.remove_excess();
        Ok(log)
    }

    fn current_path(&self) -> PathBuf {
        current_path(&self.files)
    }

    /// Appends CRI records (whole lines), rotating between records when the file is full.
    pub(super) fn append(&mut self, mut records: &[u8]) -> std::io::Result<()> {
        let max_size = self.files.rotation.max_size;
        while !records.is_empty() {
            let room = usize::try_from(max_size.saturating_sub(self.len)).unwrap_or(usize::MAX);
            let mut take = if records.len() <= room {
                records.len()
            } else {
                records[..room]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |end| end + 1)
            };
            if take == 0 && self.len > 0 {
                self.rotate()?;
                continue;
            }
            if take == 0 {
                // One record larger than a whole file: it gets a file to itself.
                take = records
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(records.len(), |end| end + 1);
            }
            if !self.has_room(take as u64) {
                return Ok(());
            }
            self.file.write_all(&records[..take])?;
            self.len += take as u64;
            records = &records[take..];
        }
        Ok(())
    }

    fn has_room(&mut self, bytes: u64) -> bool {
        let Some(room) = &self.files.room else {
            return true;
        };
        if room.take(bytes) {
            self.refused = false;
            return true;
        }
        if !self.refused {
            tracing::warn!(dir = %self.files.dir.display(),
                "the disk is at the store's reserve; container logs are kept in memory only");
            self.refused = true;
        }
        false
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        let stamp = Utc::now().format("%Y%m%d-%H%M%S%.9f");
        let current = self.current_path();
        let mut rotated = current.clone().into_os_string();
        rotated.push(format!(".{stamp}"));
        std::fs::rename(&current, rotated)?;
        self.file = open_current(&self.files)?;
        self.len = 0;
        self.remove_excess();
        Ok(())
    }

    /// Removes the oldest of the container's log files (any restart) beyond the maximum,
    /// never the one being written.
    fn remove_excess(&self) {
        let Ok(entries) = std::fs::read_dir(&self.files.dir) else {
            return;
        };
        let mut files: Vec<(LogAge, PathBuf)> = entries
            .flatten()
            .filter_map(|entry| {
                Some((
                    LogAge::of(&entry.file_name().to_string_lossy())?,
                    entry.path(),
                ))
            })
            .collect();
        files.sort();
        let current = self.current_path();
        let excess = files.len().saturating_sub(self.files.rotation.max_files);
        for (_, path) in files
            .into_iter()
            .filter(|(_, p)| *p != current)
            .take(excess)
        {
            if let Err(error) = std::fs::remove_file(&path) {
                tracing::warn!(%error, path = %path.display(), "cannot remove an old container log");
            }
        }
    }
}

fn current_path(files: &LogFiles) -> PathBuf {
    files.dir.join(format!("{}.log", files.restart))
}

fn open_current(files: &LogFiles) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(current_path(files))
}

/// Orders a container's log files oldest first: by restart, then rotated ones by their time,
/// then the restart's current file.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct LogAge {
    restart: i64,
    current: bool,
    rotated: Option<String>,
}

impl LogAge {
    fn of(name: &str) -> Option<LogAge> {
        let (restart, rest) = name.split_once(".log")?;
        let restart = restart.parse().ok()?;
        match rest.strip_prefix('.') {
            None if rest.is_empty() => Some(LogAge {
                restart,
                rotated: None,
                current: true,
            }),
            Some(stamp) => Some(LogAge {
                restart,
                rotated: Some(stamp.to_string()),
                current: false,
            }),
            None => None,
        }
    }
}

/// One line as a CRI log record: `<RFC 3339 nanos> <stream> F <text>\n`.
pub(super) fn record(line: &LogLine, out: &mut Vec<u8>) {
    out.extend_from_slice(
        line.time
            .to_rfc3339_opts(SecondsFormat::Nanos, true)
            .as_bytes(),
    );
    out.push(b' ');
    out.extend_from_slice(line.stream.as_str().as_bytes());
    out.extend_from_slice(b" F ");
    out.extend_from_slice(line.text.as_bytes());
    out.push(b'\n');
}

/// Reads a log file written by a [`ContainerLog`](super::ContainerLog) (e.g. for
/// `--previous` after the agent restarted). Malformed lines are skipped.
pub fn read_log_file(path: &Path) -> std::io::Result<Vec<LogLine>> {
    let text = std::fs::read_to_string(path)?;
    let parse = |record: &str| {
        let mut parts = record.splitn(4, ' ');
        let time = DateTime::parse_from_rfc3339(parts.next()?).ok()?;
        let stream = match parts.next()? {
            "stdout" => Stream::Stdout,
            "stderr" => Stream::Stderr,
            _ => return None,
        };
        let _tag = parts.next()?;
        let text = parts.next().unwrap_or("").to_owned();
        Some(LogLine {
            time: time.with_timezone(&Utc),
            stream,
            text,
        })
    };
    Ok(text.lines().filter_map(parse).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path, restart: i32) -> LogFiles {
        LogFiles {
            dir: dir.to_path_buf(),
            restart,
            rotation: Rotation {
                max_size: 1000,
                max_files: 3,
            },
            room: None,
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_full_file_is_rotated_between_records_and_old_files_go_past_the_maximum() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = LogFile::open(files(dir.path(), 0)).unwrap();
        let record = [vec![b'x'; 99], b"\n".to_vec()].concat();
        for _ in 0..55 {
            log.append(&record).unwrap();
        }
        let kept = names(dir.path());
        assert_eq!(kept.len(), 3, "{kept:?}");
        assert!(kept.contains(&"0.log".to_string()));
        for name in &kept {
            let len = std::fs::metadata(dir.path().join(name)).unwrap().len();
            assert!(len <= 1000 && len.is_multiple_of(100), "{name}: {len}");
        }
    }

    #[test]
    fn the_files_of_earlier_restarts_count_toward_the_maximum_and_go_first() {
        let dir = tempfile::tempdir().unwrap();
        for restart in 0..3 {
            let mut log = LogFile::open(files(dir.path(), restart)).unwrap();
            log.append(b"line\n").unwrap();
        }
        let mut last = LogFile::open(files(dir.path(), 10)).unwrap();
        last.append(b"line\n").unwrap();
        assert_eq!(names(dir.path()), ["1.log", "10.log", "2.log"]);
    }

    #[test]
    fn log_bytes_past_the_disks_room_are_not_written() {
        let dir = tempfile::tempdir().unwrap();
        let room = DiskRoom::new();
        room.measured(150, 0);
        let mut log = LogFile::open(LogFiles {
            room: Some(room),
            ..files(dir.path(), 0)
        })
        .unwrap();
        log.append(&[b"a".repeat(99), b"\n".to_vec()].concat())
            .unwrap();
        log.append(&[b"b".repeat(99), b"\n".to_vec()].concat())
            .unwrap();
        let len = std::fs::metadata(dir.path().join("0.log")).unwrap().len();
        assert_eq!(len, 100);
    }

    #[test]
    fn log_file_names_order_by_restart_then_rotation_then_current() {
        let mut ages: Vec<LogAge> = [
            "2.log",
            "10.log.20240101-000000",
            "2.log.20240101-000001",
            "2.log.20240101-000000",
        ]
        .iter()
        .map(|n| LogAge::of(n).unwrap())
        .collect();
        ages.sort();
        let restarts: Vec<(i64, bool)> = ages.iter().map(|a| (a.restart, a.current)).collect();
        assert_eq!(restarts, [(2, false), (2, false), (2, true), (10, false)]);
        assert_eq!(LogAge::of("notes.txt"), None);
        assert_eq!(LogAge::of("2.logs"), None);
    }
}
