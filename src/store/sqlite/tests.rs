//! Tests of the SQLite store.

use super::*;
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

#[test]
fn watch_replays_history_after_a_revision_then_streams_live() {
    let (_dir, store) = open();
    let a = store.create("/t/a", object("a")).unwrap();
    store.create("/t/b", object("b")).unwrap();
    let mut watch = store.watch("/t/", a.revision).unwrap();
    assert_eq!(watch.backlog.len(), 1);
    assert_eq!(watch.backlog[0].entry.key, "/t/b");
    store.delete("/t/a", None).unwrap();
    let live = watch.live.try_recv().unwrap();
    assert_eq!(live.kind, EventKind::Delete);
    assert_eq!(live.prev.unwrap()["metadata"]["name"], "a");
}

#[test]
fn watch_from_a_compacted_revision_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_with_history(&dir.path().join("s.db"), 5).unwrap();
    let first = store.create("/t/a", object("a")).unwrap();
    let mut revision = first.revision;
    for _ in 0..COMPACT_EVERY {
        revision = store
            .update("/t/a", object("a"), revision)
            .unwrap()
            .revision;
    }
    assert!(matches!(
        store.watch("/t/", first.revision),
        Err(Error::Compacted { .. })
    ));
    assert!(store.watch("/t/", revision - 2).is_ok());
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
