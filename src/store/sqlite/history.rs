//! History read back for watches a page at a time, on reader connections of its own: a watch
//! from far back holds no lock writers take and never has more than a page in memory. While it
//! reads, its position is pinned: compaction leaves the history it still needs in place.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{Connection, OpenFlags};

use super::{LIVE_FEED_CAPACITY, Location, Shared, rows};
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

/// Where the open backlogs are. Taken by `watch` to check the compacted revision and pin its
/// backlog, and by compaction to choose what to drop and raise that revision: a backlog is
/// either pinned before compaction looks, or refused for the compaction it came after.
#[derive(Default)]
pub(super) struct Pins {
    next: u64,
    /// Each open backlog's position (`after`) and end (`until`).
    open: HashMap<u64, (Revision, Revision)>,
}

impl Pins {
    /// The oldest revision an open backlog still has to read, at `revision`. A backlog whose
    /// end is further behind than the live feed holds has lost its live events and will end
    /// with 410 anyway: it pins nothing, which bounds the history kept for slow watchers.
    pub fn oldest_needed(&self, revision: Revision) -> Option<Revision> {
        self.open
            .values()
            .filter(|(_, until)| until + LIVE_FEED_CAPACITY as Revision >= revision)
            .map(|(after, _)| *after)
            .min()
    }
}

/// The events under a prefix with a revision in `(after, until]`, read a page at a time.
pub(super) struct HistoryPages {
    shared: Arc<Shared>,
    pin: u64,
    prefix: String,
    after: Revision,
    until: Revision,
}

impl HistoryPages {
    /// A backlog, pinned in `pins` (the caller has checked `after` is not compacted).
    pub fn pinned(
        shared: Arc<Shared>,
        pins: &mut Pins,
        prefix: &str,
        (after, until): (Revision, Revision),
    ) -> Self {
        let pin = pins.next;
        pins.next += 1;
        pins.open.insert(pin, (after, until));
        Self {
            shared,
            pin,
            prefix: prefix.to_string(),
            after,
            until,
        }
    }

    fn pins(&self) -> MutexGuard<'_, Pins> {
        self.shared.pins.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for HistoryPages {
    fn drop(&mut self) {
        self.pins().open.remove(&self.pin);
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
        // should hold had been deleted when it was read. (Above it only when this backlog fell
        // so far behind that its pin no longer counts.)
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
        let mut pins = self.pins();
        if self.after >= self.until {
            pins.open.remove(&self.pin);
        } else if let Some(pin) = pins.open.get_mut(&self.pin) {
            pin.0 = self.after;
        }
        Ok(page)
    }
}
