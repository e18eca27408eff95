//! Regressions found in review: each test failed before its fix.

use std::time::{Duration, Instant};

use sessiondir::{Dict, Error, Store, Value};

use crate::common::{TestStore, temp_files};

/// A session held by thread A, waited for by thread B of the same process, deleted (or moved
/// to a new id) by A: B must hear `Deleted`, not `NotFound`.
#[test]
fn a_waiting_thread_of_the_same_process_gets_deleted() {
    for cycle in [false, true] {
        let ts = TestStore::new();
        let id = ts.store.create(&Dict::new()).unwrap();
        let held = ts.store.checkout::<Dict>(&id).unwrap();
        let store = ts.store.clone();
        let waiter = std::thread::spawn(move || store.checkout::<Dict>(&id).map(drop));
        // Give the waiter time to queue behind us (the local queue has no public probe). If it
        // were late it would report NotFound and fail the test, never pass it wrongly.
        std::thread::sleep(Duration::from_millis(200));
        assert!(!waiter.is_finished(), "the waiter must still be waiting");
        if cycle {
            let mut held = held;
            held.cycle_id().unwrap();
            held.check_in().unwrap();
        } else {
            held.delete().unwrap();
        }
        let result = waiter.join().unwrap();
        assert!(
            matches!(result, Err(Error::Deleted { id: got }) if got == id),
            "cycle={cycle}: {result:?}"
        );
    }
}

/// A lock file removed from under its holder (a temporary-file cleaner, a hand): the check-in
/// must refuse to write, since another process may hold the session through a new lock file.
#[test]
fn check_in_refuses_when_the_lock_file_was_removed_while_held() {
    let ts = TestStore::new();
    let mut d = Dict::new();
    d.insert("n", 1i64);
    let id = ts.store.create(&d).unwrap();
    let mut first = ts.store.checkout::<Dict>(&id).unwrap();
    let lock = crate::common::lock_path_of(&ts.store, &id);
    unlink(&lock);
    // A second holder (another handle, as another process would be) gets in through a
    // recreated lock file and checks in n = 2.
    let other = Store::open(&ts.dir).unwrap();
    let mut second = other.checkout::<Dict>(&id).unwrap();
    second.data_mut().insert("n", 2i64);
    second.check_in().unwrap();
    // The first holder's stale check-in must not overwrite it.
    first.data_mut().insert("n", 100i64);
    let err = first.check_in().unwrap_err();
    assert!(
        matches!(err.error(), Error::LockLost { id: got, .. } if *got == id),
        "{err}"
    );
    let back = err.into_checkout();
    assert_eq!(
        back.data().get_i64("n"),
        Some(100),
        "the guard keeps its data"
    );
    drop(back);
    let now: Dict = ts.store.load(&id).unwrap().unwrap();
    assert_eq!(now.get_i64("n"), Some(2));
    assert_eq!(temp_files(&ts.dir), Vec::<std::path::PathBuf>::new());
}

#[allow(clippy::disallowed_methods)] // damaging the store from outside, on purpose
fn unlink(path: &std::path::Path) {
    std::fs::remove_file(path).unwrap();
}

/// Only the root may be a symlink; a shard directory replaced by one is refused at open.
#[test]
fn a_symlinked_shard_directory_is_refused() {
    let ts = TestStore::new();
    let shard = ts.dir.join("sessions").join("0");
    let elsewhere = ts.dir.parent().unwrap().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::remove_dir(&shard).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &shard).unwrap();
    let err = Store::open(&ts.dir).unwrap_err();
    assert!(
        matches!(&err, Error::UnsafePath { path, .. } if *path == shard),
        "{err}"
    );
}

/// Extreme settings are clamped, not panics.
#[test]
fn extreme_settings_do_not_panic() {
    let ts = TestStore::with(|b| b.lock_timeout(Duration::MAX).max_session_size(u64::MAX));
    let id = ts.store.create(&Dict::new()).unwrap();
    let mut c = ts.store.checkout::<Dict>(&id).unwrap();
    c.data_mut().insert("k", "v");
    c.check_in().unwrap();
    assert_eq!(
        ts.store.load::<Dict>(&id).unwrap().unwrap().get_str("k"),
        Some("v")
    );
}

/// One bad leftover does not stop tidy (or close): it is refused (named, left alone), the rest
/// is cleaned.
#[test]
fn tidy_goes_on_past_an_entry_it_cannot_remove() {
    let ts = TestStore::new();
    let id = ts.store.create(&Dict::new()).unwrap();
    let shard = ts.store.session_path(&id).parent().unwrap().to_path_buf();
    std::fs::create_dir(shard.join(format!(".{id}.dir.tmp"))).unwrap();
    std::fs::write(shard.join(format!(".{id}.stale.tmp")), b"x").unwrap();
    let dir_temp = shard.join(format!(".{id}.dir.tmp"));
    let report = ts.store.tidy().unwrap();
    let refused: Vec<_> = report.refused.iter().map(|r| r.path.clone()).collect();
    assert_eq!(refused, std::slice::from_ref(&dir_temp));
    assert_eq!((report.failed, report.temp_files_removed), (0, 1));
    assert!(dir_temp.is_dir(), "left alone");
    let report = Store::open(&ts.dir).unwrap().close().unwrap();
    assert_eq!((report.refused.len(), report.temp_files_removed), (1, 0));
}

/// Sessions larger than the first read buffer round-trip (the buffer is sized from the header).
#[test]
fn large_sessions_round_trip() {
    let ts = TestStore::new();
    let mut d = Dict::new();
    let blob: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    d.insert("blob", Value::Bytes(blob.clone()));
    let id = ts.store.create(&d).unwrap();
    let start = Instant::now();
    let mut c = ts.store.checkout::<Dict>(&id).unwrap();
    assert_eq!(c.data().get("blob"), Some(&Value::Bytes(blob.clone())));
    c.data_mut().insert("n", 1i64);
    c.check_in().unwrap();
    let back: Dict = ts.store.load(&id).unwrap().unwrap();
    assert_eq!(back.get("blob"), Some(&Value::Bytes(blob)));
    assert_eq!(back.get_i64("n"), Some(1));
    assert!(start.elapsed() < Duration::from_secs(10));
}
