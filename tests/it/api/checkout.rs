//! The check-out life cycle: check-in writes a generation, drop and release write nothing,
//! save keeps the lock, a failed check-in hands the check-out back, contention is `Busy` or
//! `LockTimeout`, check-outs move between threads, a deleted lock file is recreated.

use std::time::Duration;

use sessiondir::{Dict, Error, Store};

use super::helpers::{assert_busy, counter_dict, info, mode_of, unlink};
use crate::common::{TestStore, entry_state, lock_path_of, temp_files};

#[test]
fn check_in_writes_and_increments_the_generation() {
    let ts = TestStore::new();
    let store = &ts.store;
    let id = store.create(&counter_dict(0)).unwrap();
    for round in 1..=5i64 {
        let mut co = store.checkout::<Dict>(&id).unwrap();
        assert_eq!(co.info().generation, round as u64);
        assert_eq!(co.data().get_i64("counter"), Some(round - 1));
        assert_eq!(co.data_mut().increment("counter", 1), Ok(round));
        co.check_in().unwrap();
        let i = info(store, &id);
        assert_eq!(i.generation, round as u64 + 1);
        assert_eq!(
            store.load::<Dict>(&id).unwrap().unwrap().get_i64("counter"),
            Some(round)
        );
    }
    // A check-in releases the lock: another handle gets it at once.
    let other = Store::open(&ts.dir).unwrap();
    other.try_checkout::<Dict>(&id).unwrap().release();
    assert_eq!(temp_files(&ts.dir), Vec::<std::path::PathBuf>::new());
}

#[test]
fn dropping_or_releasing_a_checkout_writes_nothing() {
    let ts = TestStore::new();
    let store = &ts.store;
    let id = store.create(&counter_dict(7)).unwrap();
    let path = store.session_path(&id);
    let before = entry_state(&path).unwrap();

    {
        let mut co = store.checkout::<Dict>(&id).unwrap();
        co.data_mut().insert("counter", 999i64);
        co.data_mut().insert("junk", "x".repeat(100));
        // Dropped here without check_in.
    }
    assert_eq!(entry_state(&path).unwrap(), before, "drop changed the file");

    let mut co = store.checkout::<Dict>(&id).unwrap();
    co.data_mut().clear();
    co.release();
    assert_eq!(
        entry_state(&path).unwrap(),
        before,
        "release changed the file"
    );

    let mut co = store.checkout::<Dict>(&id).unwrap();
    co.data_mut().clear();
    let data = co.into_data();
    assert!(data.is_empty());
    assert_eq!(
        entry_state(&path).unwrap(),
        before,
        "into_data changed the file"
    );

    assert_eq!(info(store, &id).generation, 1);
    assert_eq!(store.load::<Dict>(&id).unwrap(), Some(counter_dict(7)));
    // Each of those released the lock.
    store.try_checkout::<Dict>(&id).unwrap().release();
    assert_eq!(temp_files(&ts.dir), Vec::<std::path::PathBuf>::new());
}

#[test]
fn save_persists_and_keeps_the_lock() {
    let ts = TestStore::new();
    let store = &ts.store;
    let other_process_like = Store::open(&ts.dir).unwrap();
    let id = store.create(&counter_dict(0)).unwrap();

    let mut co = store.checkout::<Dict>(&id).unwrap();
    co.data_mut().increment("counter", 10).unwrap();
    co.save().unwrap();
    assert_eq!(co.info().generation, 2);
    assert_eq!(info(store, &id).generation, 2);
    assert_eq!(
        store.load::<Dict>(&id).unwrap().unwrap().get_i64("counter"),
        Some(10)
    );

    // Still held: neither a clone (same in-process queue) nor a separately opened handle (a
    // different open file description, as in another process) can take it.
    assert_busy(store.clone().try_checkout::<Dict>(&id), &id);
    assert_busy(other_process_like.try_checkout::<Dict>(&id), &id);

    co.data_mut().increment("counter", 1).unwrap();
    co.check_in().unwrap();
    assert_eq!(info(store, &id).generation, 3);
    assert_eq!(
        store.load::<Dict>(&id).unwrap().unwrap().get_i64("counter"),
        Some(11)
    );
    other_process_like
        .try_checkout::<Dict>(&id)
        .unwrap()
        .release();
}

#[test]
fn failed_check_in_hands_back_the_locked_checkout() {
    let ts = TestStore::with(|b| b.max_session_size(64));
    let store = &ts.store;
    let other = Store::builder(&ts.dir).max_session_size(64).open().unwrap();
    let original: Vec<u8> = (0..10).collect();
    let id = store.create(&original).unwrap();
    let path = store.session_path(&id);
    let before = entry_state(&path).unwrap();

    let mut co = store.checkout::<Vec<u8>>(&id).unwrap();
    co.data_mut().resize(200, 7);
    let err = co.check_in().unwrap_err();
    match err.error() {
        Error::TooLarge { path: p, size, max } => {
            assert_eq!(p, &path);
            assert_eq!(*size, 202, "postcard: 2-byte length prefix + 200 bytes");
            assert_eq!(*max, 64);
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains(id.as_str()), "{msg}");
    assert!(msg.contains(&path.display().to_string()), "{msg}");

    // The previous version is intact and nothing was left behind.
    assert_eq!(entry_state(&path).unwrap(), before);
    assert_eq!(store.load::<Vec<u8>>(&id).unwrap(), Some(original.clone()));
    assert_eq!(info(store, &id).generation, 1);
    assert_eq!(temp_files(&ts.dir), Vec::<std::path::PathBuf>::new());

    // The check-out came back still locked, with its (unsaved) data.
    let mut co = err.into_checkout();
    assert_busy(store.try_checkout::<Vec<u8>>(&id), &id);
    assert_busy(other.try_checkout::<Vec<u8>>(&id), &id);
    assert_eq!(co.data().len(), 200);

    // Shrink and retry: succeeds.
    co.data_mut().truncate(20);
    co.check_in().unwrap();
    let mut expected = original;
    expected.resize(20, 7);
    assert_eq!(store.load::<Vec<u8>>(&id).unwrap(), Some(expected));
    assert_eq!(info(store, &id).generation, 2);
    other.try_checkout::<Vec<u8>>(&id).unwrap().release();

    // into_parts gives the same pair.
    let mut co = store.checkout::<Vec<u8>>(&id).unwrap();
    co.data_mut().resize(100, 1);
    let (e, co) = co.check_in().unwrap_err().into_parts();
    assert!(
        matches!(
            e,
            Error::TooLarge {
                size: 101,
                max: 64,
                ..
            }
        ),
        "{e:?}"
    );
    assert_busy(other.try_checkout::<Vec<u8>>(&id), &id);
    co.release();
    other.try_checkout::<Vec<u8>>(&id).unwrap().release();
}

#[test]
fn contended_checkout_is_busy_or_times_out() {
    let ts = TestStore::with(|b| b.lock_timeout(Duration::from_millis(60)));
    let id = ts.store.create(&counter_dict(0)).unwrap();
    let held = ts.store.checkout::<Dict>(&id).unwrap();
    assert_busy(ts.store.try_checkout::<Dict>(&id), &id);
    match ts.store.checkout::<Dict>(&id) {
        Err(Error::LockTimeout { id: got, waited }) => {
            assert_eq!(got, id);
            assert!(waited >= Duration::from_millis(60), "{waited:?}");
        }
        other => panic!("expected LockTimeout, got {other:?}"),
    }
    // Lock-free reads are not blocked by the holder.
    assert_eq!(ts.store.load::<Dict>(&id).unwrap(), Some(counter_dict(0)));
    drop(held);
    ts.store.try_checkout::<Dict>(&id).unwrap().release();
    let stats = ts.store.lock_stats();
    assert_eq!(stats.busy, 1);
    assert_eq!(stats.timeouts, 1);
}

#[test]
fn checkout_moves_between_threads_and_clones() {
    let ts = TestStore::new();
    let id = ts.store.create(&counter_dict(0)).unwrap();
    let mut co = ts.store.checkout::<Dict>(&id).unwrap();
    co.data_mut().increment("counter", 1).unwrap();
    let clone = ts.store.clone();
    std::thread::spawn(move || {
        assert_busy(clone.try_checkout::<Dict>(&id), &id);
        co.check_in().unwrap();
        clone.try_checkout::<Dict>(&id).unwrap().release();
    })
    .join()
    .unwrap();
    assert_eq!(
        ts.store
            .load::<Dict>(&id)
            .unwrap()
            .unwrap()
            .get_i64("counter"),
        Some(1)
    );
}

#[test]
fn a_hand_deleted_lock_file_is_recreated_on_checkout() {
    let ts = TestStore::new();
    let id = ts.store.create(&counter_dict(1)).unwrap();
    let lock = lock_path_of(&ts.store, &id);
    assert!(lock.is_file(), "{}", lock.display());
    unlink(&lock);
    let mut co = ts.store.checkout::<Dict>(&id).unwrap();
    assert!(lock.is_file(), "lock file not recreated");
    assert_eq!(mode_of(&lock), 0o600);
    co.data_mut().increment("counter", 1).unwrap();
    co.check_in().unwrap();
    assert_eq!(
        ts.store
            .load::<Dict>(&id)
            .unwrap()
            .unwrap()
            .get_i64("counter"),
        Some(2)
    );
}
