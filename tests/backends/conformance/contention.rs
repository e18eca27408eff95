//! Holders and everyone else: `Busy` and `LockTimeout`, waiters that get the session after
//! the holder and see its write, no lost update under contention, and reads that never wait.

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use sessiondir::{AcquiredBy, Backend, Dict, Error, Expiry, SessionId, Value};

use super::fixture::{Fixture, PATIENCE, Settings, conformance_tests};
use super::helpers::{acquisitions, dict, free_again, generation, n_of, observed_handle, within};
use crate::common::wait_until;

// ---------------------------------------------------------------------------------------------
// Busy and LockTimeout.
// ---------------------------------------------------------------------------------------------

fn busy_and_lock_timeout<F: Fixture>() {
    const TIMEOUT: Duration = Duration::from_millis(300);
    let fx = F::start_with(Settings::lock_timeout(TIMEOUT));
    let store = fx.store();
    let id = store
        .create(&dict(&[("n", Value::Int(1))]))
        .expect("create");
    let stats0 = fx.lock_stats();
    let mut held = store.checkout::<Dict>(&id).expect("check out");
    let other = store.clone();

    let start = Instant::now();
    let error = other.try_checkout::<Dict>(&id).expect_err("held");
    assert!(
        matches!(error, Error::Busy { id: e } if e == id),
        "{error:?}"
    );
    assert!(start.elapsed() < TIMEOUT, "try_checkout does not wait");

    let start = Instant::now();
    let error = other.checkout::<Dict>(&id).expect_err("held");
    let elapsed = start.elapsed();
    match error {
        Error::LockTimeout { id: e, waited } => {
            assert_eq!(e, id);
            assert!(waited >= TIMEOUT, "waited {waited:?}");
        }
        other => panic!("expected LockTimeout, got {other:?}"),
    }
    assert!(
        (TIMEOUT..PATIENCE).contains(&elapsed),
        "gave up after {elapsed:?}"
    );

    // Everything else that takes the lock waits for the holder too, and gives up the same way.
    for (what, result) in [
        ("delete", other.delete(&id).map(drop)),
        ("cycle_id", other.cycle_id(&id).map(drop)),
        ("touch", other.touch(&id).map(drop)),
        ("set_expiry", other.set_expiry(&id, Expiry::Never).map(drop)),
    ] {
        let error = result.expect_err(what);
        assert!(
            matches!(error, Error::LockTimeout { id: e, .. } if e == id),
            "{what}: {error:?}"
        );
    }
    assert!(store.exists(&id).expect("exists"), "nothing was deleted");

    let stats = fx.lock_stats();
    assert_eq!(acquisitions(&stats) - acquisitions(&stats0), 1, "{stats:?}");
    assert_eq!(stats.busy - stats0.busy, 1, "{stats:?}");
    assert_eq!(stats.timeouts - stats0.timeouts, 5, "{stats:?}");

    // The holder was never disturbed.
    held.data_mut().insert("n", 2);
    held.check_in().expect("check in");
    assert_eq!(n_of(store, &id), 2);
    assert_eq!(generation(store, &id), 2);
    free_again(&other, &id, "free again");
}

// ---------------------------------------------------------------------------------------------
// A waiter gets the session after the holder checks in, and sees its write.
// ---------------------------------------------------------------------------------------------

fn waiters_get_the_session_after_the_holder_and_see_its_write<F: Fixture>() {
    let fx = F::start();
    let store = fx.store();
    let id = store
        .create(&dict(&[("n", Value::Int(0))]))
        .expect("create");
    let mut holder = store.checkout::<Dict>(&id).expect("check out");
    holder.data_mut().insert("n", 1);

    let waiter = |handle: F::B| {
        thread::spawn(move || {
            let mut session = handle.checkout::<Dict>(&id).expect("waiter checks out");
            let seen = session.data().get_i64("n").expect("n");
            let generation = session.info().generation;
            let by = session.acquisition().by;
            session.data_mut().increment("n", 1).expect("increment");
            session.check_in().expect("waiter checks in");
            (seen, generation, by)
        })
    };
    // A waiter on a clone (in the directory: queued in memory, announced to nobody) ...
    let local = waiter(store.clone());
    // ... and one on an independent handle, known to be blocked once its observer hears so.
    let (handle, waits) = observed_handle(&fx);
    let remote = waiter(handle);
    wait_until(PATIENCE, "the second waiter to wait", || {
        waits.count(&id) == 1
    });
    assert!(!remote.is_finished(), "the waiter is blocked while held");

    holder.check_in().expect("holder checks in");
    let (remote_seen, remote_generation, remote_by) = remote.join().expect("remote waiter");
    let (local_seen, local_generation, _) = local.join().expect("local waiter");
    assert_ne!(remote_by, AcquiredBy::Immediately, "the waiter waited");

    // Whichever went first saw the holder's write (1), the other saw the first waiter's (2).
    let mut seen = [
        (remote_seen, remote_generation),
        (local_seen, local_generation),
    ];
    seen.sort_unstable();
    assert_eq!(seen, [(1, 2), (2, 3)], "never the old data");
    assert_eq!(n_of(store, &id), 3);
    assert_eq!(generation(store, &id), 4);
}

// ---------------------------------------------------------------------------------------------
// No lost update under contention.
// ---------------------------------------------------------------------------------------------

const THREADS: usize = 4;
const INCREMENTS: usize = 50;

fn increment_from_threads<B: Backend>(store: &B, ids: &[SessionId]) {
    let ids: Arc<[SessionId]> = ids.into();
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let store = store.clone();
            let ids = Arc::clone(&ids);
            thread::spawn(move || {
                // Every thread increments every session INCREMENTS times, in rotation.
                for r in 0..INCREMENTS * ids.len() {
                    let id = &ids[(t + r) % ids.len()];
                    let mut session = store.checkout::<Dict>(id).expect("check out");
                    session.data_mut().increment("n", 1).expect("increment");
                    session.check_in().expect("check in");
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("worker");
    }
}

fn no_lost_update_on_one_hot_session<F: Fixture>() {
    let fx = F::start();
    let store = fx.store();
    let id = store.create(&Dict::new()).expect("create");
    let stats0 = fx.lock_stats();
    increment_from_threads(store, &[id]);
    let total = (THREADS * INCREMENTS) as i64;
    assert_eq!(n_of(store, &id), total);
    assert_eq!(generation(store, &id), 1 + total as u64);
    let stats = fx.lock_stats();
    assert_eq!(
        acquisitions(&stats) - acquisitions(&stats0),
        total as u64,
        "{stats:?}"
    );
    assert_eq!(
        (stats.timeouts, stats.busy),
        (stats0.timeouts, stats0.busy),
        "{stats:?}"
    );
}

fn no_lost_update_spread_over_sessions<F: Fixture>() {
    const SESSIONS: usize = 3;
    let fx = F::start();
    let store = fx.store();
    let ids: Vec<SessionId> = (0..SESSIONS)
        .map(|_| store.create(&Dict::new()).expect("create"))
        .collect();
    increment_from_threads(store, &ids);
    let each = (THREADS * INCREMENTS) as i64;
    for id in &ids {
        assert_eq!(n_of(store, id), each, "session {id}");
        assert_eq!(generation(store, id), 1 + each as u64, "session {id}");
    }
}

// ---------------------------------------------------------------------------------------------
// Lock-free reads during a hold.
// ---------------------------------------------------------------------------------------------

fn reads_never_wait_for_a_holder<F: Fixture>() {
    let fx = F::start();
    let store = fx.store();
    let id = store
        .create(&dict(&[("n", Value::Int(1))]))
        .expect("create");
    let mut held = store.checkout::<Dict>(&id).expect("check out");
    held.data_mut().insert("n", 2); // not written yet

    let read = |handle: F::B| {
        within("a read during the hold", move || {
            let data = handle.load::<Dict>(&id).expect("load").expect("exists");
            let snapshot = handle
                .snapshot::<Dict>(&id)
                .expect("snapshot")
                .expect("exists");
            let exists = handle.exists(&id).expect("exists");
            let info = handle.info(&id).expect("info").expect("exists");
            assert_eq!(snapshot.data, data);
            assert_eq!(snapshot.info, info);
            assert!(exists);
            (data.get_i64("n"), info.generation)
        })
    };
    let another = fx.open_another(Settings::default());
    assert_eq!(
        read(store.clone()),
        (Some(1), 1),
        "the last checked-in version"
    );
    assert_eq!(read(another.clone()), (Some(1), 1));

    held.save().expect("save");
    assert_eq!(read(store.clone()), (Some(2), 2), "the saved version");
    assert_eq!(read(another.clone()), (Some(2), 2));
    assert!(matches!(
        store.try_checkout::<Dict>(&id),
        Err(Error::Busy { .. })
    ));

    held.data_mut().insert("n", 3);
    held.check_in().expect("check in");
    assert_eq!(read(another), (Some(3), 3));
}

conformance_tests!(
    busy_and_lock_timeout,
    waiters_get_the_session_after_the_holder_and_see_its_write,
    no_lost_update_on_one_hot_session,
    no_lost_update_spread_over_sessions,
    reads_never_wait_for_a_holder,
);
