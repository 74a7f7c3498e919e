//! Tests of the SQLite store.

use std::path::Path;
use std::sync::atomic::Ordering;

use super::*;
use crate::store::Backlog;
use serde_json::json;

fn open() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_with_history(&dir.path().join("store.db"), 5).unwrap();
    (dir, store)
}

fn object(name: &str) -> Value {
    json!({"metadata": {"name": name}})
}

#[test]
fn writes_get_strictly_increasing_revisions_stamped_into_objects() {
    let (_dir, store) = open();
    let a = store.create("/t/a", object("a")).unwrap();
    let b = store.create("/t/b", object("b")).unwrap();
    let a2 = store.update("/t/a", object("a"), a.revision).unwrap();
    assert!(a.revision < b.revision && b.revision < a2.revision);
    assert_eq!(
        a2.value["metadata"]["resourceVersion"],
        a2.revision.to_string()
    );
}

#[test]
fn stale_update_is_a_conflict_and_changes_nothing() {
    let (_dir, store) = open();
    let a = store.create("/t/a", object("a")).unwrap();
    store.update("/t/a", object("a"), a.revision).unwrap();
    let err = store.update("/t/a", json!({"metadata": {"name": "x"}}), a.revision);
    assert!(matches!(err, Err(Error::Conflict { .. })));
    assert_eq!(
        store.get("/t/a").unwrap().unwrap().value["metadata"]["name"],
        "a"
    );
}

#[test]
fn create_of_existing_key_fails() {
    let (_dir, store) = open();
    store.create("/t/a", object("a")).unwrap();
    assert!(matches!(
        store.create("/t/a", object("a")),
        Err(Error::AlreadyExists(_))
    ));
}

#[test]
fn list_returns_only_keys_under_the_prefix() {
    let (_dir, store) = open();
    store.create("/t/ns1/a", object("a")).unwrap();
    store.create("/t/ns10/b", object("b")).unwrap();
    store.create("/u/ns1/c", object("c")).unwrap();
    let listing = store.list("/t/ns1/").unwrap();
    assert_eq!(listing.entries.len(), 1);
    assert_eq!(listing.revision, 3);
}

/// Every event a backlog still holds, page by page; also the size of each page.
fn drain(backlog: &mut dyn Backlog) -> Result<(Vec<Event>, Vec<usize>)> {
    let (mut events, mut pages) = (Vec::new(), Vec::new());
    loop {
        let page = backlog.next_page()?;
        if page.is_empty() {
            return Ok((events, pages));
        }
        pages.push(page.len());
        events.extend(page);
    }
}

/// Waits until the compactor has dropped history through `revision`.
fn until_compacted(store: &SqliteStore, revision: Revision) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while store.shared.compacted.load(Ordering::SeqCst) < revision {
        assert!(
            std::time::Instant::now() < deadline,
            "the compactor never ran"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

#[test]
fn watch_replays_history_after_a_revision_then_streams_live() {
    let (_dir, store) = open();
    let a = store.create("/t/a", object("a")).unwrap();
    store.create("/t/b", object("b")).unwrap();
    let mut watch = store.watch("/t/", a.revision).unwrap();
    let (backlog, _) = drain(watch.backlog.as_mut()).unwrap();
    assert_eq!(backlog.len(), 1);
    assert_eq!(backlog[0].entry.key, "/t/b");
    store.delete("/t/a", None).unwrap();
    let live = watch.live.try_recv().unwrap();
    assert_eq!(live.kind, crate::store::EventKind::Delete);
    assert_eq!(live.prev.as_ref().unwrap()["metadata"]["name"], "a");
}

#[test]
fn a_long_backlog_comes_in_pages_and_writes_between_them_go_to_the_live_feed() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("s.db")).unwrap();
    let objects = (0..1000)
        .map(|i| (format!("/t/{i:04}"), object("o")))
        .collect();
    store.create_many(objects).unwrap();
    store.create("/u/other", object("other")).unwrap();
    let mut watch = store.watch("/t/", 0).unwrap();
    let first = watch.backlog.next_page().unwrap();
    let during = store.create("/t/during", object("during")).unwrap();
    let (rest, pages) = drain(watch.backlog.as_mut()).unwrap();

    let revisions: Vec<Revision> = first
        .iter()
        .chain(&rest)
        .map(|e| e.entry.revision)
        .collect();
    assert_eq!(
        revisions,
        (1..=1000).collect::<Vec<_>>(),
        "each event once, in order"
    );
    assert!(
        pages.iter().chain([&first.len()]).all(|&n| n <= 256),
        "{pages:?}"
    );
    assert_eq!(watch.live.try_recv().unwrap().entry, during);
}

#[test]
fn compaction_runs_in_the_background_and_a_watch_from_before_it_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = SqliteStore::open_with_history(&path, 5).unwrap();
    let first = store.create("/t/a", object("a")).unwrap();
    let mut revision = first.revision;
    for _ in 0..10 {
        revision = store
            .update("/t/a", object("a"), revision)
            .unwrap()
            .revision;
    }
    until_compacted(&store, first.revision);
    assert!(matches!(
        store.watch("/t/", first.revision),
        Err(Error::Compacted { .. })
    ));
    assert!(store.watch("/t/", revision - 2).is_ok());
    drop(store);
    // The deletion and its record were committed together.
    let reopened = SqliteStore::open_with_history(&path, 5).unwrap();
    assert!(matches!(
        reopened.watch("/t/", first.revision),
        Err(Error::Compacted { .. })
    ));
}

/// A store keeping 300 revisions, with 600 objects written, compacted through 300, and a
/// watch from there that has read its first page (through revision 556).
fn store_with_a_backlog_read_in_part(dir: &Path) -> (SqliteStore, Watch) {
    let store = SqliteStore::open_with_history(&dir.join("s.db"), 300).unwrap();
    let objects = (0..600)
        .map(|i| (format!("/t/{i:04}"), object("o")))
        .collect();
    store.create_many(objects).unwrap();
    until_compacted(&store, 300);
    let mut watch = store.watch("/t/", 300).unwrap();
    assert_eq!(watch.backlog.next_page().unwrap().len(), 256);
    (store, watch)
}

fn create(store: &SqliteStore, count: usize, prefix: &str) {
    let objects = (0..count)
        .map(|i| (format!("/t/{prefix}-{i:05}"), object("o")))
        .collect();
    store.create_many(objects).unwrap();
}

#[test]
fn compaction_keeps_the_history_an_open_backlog_has_still_to_read() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut watch) = store_with_a_backlog_read_in_part(dir.path());
    create(&store, 600, "more");
    // The window alone would drop through 900; the backlog has read through 556.
    until_compacted(&store, 556);
    let (rest, _) = drain(watch.backlog.as_mut()).unwrap();
    let revisions: Vec<Revision> = rest.iter().map(|e| e.entry.revision).collect();
    assert_eq!(revisions, (557..=600).collect::<Vec<_>>());
    drop(watch);
    create(&store, 300, "after");
    until_compacted(&store, store.current_revision() - 300);
}

#[test]
fn a_backlog_that_fell_behind_the_live_feed_is_overtaken_by_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut watch) = store_with_a_backlog_read_in_part(dir.path());
    // More than the live feed holds: this watch has lost events and pins nothing any more.
    create(&store, LIVE_FEED_CAPACITY + 100, "more");
    until_compacted(&store, store.current_revision() - 300);
    let ended = drain(watch.backlog.as_mut());
    assert!(
        matches!(ended, Err(Error::Compacted { requested: 556, .. })),
        "{:?}",
        ended.map(|(events, _)| events.len())
    );
}

#[test]
fn several_updates_of_one_key_in_one_batch_conflict_after_the_first() {
    let (_dir, store) = open();
    let a = store.create("/t/a", object("a")).unwrap();
    let outcomes = store
        .update_many(vec![
            ("/t/a".into(), object("a"), a.revision),
            ("/t/a".into(), object("a"), a.revision),
        ])
        .unwrap();
    assert!(outcomes[0].is_ok());
    assert!(matches!(outcomes[1], Err(Error::Conflict { .. })));
}

#[test]
fn reopening_keeps_objects_and_the_revision_counter() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let revision = {
        let store = SqliteStore::open(&path).unwrap();
        store.create("/t/a", object("a")).unwrap().revision
    };
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.current_revision(), revision);
    assert!(store.create("/t/b", object("b")).unwrap().revision > revision);
    assert!(store.get("/t/a").unwrap().is_some());
}
