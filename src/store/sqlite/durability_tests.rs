//! Durability of the SQLite store on a disk that loses what was not synced: writes are answered
//! and visible only once synced, writers share syncs, a failed sync stops the store, and a power
//! loss keeps every revision anyone saw.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::broadcast::error::TryRecvError;

use super::*;

#[path = "../../../tests/integration/power_loss.rs"]
mod power_loss;
use power_loss::Disk;

const LIMIT: Duration = Duration::from_secs(10);

fn object(name: &str) -> Value {
    json!({"metadata": {"name": name}})
}

fn open_on(disk: &Disk) -> SqliteStore {
    let options = SqliteOptions {
        vfs: Some(disk.vfs()),
        ..SqliteOptions::default()
    };
    SqliteStore::open_with(&disk.live("store.db"), options).unwrap()
}

fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + LIMIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_write_is_neither_answered_nor_visible_before_its_commit_is_synced() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Disk::new(dir.path());
    let store = Arc::new(open_on(&disk));
    store.create("/t/warm", object("warm")).unwrap();
    let before = store.current_revision();
    let mut watch = store.watch("/t/", before).unwrap();

    let held = disk.hold_syncs();
    let writer = {
        let store = store.clone();
        std::thread::spawn(move || store.create("/t/a", object("a")))
    };
    assert!(disk.wait_for_held_sync(LIMIT), "the commit syncs the log");
    assert!(
        store.get("/t/a").unwrap().is_none(),
        "visible before synced"
    );
    assert_eq!(store.list("/t/").unwrap().revision, before);
    assert_eq!(store.current_revision(), before);
    assert!(matches!(watch.live.try_recv(), Err(TryRecvError::Empty)));
    assert!(!writer.is_finished(), "answered before synced");

    drop(held);
    let created = writer.join().unwrap().unwrap();
    assert_eq!(store.get("/t/a").unwrap().unwrap(), created);
    assert_eq!(
        watch.live.try_recv().unwrap().entry.revision,
        created.revision
    );
}

#[test]
fn writers_queued_during_a_sync_share_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Disk::new(dir.path());
    let store = Arc::new(open_on(&disk));
    store.create("/t/warm", object("warm")).unwrap();

    let held = disk.hold_syncs();
    let create = |name: String| {
        let store = store.clone();
        std::thread::spawn(move || store.create(&format!("/t/{name}"), object(&name)))
    };
    let first = create("first".into());
    assert!(disk.wait_for_held_sync(LIMIT), "the first commit syncs");
    let queued: Vec<_> = (0..7).map(|i| create(format!("q{i}"))).collect();
    until("seven writes wait", || store.waiting_writes() == 7);
    let syncs = disk.syncs();
    drop(held);

    first.join().unwrap().unwrap();
    for writer in queued {
        writer.join().unwrap().unwrap();
    }
    assert_eq!(
        disk.syncs() - syncs,
        2,
        "one sync for the first write, one for the seven queued behind it"
    );
}

#[test]
fn a_failed_sync_stops_the_store_until_it_is_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Disk::new(dir.path());
    let store = open_on(&disk);
    let kept = store.create("/t/kept", object("kept")).unwrap();

    disk.fail_syncs();
    let failed = store.create("/t/failed", object("failed")).unwrap_err();
    assert!(matches!(failed, Error::Backend(_)), "{failed}");
    let refused = store.update("/t/kept", object("kept"), kept.revision);
    assert!(
        matches!(&refused, Err(Error::Stopped(reason)) if reason.contains("committing")),
        "{refused:?}"
    );
    // Readers keep what was durable; the failed write never became visible.
    assert_eq!(store.current_revision(), kept.revision);
    assert!(store.get("/t/failed").unwrap().is_none());
    drop(store);

    disk.repair();
    let reopened = open_on(&disk);
    assert_eq!(reopened.get("/t/kept").unwrap().unwrap(), kept);
    let after = reopened.create("/t/after", object("after")).unwrap();
    assert!(after.revision > kept.revision);
}

/// What clients saw before the power went off: revision → key.
type Seen = Arc<Mutex<HashMap<Revision, String>>>;

fn write_until_refused(store: Arc<SqliteStore>, disk: Arc<Disk>, seen: Seen, writer: usize) {
    // Stops at the power-off even when writes keep being answered (a store that never syncs).
    for n in 0.. {
        if disk.is_off() {
            return;
        }
        let key = format!("/t/w{writer}-{n}");
        let Ok(entry) = store.create(&key, object("w")) else {
            return;
        };
        // Checked after the answer: if the power is still on now, it was on when answered.
        if !disk.is_off() {
            seen.lock().unwrap().insert(entry.revision, key);
        }
    }
}

fn watch_until(
    store: &SqliteStore,
    disk: Arc<Disk>,
    seen: Seen,
    done: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    let mut live = store.watch("/t/", store.current_revision()).unwrap().live;
    std::thread::spawn(move || {
        loop {
            match live.try_recv() {
                Ok(event) if !disk.is_off() => {
                    seen.lock()
                        .unwrap()
                        .insert(event.entry.revision, event.entry.key.clone());
                }
                Ok(_) => {}
                Err(TryRecvError::Empty) if done.load(Ordering::SeqCst) => return,
                Err(TryRecvError::Empty) => std::thread::sleep(Duration::from_micros(100)),
                Err(TryRecvError::Closed) => return,
                Err(lagged) => panic!("the watcher lost events: {lagged}"),
            }
        }
    })
}

#[test]
fn after_a_power_loss_every_revision_anyone_saw_is_kept_and_none_is_reused() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Arc::new(Disk::new(dir.path()));
    let store = Arc::new(open_on(&disk));
    let seen: Seen = Arc::default();
    let done = Arc::new(AtomicBool::new(false));
    let watcher = watch_until(&store, disk.clone(), seen.clone(), done.clone());
    let writers: Vec<_> = (0..4)
        .map(|writer| {
            let (store, disk, seen) = (store.clone(), disk.clone(), seen.clone());
            std::thread::spawn(move || write_until_refused(store, disk, seen, writer))
        })
        .collect();
    until("writes were acknowledged", || {
        seen.lock().unwrap().len() > 200
    });

    // While the power fails, syncs hang; whatever clients see meanwhile must survive.
    disk.cut_power();
    std::thread::sleep(Duration::from_millis(100));
    disk.power_off();
    for writer in writers {
        writer.join().unwrap();
    }
    done.store(true, Ordering::SeqCst);
    watcher.join().unwrap();
    drop(store);

    let recovered = SqliteStore::open(&disk.image("store.db")).unwrap();
    let seen = seen.lock().unwrap();
    let newest_seen = *seen.keys().max().unwrap();
    assert!(
        recovered.current_revision() >= newest_seen,
        "the revision went back"
    );
    let mut history = recovered.watch("/t/", 0).unwrap().backlog;
    let mut kept = HashMap::new();
    loop {
        let page = history.next_page().unwrap();
        if page.is_empty() {
            break;
        }
        kept.extend(page.into_iter().map(|e| (e.entry.revision, e.entry.key)));
    }
    for (revision, key) in seen.iter() {
        assert_eq!(
            kept.get(revision),
            Some(key),
            "revision {revision} was lost or reused"
        );
        assert!(recovered.get(key).unwrap().is_some(), "{key} was lost");
    }
    let next = recovered.create("/t/next", object("next")).unwrap();
    assert!(next.revision > newest_seen);
}
