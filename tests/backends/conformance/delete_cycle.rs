//! Sessions leaving an id: `delete` and `Checkout::delete` (and what waiters see), id
//! cycling (`cycle_id`, `Checkout::cycle_id`), and the forwarding record a cycle leaves.

use std::collections::HashSet;
use std::thread;
use std::time::SystemTime;

use sessiondir::{Backend, Dict, Error, FORWARD_LIFETIME, SessionId};

use super::fixture::{Fixture, PATIENCE, conformance_tests};
use super::helpers::{free_again, generation, id_set, n_of, observed_handle, sample};
use crate::common::wait_until;

// ---------------------------------------------------------------------------------------------
// Delete.
// ---------------------------------------------------------------------------------------------

fn delete_and_what_waiters_see<F: Fixture>() {
    let fx = F::start();
    let store = fx.store();
    let keep = store.create(&sample()).expect("create");

    let id = store.create(&sample()).expect("create");
    assert!(store.delete(&id).expect("delete"), "it existed");
    assert!(!store.delete(&id).expect("delete again"), "already gone");
    assert_eq!(store.load::<Dict>(&id).expect("load"), None);
    assert!(store.snapshot::<Dict>(&id).expect("snapshot").is_none());
    assert!(!store.exists(&id).expect("exists"));
    assert_eq!(store.info(&id).expect("info"), None);
    for (what, error) in [
        (
            "checkout",
            store.checkout::<Dict>(&id).map(drop).expect_err("gone"),
        ),
        (
            "try_checkout",
            store.try_checkout::<Dict>(&id).map(drop).expect_err("gone"),
        ),
        ("cycle_id", store.cycle_id(&id).map(drop).expect_err("gone")),
        ("touch", store.touch(&id).map(drop).expect_err("gone")),
    ] {
        assert!(error.is_gone(), "{what}: {error:?}");
        assert_eq!(error.session_id(), Some(&id), "{what}: {error:?}");
    }

    // Checkout::delete, with a waiter blocked on the session: it gets Deleted.
    let id = store.create(&sample()).expect("create");
    let holder = store.checkout::<Dict>(&id).expect("check out");
    let (handle, waits) = observed_handle(&fx);
    let waiter = thread::spawn(move || handle.checkout::<Dict>(&id).map(drop));
    wait_until(PATIENCE, "the waiter to wait", || waits.count(&id) == 1);
    holder.delete().expect("Checkout::delete");
    let error = waiter
        .join()
        .expect("waiter")
        .expect_err("the session was deleted");
    assert!(
        matches!(error, Error::Deleted { id: e } if e == id),
        "a blocked waiter gets Deleted: {error:?}"
    );
    assert_eq!(store.load::<Dict>(&id).expect("load"), None);
    assert!(
        !store.delete(&id).expect("delete"),
        "Checkout::delete deleted it"
    );

    // Store::delete waits for the holder, whose check-in lands first.
    let id = store.create(&sample()).expect("create");
    let mut holder = store.checkout::<Dict>(&id).expect("check out");
    let (handle, waits) = observed_handle(&fx);
    let deleter = thread::spawn(move || handle.delete(&id));
    wait_until(PATIENCE, "the deleter to wait", || waits.count(&id) == 1);
    assert!(
        store.exists(&id).expect("exists"),
        "not pulled from under the holder"
    );
    holder.data_mut().insert("n", 5);
    holder.check_in().expect("the holder checks in");
    assert!(
        deleter.join().expect("deleter").expect("delete"),
        "deleted after the holder"
    );
    assert_eq!(store.load::<Dict>(&id).expect("load"), None);

    assert_eq!(id_set(store), HashSet::from([keep]));
    assert_eq!(store.load::<Dict>(&keep).expect("load"), Some(sample()));
}

// ---------------------------------------------------------------------------------------------
// Id cycling.
// ---------------------------------------------------------------------------------------------

fn assert_gone<B: Backend>(store: &B, id: &SessionId) {
    assert_eq!(store.load::<Dict>(id).expect("load"), None, "{id} loads");
    assert!(!store.exists(id).expect("exists"), "{id} exists");
    let error = store.checkout::<Dict>(id).expect_err("old id is gone");
    assert!(error.is_gone(), "{id}: {error:?}");
}

fn cycle_id_moves_the_session<F: Fixture>() {
    let fx = F::start();
    let store = fx.store();
    let first = store.create(&sample()).expect("create");
    let info = store.info(&first).expect("info").expect("exists");

    // Store::cycle_id.
    let second = store.cycle_id(&first).expect("cycle_id");
    assert_ne!(second, first);
    assert_eq!(store.load::<Dict>(&second).expect("load"), Some(sample()));
    let moved = store.info(&second).expect("info").expect("exists");
    assert_eq!(
        (moved.created, moved.generation, moved.payload_len),
        (info.created, info.generation, info.payload_len),
        "the same session, moved"
    );
    assert_gone(store, &first);
    assert_eq!(id_set(store), HashSet::from([second]));
    free_again(store, &second, "cycle_id released the new id");

    // Checkout::cycle_id: still held under the new id, unsaved changes stay in the guard.
    let mut session = store.checkout::<Dict>(&second).expect("check out");
    session.data_mut().insert("unsaved", true);
    let third = session.cycle_id().expect("Checkout::cycle_id");
    assert_ne!(third, second);
    assert_eq!(session.id(), &third);
    assert_eq!(
        store.load::<Dict>(&third).expect("load"),
        Some(sample()),
        "the new id has the data as last written"
    );
    assert_gone(store, &second);
    let error = store
        .clone()
        .try_checkout::<Dict>(&third)
        .expect_err("held under the new id");
    assert!(
        matches!(error, Error::Busy { id } if id == third),
        "{error:?}"
    );
    session.check_in().expect("check in under the new id");
    let seen = store.load::<Dict>(&third).expect("load").expect("exists");
    assert_eq!(seen.get_bool("unsaved"), Some(true));
    assert_eq!(generation(store, &third), info.generation + 1);
    assert_gone(store, &second);
    assert_eq!(id_set(store), HashSet::from([third]));

    // A waiter on the old id gets Deleted.
    let mut holder = store.checkout::<Dict>(&third).expect("check out");
    let (handle, waits) = observed_handle(&fx);
    let waiter = thread::spawn(move || handle.checkout::<Dict>(&third).map(drop));
    wait_until(PATIENCE, "the waiter to wait", || waits.count(&third) == 1);
    let fourth = holder.cycle_id().expect("cycle while a waiter waits");
    let error = waiter.join().expect("waiter").expect_err("old id gone");
    assert!(
        matches!(error, Error::Deleted { id } if id == third),
        "{error:?}"
    );
    holder.data_mut().insert("n", 4);
    holder.check_in().expect("check in");
    assert_eq!(n_of(store, &fourth), 4);
    assert_gone(store, &third);
    assert_eq!(id_set(store), HashSet::from([fourth]));
}

fn a_cycle_leaves_a_forwarding_record_to_the_new_id<F: Fixture>() {
    let fx = F::start();
    let store = fx.store();
    let old = store.create(&sample()).expect("create");
    assert_eq!(store.forwarded(&old).expect("read"), None, "never cycled");
    let before = SystemTime::now();
    let new = store.cycle_id(&old).expect("cycle");
    let after = SystemTime::now();
    let forward = store
        .forwarded(&old)
        .expect("read")
        .expect("a forwarding record under the old id");
    assert_eq!(forward.to, new);
    // The cycle time is what decides who may follow (the axum layer): taken during the cycle.
    assert!(
        before <= forward.cycled && forward.cycled <= after,
        "{forward:?}"
    );
    let lifetime = forward
        .expires
        .duration_since(forward.cycled)
        .expect("expires after the cycle");
    assert!(
        lifetime.abs_diff(FORWARD_LIFETIME).as_millis() <= 1,
        "{lifetime:?}"
    );
    // A record is no session: not listed, not loadable, and the new id has none.
    assert_eq!(id_set(store), HashSet::from([new]));
    assert_gone(store, &old);
    assert_eq!(store.forwarded(&new).expect("read"), None);
    // A second cycle leaves a second record; the first still points at the middle id.
    let third = store.cycle_id(&new).expect("cycle again");
    assert_eq!(
        store.forwarded(&new).expect("read").map(|f| f.to),
        Some(third)
    );
    assert_eq!(
        store.forwarded(&old).expect("read").map(|f| f.to),
        Some(new)
    );
}

conformance_tests!(
    delete_and_what_waiters_see,
    cycle_id_moves_the_session,
    a_cycle_leaves_a_forwarding_record_to_the_new_id,
);
