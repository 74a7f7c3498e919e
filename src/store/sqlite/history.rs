//! History read back for watches a page at a time, on reader connections of its own: a watch
//! from far back holds no lock writers take and never has more than a page in memory.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};

use super::{Location, Shared, rows};
use crate::store::offload::off_worker;
use crate::store::{Backlog, Error, Event, Result, Revision};

/// Events per page of a backlog.
const PAGE: usize = 256;
/// Reader connections kept open between pages.
const IDLE_READERS: usize = 4;

/// Read-only connections, opened as needed and kept for the next reader.
pub(super) struct Readers {
    location: Location,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    pub fn new(location: Location) -> Self {
        Self {
            location,
            idle: Mutex::new(Vec::new()),
        }
    }

    fn with<T>(&self, read: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self.location.connect(
                OpenFlags::SQLITE_OPEN_READ_ONLY
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX
                    | OpenFlags::SQLITE_OPEN_URI,
            )?,
        };
        let result = read(&conn);
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < IDLE_READERS {
            idle.push(conn);
        }
        result
    }
}

/// The events under a prefix with a revision in `(after, until]`, read a page at a time.
pub(super) struct HistoryPages {
    shared: Arc<Shared>,
    prefix: String,
    after: Revision,
    until: Revision,
}

impl HistoryPages {
    pub fn new(shared: Arc<Shared>, prefix: &str, after: Revision, until: Revision) -> Self {
        Self {
            shared,
            prefix: prefix.to_string(),
            after,
            until,
        }
    }
}

impl Backlog for HistoryPages {
    fn next_page(&mut self) -> Result<Vec<Event>> {
        if self.after >= self.until {
            return Ok(Vec::new());
        }
        let page = off_worker(|| {
            self.shared
                .readers
                .with(|conn| rows::read_events(conn, &self.prefix, (self.after, self.until), PAGE))
        })?;
        // Compaction raises this before deleting: at or below `after` now, nothing this page
        // should hold had been deleted when it was read.
        let compacted = self.shared.compacted.load(Ordering::SeqCst);
        if compacted > self.after {
            return Err(Error::Compacted {
                requested: self.after,
                oldest: compacted,
            });
        }
        self.after = match page.last() {
            Some(last) if page.len() == PAGE => last.entry.revision,
            _ => self.until,
        };
        Ok(page)
    }
}
