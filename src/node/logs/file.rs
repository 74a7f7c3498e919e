//! The on-disk mirror of a container log, in the CRI log format, and its reader.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};

use super::{LogLine, MAX_FILE_BYTES, Stream};

/// The on-disk copy, one CRI-format line per log line
/// (`<RFC 3339 nanos> <stream> F <text>`).
pub(super) struct Mirror {
    file: File,
    len: u64,
}

impl Mirror {
    pub(super) fn open(path: &Path) -> std::io::Result<Mirror> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let len = file.metadata()?.len();
        Ok(Mirror { file, len })
    }

    /// Appends one line; `false` when the file failed and should be dropped.
    pub(super) fn append(&mut self, line: &LogLine) -> bool {
        let record = format!(
            "{} {} F {}\n",
            line.time.to_rfc3339_opts(SecondsFormat::Nanos, true),
            line.stream.as_str(),
            line.text
        );
        let result = (|| {
            if self.len + record.len() as u64 > MAX_FILE_BYTES {
                // Restart rather than rotate: the memory buffer serves recent
                // lines, the file only has to survive the agent.
                self.file.set_len(0)?;
                self.len = 0;
            }
            self.file.write_all(record.as_bytes())
        })();
        match result {
            Ok(()) => {
                self.len += record.len() as u64;
                true
            }
            Err(error) => {
                tracing::warn!(%error, "container log file write failed; keeping logs in memory only");
                false
            }
        }
    }

    pub(super) fn flush(&mut self) {
        let _ = self.file.flush();
    }
}

/// Reads a log file written by a [`ContainerLog`] mirror (e.g. for
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
