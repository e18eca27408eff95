//! Garbage collection: `delete_expired` deletes exactly the expired sessions, `delete_idle`
//! only the idle ones (skipping held ones), check-ins and touches counting as activity.

use std::collections::HashSet;
use std::fs;
use std::time::{Duration, SystemTime};

use sessiondir::{Dict, Expiry, HEADER_LEN, SessionId, Store};

use super::helpers::{counter_dict, ms, whole_ms_from_now};
use crate::common::{TestStore, entry_state, fix_header_crc, lock_path_of};

#[test]
fn delete_expired_deletes_exactly_the_expired_sessions() {
    let ts = TestStore::new();
    let store = &ts.store;
    let past = whole_ms_from_now(-10_000);
    let future = whole_ms_from_now(3_600_000);
    let mut expired = HashSet::new();
    let mut expired_bytes = 0u64;
    for i in 0..10usize {
        let data = vec![i as u8; i * 10];
        let id = store.create_with_expiry(&data, Expiry::At(past)).unwrap();
        expired_bytes += (HEADER_LEN + postcard::to_stdvec(&data).unwrap().len()) as u64;
        expired.insert(id);
    }
    let mut live = HashSet::new();
    for i in 0..7usize {
        live.insert(store.create(&vec![1u8; i]).unwrap());
    }
    for _ in 0..5 {
        live.insert(
            store
                .create_with_expiry(&vec![2u8; 3], Expiry::At(future))
                .unwrap(),
        );
    }
    for _ in 0..3 {
        live.insert(
            store
                .create_with_expiry(&vec![3u8; 3], Expiry::Idle(Duration::from_secs(3600)))
                .unwrap(),
        );
    }
    let expired_locks: Vec<_> = expired.iter().map(|id| lock_path_of(store, id)).collect();

    let report = store.delete_expired().unwrap();
    assert_eq!(report.scanned, 25);
    assert_eq!(report.deleted, 10);
    assert_eq!(report.skipped_busy, 0);
    assert_eq!(report.damaged, 0);
    assert!(report.bytes_freed > 0);
    assert_eq!(report.bytes_freed, expired_bytes);

    for id in &expired {
        assert_eq!(store.info(id).unwrap(), None);
    }
    assert!(expired_locks.iter().all(|p| entry_state(p).is_none()));
    for id in &live {
        assert!(store.exists(id).unwrap());
    }
    let remaining: HashSet<SessionId> = store.ids().map(Result::unwrap).collect();
    assert_eq!(remaining, live);

    let again = store.delete_expired().unwrap();
    assert_eq!(
        (again.scanned, again.deleted, again.bytes_freed),
        (15, 0, 0)
    );
}

/// Sessions made idle for a fixed time by rewriting `modified_ms` in their header (and fixing
/// the header checksum), so the test does not depend on how fast it runs.
fn age_session(store: &Store, id: &SessionId, age: Duration) {
    let path = store.session_path(id);
    let mut bytes = fs::read(&path).unwrap();
    let modified = ms(SystemTime::now()) - age.as_millis() as u64;
    bytes[24..32].copy_from_slice(&modified.to_le_bytes());
    fix_header_crc(&mut bytes);
    fs::write(&path, &bytes).unwrap();
}

#[test]
fn delete_idle_deletes_only_idle_sessions_and_skips_held_ones() {
    let ts = TestStore::new();
    let store = &ts.store;
    let hour = Duration::from_secs(3600);
    let idle: Vec<SessionId> = (0..6)
        .map(|_| store.create(&vec![9u8; 20]).unwrap())
        .collect();
    let fresh: Vec<SessionId> = (0..4)
        .map(|_| store.create(&vec![8u8; 20]).unwrap())
        .collect();
    for id in &idle {
        age_session(store, id, 2 * hour);
    }
    // One idle session is checked out: in use, so not deleted.
    let held = store.checkout::<Vec<u8>>(&idle[0]).unwrap();

    let report = store.delete_idle(hour).unwrap();
    assert_eq!(report.scanned, 10);
    assert_eq!(report.deleted, 5);
    assert_eq!(report.skipped_busy, 1);
    assert_eq!(report.damaged, 0);
    assert_eq!(report.bytes_freed, 5 * (HEADER_LEN as u64 + 21));
    for id in &idle[1..] {
        assert_eq!(store.info(id).unwrap(), None);
    }
    for id in &fresh {
        assert!(store.exists(id).unwrap());
    }
    assert!(store.exists(&idle[0]).unwrap());

    // Released without a check-in it is still idle and goes on the next pass.
    drop(held);
    let report = store.delete_idle(hour).unwrap();
    assert_eq!(
        (report.scanned, report.deleted, report.skipped_busy),
        (5, 1, 0)
    );
    let remaining: HashSet<SessionId> = store.ids().map(Result::unwrap).collect();
    assert_eq!(remaining, fresh.into_iter().collect());
}

#[test]
fn delete_idle_counts_check_ins_and_touches_as_activity() {
    let ts = TestStore::new();
    let store = &ts.store;
    let idle = Duration::from_millis(800);
    let untouched = store.create(&counter_dict(1)).unwrap();
    let touched = store.create(&counter_dict(2)).unwrap();
    let checked_in = store.create(&counter_dict(3)).unwrap();
    // Let the clock pass the idle limit for all three ...
    std::thread::sleep(idle + Duration::from_millis(200));
    // ... then use two of them.
    store.touch(&touched).unwrap();
    store
        .checkout::<Dict>(&checked_in)
        .unwrap()
        .check_in()
        .unwrap();
    let report = store.delete_idle(idle).unwrap();
    assert_eq!((report.scanned, report.deleted), (3, 1));
    assert_eq!(store.info(&untouched).unwrap(), None);
    assert!(store.exists(&touched).unwrap());
    assert!(store.exists(&checked_in).unwrap());
}
