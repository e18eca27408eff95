//! Walks over every session: `ids()` lists exactly the live ones, `delete_idle` collects
//! the idle ones and skips fresh and held ones.

use std::collections::HashSet;
use std::time::Duration;

use sessiondir::{Backend, Dict, Expiry, SessionId, Value};

use super::fixture::{Fixture, PATIENCE, conformance_tests};
use super::helpers::{dict, drawn_id, id_set, n_of, sample};
use crate::common::wait_until;

// ---------------------------------------------------------------------------------------------
// ids().
// ---------------------------------------------------------------------------------------------

fn ids_lists_exactly_the_live_sessions<F: Fixture>() {
    let fx = F::start();
    let store = fx.store();
    assert!(store.ids().next().is_none(), "a fresh store is empty");
    let mut ids: Vec<SessionId> = (0..6)
        .map(|i| {
            store
                .create(&dict(&[("i", Value::Int(i))]))
                .expect("create")
        })
        .collect();
    let with_id = drawn_id();
    store
        .create_with_id(
            &with_id,
            &Dict::new(),
            Expiry::Idle(Duration::from_secs(60)),
        )
        .expect("create_with_id");
    ids.push(with_id);
    assert_eq!(id_set(store), ids.iter().copied().collect());

    assert!(store.delete(&ids[0]).expect("delete"));
    store
        .checkout::<Dict>(&ids[1])
        .expect("check out")
        .delete()
        .expect("Checkout::delete");
    let cycled = store.cycle_id(&ids[2]).expect("cycle_id");
    let held = store.checkout::<Dict>(&ids[3]).expect("check out");
    let expected: HashSet<SessionId> = [ids[3], ids[4], ids[5], with_id, cycled]
        .into_iter()
        .collect();
    assert_eq!(id_set(store), expected, "a held session is listed too");
    held.release();
    assert_eq!(id_set(store), expected);
}

// ---------------------------------------------------------------------------------------------
// delete_idle.
// ---------------------------------------------------------------------------------------------

fn delete_idle_skips_fresh_and_held_sessions<F: Fixture>() {
    const IDLE: Duration = Duration::from_millis(400);
    let fx = F::start();
    let store = fx.store();
    let old: Vec<SessionId> = (0..3)
        .map(|i| {
            store
                .create(&dict(&[("i", Value::Int(i))]))
                .expect("create")
        })
        .collect();
    wait_until(PATIENCE, "the old sessions to be idle", || {
        old.iter().all(|id| {
            let info = store.info(id).expect("info").expect("exists");
            info.idle_for() > IDLE + Duration::from_millis(20)
        })
    });
    let fresh: Vec<SessionId> = (0..2)
        .map(|_| store.create(&sample()).expect("create"))
        .collect();
    let mut held = store.checkout::<Dict>(&old[0]).expect("check out");
    // A held session that is not idle is not a candidate: not counted as skipped.
    let held_fresh = store.checkout::<Dict>(&fresh[1]).expect("check out");
    let freed: u64 = old[1..]
        .iter()
        .map(|id| store.info(id).expect("info").expect("exists").file_len())
        .sum();

    let report = store.delete_idle(IDLE).expect("delete_idle");
    assert_eq!(
        (
            report.scanned,
            report.deleted,
            report.skipped_busy,
            report.damaged
        ),
        (5, 2, 1, 0),
        "{report:?}"
    );
    assert_eq!(report.bytes_freed, freed, "{report:?}");
    for id in &old[1..] {
        assert_eq!(store.load::<Dict>(id).expect("load"), None, "{id} deleted");
    }
    for id in &fresh {
        assert_eq!(
            store.load::<Dict>(id).expect("load"),
            Some(sample()),
            "{id} kept"
        );
    }
    let expected: HashSet<SessionId> = [old[0], fresh[0], fresh[1]].into_iter().collect();
    assert_eq!(id_set(store), expected);
    held_fresh.release();

    // The held session was not touched; its check-in lands and makes it fresh.
    held.data_mut().insert("n", 1);
    held.check_in().expect("check in");
    assert_eq!(n_of(store, &old[0]), 1);
    let report = store.delete_idle(IDLE).expect("delete_idle");
    assert_eq!(
        (
            report.scanned,
            report.deleted,
            report.skipped_busy,
            report.damaged,
            report.bytes_freed
        ),
        (3, 0, 0, 0, 0),
        "{report:?}"
    );
}

conformance_tests!(
    ids_lists_exactly_the_live_sessions,
    delete_idle_skips_fresh_and_held_sessions,
);
