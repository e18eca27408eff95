//! Creating sessions: `create` and what `load`, `exists`, `info` and `snapshot` then
//! return (and for an id nobody created), and `create_with_id`, which never overwrites.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use sessiondir::{Backend, Dict, Error, Expiry, Value};

use super::fixture::{Fixture, conformance_tests};
use super::helpers::{dict, drawn_id, generation, id_set, sample};

// ---------------------------------------------------------------------------------------------
// create → load, exists, info, snapshot.
// ---------------------------------------------------------------------------------------------

fn create_load_info_snapshot<F: Fixture>() {
    let fx = F::start();
    let store = fx.store();
    let data = sample();
    let before = SystemTime::now();
    let id = store.create(&data).expect("create");
    let after = SystemTime::now();

    assert_eq!(store.load::<Dict>(&id).expect("load"), Some(data.clone()));
    assert!(store.exists(&id).expect("exists"));

    let info = store.info(&id).expect("info").expect("session exists");
    assert_eq!(info.id, id);
    assert_eq!(info.generation, 1);
    assert!(info.payload_len > 0);
    let encoded = postcard::to_allocvec(&data).expect("encode");
    assert_eq!(
        info.payload_len as usize,
        encoded.len(),
        "payload is the data"
    );
    assert_eq!(info.created, info.modified);
    assert!(
        info.created + Duration::from_millis(1) >= before && info.created <= after,
        "created {:?} between {before:?} and {after:?}",
        info.created
    );
    assert_eq!(info.expires, None, "default expiry is never");
    assert_eq!(info.idle_ttl, None);
    assert_eq!(info.expiry(), Expiry::Never);
    assert!(!info.is_expired());

    let snapshot = store
        .snapshot::<Dict>(&id)
        .expect("snapshot")
        .expect("session exists");
    assert_eq!(snapshot.data, data);
    assert_eq!(snapshot.info, info);

    // A second session is independent of the first.
    let other = store
        .create(&dict(&[("only", Value::Int(7))]))
        .expect("create");
    assert_ne!(other, id);
    assert_eq!(store.load::<Dict>(&id).expect("load"), Some(data));
    assert_eq!(
        store.load::<Dict>(&other).expect("load"),
        Some(dict(&[("only", Value::Int(7))]))
    );

    // An id nobody created.
    let unknown = drawn_id();
    assert_eq!(store.load::<Dict>(&unknown).expect("load"), None);
    assert!(
        store
            .snapshot::<Dict>(&unknown)
            .expect("snapshot")
            .is_none()
    );
    assert!(!store.exists(&unknown).expect("exists"));
    assert_eq!(store.info(&unknown).expect("info"), None);
    let error = store
        .checkout::<Dict>(&unknown)
        .expect_err("no such session");
    assert!(
        matches!(error, Error::NotFound { id } if id == unknown),
        "{error:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// create_with_id.
// ---------------------------------------------------------------------------------------------

fn create_with_id_never_overwrites<F: Fixture>() {
    let fx = F::start();
    let store = fx.store();
    let id = drawn_id();
    let first = dict(&[("who", Value::Text("first".to_owned()))]);
    store
        .create_with_id(&id, &first, Expiry::Never)
        .expect("create_with_id");
    assert_eq!(store.load::<Dict>(&id).expect("load"), Some(first.clone()));
    assert_eq!(generation(store, &id), 1);

    let second = dict(&[("who", Value::Text("second".to_owned()))]);
    let error = store
        .create_with_id(&id, &second, Expiry::Idle(Duration::from_secs(60)))
        .expect_err("the id is taken");
    assert!(
        matches!(error, Error::AlreadyExists { id: e } if e == id),
        "{error:?}"
    );
    assert_eq!(store.load::<Dict>(&id).expect("load"), Some(first));
    let info = store.info(&id).expect("info").expect("exists");
    assert_eq!((info.generation, info.expires), (1, None), "untouched");

    // A held session's id is taken as well.
    let held = store.checkout::<Dict>(&id).expect("check out");
    let error = store
        .create_with_id(&id, &second, Expiry::Never)
        .expect_err("taken while held");
    assert!(matches!(error, Error::AlreadyExists { .. }), "{error:?}");
    held.release();
    assert_eq!(id_set(store), HashSet::from([id]));
}

conformance_tests!(create_load_info_snapshot, create_with_id_never_overwrites,);
