//! Reads keep a sliding session alive (issue 18, point 2), in both backends: a visitor's
//! lock-free reads (`load`, `snapshot`, `mark_active`) and unchanged check-ins
//! (`check_in_if_changed`) keep a session with a 2 s idle lifetime alive across 0.7 s gaps
//! without a write (generation 1), throttled to one recorded activity per quarter lifetime,
//! and every expiry decision (exists, info, check-out) agrees; admin reads record nothing.

use std::time::{Duration, Instant};

use sessiondir::{Backend, Dict, Expiry};

use super::fixture::{Fixture, PATIENCE, conformance_tests};
use super::helpers::sample;
use crate::common::wait_until;

const TTL: Duration = Duration::from_secs(2);
/// The visitor's pace: three visits per lifetime.
const PACE: Duration = Duration::from_millis(700);
/// Six visits: the last lands 4.2 s after the write, past the 2 s the header alone promises.
const VISITS: u32 = 6;

fn visitor_reads_keep_a_sliding_session_alive_without_a_write<F: Fixture>() {
    let fx = F::start();
    let store = fx.store();
    let id = store
        .create_with_expiry(&sample(), Expiry::Idle(TTL))
        .expect("create");
    let start = Instant::now();
    for n in 0..VISITS {
        // Pacing the visitor, not an assertion: each read is judged by its answer.
        std::thread::sleep(PACE);
        let read = match n % 3 {
            0 => store.load::<Dict>(&id).expect("load").is_some(),
            1 => store.snapshot::<Dict>(&id).expect("snapshot").is_some(),
            _ => store.mark_active(&id).expect("mark_active").is_some(),
        };
        assert!(read, "visit {n}, {:?} after the write", start.elapsed());
    }
    assert!(start.elapsed() > TTL);
    // Every expiry decision agrees, and nothing was rewritten.
    assert!(store.exists(&id).expect("exists"));
    let info = store.info(&id).expect("info").expect("live");
    assert!(!info.is_expired(), "{info:?}");
    assert_eq!(info.generation, 1);
    let c = store
        .checkout::<Dict>(&id)
        .expect("check out a live session");
    c.release();

    // Once the visitor stops, it expires (polled with `exists`, which records nothing).
    wait_until(PATIENCE, "the session to expire", || {
        !store.exists(&id).expect("exists")
    });
    assert_eq!(store.load::<Dict>(&id).expect("load"), None);
    assert_eq!(store.mark_active(&id).expect("mark_active"), None);
}

fn a_burst_of_reads_records_one_activity<F: Fixture>() {
    let fx = F::start();
    let store = fx.store();
    let id = store
        .create_with_expiry(&sample(), Expiry::Idle(TTL))
        .expect("create");
    let written = store.info(&id).expect("info").expect("live").modified;
    // A fresh session: a burst records nothing.
    for _ in 0..50 {
        store.mark_active(&id).expect("mark_active").expect("live");
        store.load::<Dict>(&id).expect("load").expect("live");
    }
    assert_eq!(
        store.info(&id).expect("info").expect("live").modified,
        written
    );
    // A quarter lifetime later, the first read records; the rest of the burst does not.
    std::thread::sleep(TTL / 4 + Duration::from_millis(100));
    let first = store.mark_active(&id).expect("mark_active").expect("live");
    assert!(first.modified > written, "{first:?}");
    assert_eq!(first.expires, Some(first.modified + TTL));
    for _ in 0..50 {
        store.load::<Dict>(&id).expect("load").expect("live");
        store.mark_active(&id).expect("mark_active").expect("live");
    }
    let info = store.info(&id).expect("info").expect("live");
    assert_eq!(info.modified, first.modified);
    assert_eq!(info.generation, 1);
    // Admin reads count the activity but never record one: `info` and `exists` only.
    std::thread::sleep(TTL / 4 + Duration::from_millis(100));
    for _ in 0..10 {
        assert!(store.exists(&id).expect("exists"));
        store.info(&id).expect("info").expect("live");
    }
    assert_eq!(
        store.info(&id).expect("info").expect("live").modified,
        first.modified
    );
}

fn unchanged_check_ins_write_nothing_yet_slide<F: Fixture>() {
    let fx = F::start();
    let store = fx.store();
    let id = store
        .create_with_expiry(&sample(), Expiry::Idle(TTL))
        .expect("create");
    for n in 0..VISITS {
        std::thread::sleep(PACE);
        let mut c = store.checkout::<Dict>(&id).expect("check out");
        // Written back as it was: no change.
        let same = c.data().clone();
        *c.data_mut() = same;
        let written = c.check_in_if_changed().expect("check in");
        assert!(!written, "visit {n} wrote an unchanged session");
    }
    let info = store.info(&id).expect("info").expect("kept alive");
    assert!(!info.is_expired(), "{info:?}");
    assert_eq!(info.generation, 1);

    // A change, an expiry change and an id cycle are written.
    let mut c = store.checkout::<Dict>(&id).expect("check out");
    c.data_mut().insert("n", 1i64);
    assert!(c.check_in_if_changed().expect("check in"));
    assert_eq!(store.info(&id).expect("info").expect("live").generation, 2);
    let mut c = store.checkout::<Dict>(&id).expect("check out");
    c.set_expiry(Expiry::Idle(TTL * 2));
    assert!(c.check_in_if_changed().expect("check in"));
    let info = store.info(&id).expect("info").expect("live");
    assert_eq!((info.generation, info.idle_ttl), (3, Some(TTL * 2)));
    let mut c = store.checkout::<Dict>(&id).expect("check out");
    let moved = c.cycle_id().expect("cycle");
    assert!(c.check_in_if_changed().expect("check in"));
    assert_eq!(
        store.info(&moved).expect("info").expect("live").generation,
        4
    );
}

conformance_tests!(
    visitor_reads_keep_a_sliding_session_alive_without_a_write,
    a_burst_of_reads_records_one_activity,
    unchanged_check_ins_write_nothing_yet_slide,
);
