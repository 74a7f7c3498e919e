//! The rows behind the store: objects and their history, written and read back.

use std::collections::BTreeMap;
use std::sync::Arc;

use rusqlite::{Connection, params};
use serde_json::Value;

use super::{backend, parse, prefix_end};
use crate::store::{Entry, Event, EventKind, Result, Revision, stamp_revision};

/// One write of a batch: `value` is `None` for a delete.
pub(super) struct Change {
    pub key: String,
    pub value: Option<Value>,
    pub prev: Option<Value>,
}

/// Writes a change's rows (object and history) at `revision` inside `tx`.
pub(super) fn write_change(
    tx: &rusqlite::Transaction<'_>,
    change: Change,
    revision: Revision,
) -> Result<Event> {
    let Change { key, value, prev } = change;
    let (kind, mut stored) = match value {
        Some(v) => (EventKind::Put, v),
        None => (EventKind::Delete, prev.clone().unwrap_or(Value::Null)),
    };
    stamp_revision(&mut stored, revision);
    let text = stored.to_string();
    let prev_text = prev.as_ref().map(Value::to_string);
    match kind {
        EventKind::Put => tx
            .prepare_cached(
                "INSERT INTO objects (key, value, revision) VALUES (?1, ?2, ?3)
                 ON CONFLICT(key) DO UPDATE SET value = ?2, revision = ?3",
            )
            .and_then(|mut s| s.execute(params![key, text, revision as i64])),
        EventKind::Delete => tx
            .prepare_cached("DELETE FROM objects WHERE key = ?1")
            .and_then(|mut s| s.execute(params![key])),
    }
    .map_err(backend)?;
    tx.prepare_cached(
        "INSERT INTO events (revision, key, deleted, value, prev) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut s| {
        s.execute(params![
            revision as i64,
            key,
            kind == EventKind::Delete,
            text,
            prev_text
        ])
    })
    .map_err(backend)?;
    Ok(Event {
        kind,
        entry: Entry {
            key,
            value: stored,
            revision,
        },
        prev,
    })
}

/// Loads the current objects at open.
pub(super) fn read_objects(conn: &Connection) -> Result<BTreeMap<String, Arc<Entry>>> {
    let mut stmt = conn
        .prepare("SELECT key, value, revision FROM objects")
        .map_err(backend)?;
    let rows = stmt
        .query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
            ))
        })
        .map_err(backend)?;
    let mut objects = BTreeMap::new();
    for row in rows {
        let (key, text, revision) = row.map_err(backend)?;
        let entry = Entry {
            key: key.clone(),
            value: parse(&text)?,
            revision: revision as Revision,
        };
        objects.insert(key, Arc::new(entry));
    }
    Ok(objects)
}

/// Up to `limit` events under `prefix` with a revision in `(after, until]`, oldest first.
pub(super) fn read_events(
    conn: &Connection,
    prefix: &str,
    (after, until): (Revision, Revision),
    limit: usize,
) -> Result<Vec<Event>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT revision, key, deleted, value, prev FROM events
             WHERE revision > ?1 AND revision <= ?2 AND key >= ?3 AND key < ?4
             ORDER BY revision LIMIT ?5",
        )
        .map_err(backend)?;
    let rows = stmt
        .query_map(
            params![
                after as i64,
                until as i64,
                prefix,
                prefix_end(prefix),
                limit as i64
            ],
            |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, bool>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, Option<String>>(4)?,
                ))
            },
        )
        .map_err(backend)?;
    let mut events = Vec::new();
    for row in rows {
        let (revision, key, deleted, text, prev) = row.map_err(backend)?;
        events.push(Event {
            kind: if deleted {
                EventKind::Delete
            } else {
                EventKind::Put
            },
            entry: Entry {
                key,
                value: parse(&text)?,
                revision: revision as Revision,
            },
            prev: prev.as_deref().map(parse).transpose()?,
        });
    }
    Ok(events)
}
