//! The check-out life cycle without contention: check-in and `save` write a generation
//! each (`save` keeps the session held); dropping, `release` and `into_data` write nothing.

use sessiondir::{Backend, Dict, Error, Value};

use super::fixture::{Fixture, conformance_tests};
use super::helpers::{dict, free_again, generation, n_of};

// ---------------------------------------------------------------------------------------------
// Check-in, generations, save.
// ---------------------------------------------------------------------------------------------

fn checkin_lands_and_save_keeps_the_session_held<F: Fixture>() {
    let fx = F::start();
    let store = fx.store();
    let id = store.create(&Dict::new()).expect("create");
    let created = store.info(&id).expect("info").expect("exists").created;

    for round in 1..=3_i64 {
        let mut session = store.checkout::<Dict>(&id).expect("check out");
        assert_eq!(session.id(), &id);
        assert_eq!(session.info().generation, round as u64);
        assert_eq!(session.data_mut().increment("n", 1), Ok(round));
        session.check_in().expect("check in");
        let snapshot = store
            .snapshot::<Dict>(&id)
            .expect("snapshot")
            .expect("exists");
        assert_eq!(snapshot.data.get_i64("n"), Some(round));
        assert_eq!(
            snapshot.info.generation,
            round as u64 + 1,
            "one generation per check-in"
        );
        assert_eq!(
            snapshot.info.created, created,
            "check-in keeps the creation time"
        );
        assert!(snapshot.info.modified >= created);
    }

    // save writes and keeps the session held.
    let mut session = store.checkout::<Dict>(&id).expect("check out");
    session.data_mut().insert("saved", "yes");
    session.save().expect("save");
    assert_eq!(session.info().generation, 5);
    assert_eq!(generation(store, &id), 5);
    let seen = store.load::<Dict>(&id).expect("load").expect("exists");
    assert_eq!(seen.get_str("saved"), Some("yes"));
    let other = store.clone();
    let error = other
        .try_checkout::<Dict>(&id)
        .expect_err("still held after save");
    assert!(
        matches!(error, Error::Busy { id: busy } if busy == id),
        "{error:?}"
    );

    // A second save, then the check-in, each land as their own generation.
    session.data_mut().insert("second", true);
    session.save().expect("save again");
    assert_eq!(generation(store, &id), 6);
    session.data_mut().insert("after", "check-in");
    session.check_in().expect("check in after save");
    let seen = store.load::<Dict>(&id).expect("load").expect("exists");
    assert_eq!(seen.get_str("saved"), Some("yes"));
    assert_eq!(seen.get_bool("second"), Some(true));
    assert_eq!(seen.get_str("after"), Some("check-in"));
    assert_eq!(seen.get_i64("n"), Some(3));
    assert_eq!(generation(store, &id), 7);
    free_again(&other, &id, "released by the check-in");
}

// ---------------------------------------------------------------------------------------------
// Dropping or releasing writes nothing.
// ---------------------------------------------------------------------------------------------

fn drop_and_release_write_nothing<F: Fixture>() {
    let fx = F::start();
    let store = fx.store();
    let id = store
        .create(&dict(&[("n", Value::Int(1))]))
        .expect("create");
    let info = store.info(&id).expect("info").expect("exists");

    {
        let mut session = store.checkout::<Dict>(&id).expect("check out");
        session.data_mut().insert("n", 99);
        session.data_mut().insert("extra", true);
        // Dropped here without a check-in.
    }
    assert_eq!(
        store.load::<Dict>(&id).expect("load"),
        Some(dict(&[("n", Value::Int(1))]))
    );
    assert_eq!(store.info(&id).expect("info"), Some(info.clone()));

    // (A waiting check-out: a session never released would fail it with LockTimeout.)
    let mut session = store
        .clone()
        .checkout::<Dict>(&id)
        .expect("dropping released the session");
    session.data_mut().insert("n", 98);
    session.release();
    assert_eq!(n_of(store, &id), 1);
    assert_eq!(store.info(&id).expect("info"), Some(info.clone()));

    let mut session = store
        .clone()
        .checkout::<Dict>(&id)
        .expect("release() released the session");
    session.data_mut().insert("n", 97);
    let data = session.into_data();
    assert_eq!(data.get_i64("n"), Some(97));
    assert_eq!(n_of(store, &id), 1, "into_data writes nothing");
    assert_eq!(store.info(&id).expect("info"), Some(info));
    free_again(store, &id, "into_data released the session");
}

conformance_tests!(
    checkin_lands_and_save_keeps_the_session_held,
    drop_and_release_write_nothing,
);
