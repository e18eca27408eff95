//! Typed errors: data of the wrong type is a decode error naming the location (and leaves
//! the session intact), invalid ids are refused before the store sees them.

use std::collections::HashSet;

use serde::Deserialize;

use sessiondir::{Backend, Checkout, Dict, Error, SessionId, Value};

use super::fixture::{Fixture, conformance_tests};
use super::helpers::{dict, generation, id_set};

// ---------------------------------------------------------------------------------------------
// Wrong type.
// ---------------------------------------------------------------------------------------------

/// Not what the sessions below hold.
#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Profile {
    active: bool,
    name: String,
}

fn wrong_type_is_a_decode_error_naming_the_location<F: Fixture>() {
    let fx = F::start();
    let store = fx.store();
    // Four entries: a Dict's encoding starts with its length (4), which is no bool, so this
    // fails to decode as Profile whatever the entries are.
    let data = dict(&[
        ("a", Value::Int(1)),
        ("b", Value::Bool(true)),
        ("c", Value::Text("x".to_owned())),
        ("d", Value::Null),
    ]);
    let id = store.create(&data).expect("create");
    let location = fx.location(&id);

    let check = |what: &str, error: Error| {
        assert!(
            matches!(error, Error::Decode { .. } | Error::Corrupt { .. }),
            "{what}: {error:?}"
        );
        assert!(
            error.to_string().contains(&location),
            "{what}: {error} names {location}"
        );
    };
    check("load", store.load::<Profile>(&id).expect_err("wrong type"));
    check(
        "snapshot",
        store.snapshot::<Profile>(&id).expect_err("wrong type"),
    );
    check(
        "checkout",
        store.checkout::<Profile>(&id).expect_err("wrong type"),
    );

    // Nothing was held or changed by the failed check-out.
    let session = store
        .checkout::<Dict>(&id)
        .expect("the failed check-out released the session");
    assert_eq!(session.data(), &data);
    session.release();
    assert_eq!(generation(store, &id), 1);
    assert!(store.delete(&id).expect("delete"));
}

/// A `Dict` is no `Vec<String>`, yet a one-entry `Dict` begins with the bytes of a one-element
/// list of strings (its length, then its key). A decoder that ignores the bytes left over
/// after the value (`postcard::from_bytes`) decodes that prefix and silently drops the rest of
/// the session, and a check-out as the wrong type then checks the remnant in over the session.
/// Both must be `Error::Decode` naming the location, and the session must stay intact.
fn dict_as_a_list_of_strings_is_a_decode_error<F: Fixture>() {
    let fx = F::start();
    let store = fx.store();
    let data = dict(&[("user", Value::Text("ada".to_owned()))]);
    let id = store.create(&data).expect("create");
    let location = fx.location(&id);
    let is_decode_error = |what: &str, result: Result<Vec<String>, Error>| match result {
        Err(error @ (Error::Decode { .. } | Error::Corrupt { .. })) => {
            assert!(error.to_string().contains(&location), "{what}: {error}");
        }
        other => panic!("{what}: a Dict as Vec<String> must not decode: {other:?}"),
    };
    is_decode_error(
        "load",
        store
            .load::<Vec<String>>(&id)
            .map(|d| d.expect("session exists")),
    );
    is_decode_error(
        "checkout",
        store.checkout::<Vec<String>>(&id).map(Checkout::into_data),
    );
    assert_eq!(store.load::<Dict>(&id).expect("load"), Some(data));
}

// ---------------------------------------------------------------------------------------------
// Invalid ids.
// ---------------------------------------------------------------------------------------------

fn invalid_ids_are_refused_before_the_store<F: Fixture>() {
    let fx = F::start();
    let store = fx.store();
    let id = store.create(&Dict::new()).expect("create");
    assert_eq!(SessionId::parse(id.as_str()).expect("a real id parses"), id);
    let too_long = format!("{id}a");
    let upper = id.as_str().to_uppercase();
    for bad in [
        "",
        "../../etc/passwd",
        &id.as_str()[..31],
        &too_long,
        &upper,
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\0",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/a",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaé",
    ] {
        let error = SessionId::parse(bad).expect_err("invalid");
        assert!(
            matches!(error, Error::InvalidId { .. }),
            "{bad:?}: {error:?}"
        );
        assert!(
            error.to_string().contains(&format!("{bad:?}")),
            "{bad:?}: {error}"
        );
    }
    assert_eq!(id_set(store), HashSet::from([id]), "the store saw nothing");
}

conformance_tests!(
    wrong_type_is_a_decode_error_naming_the_location,
    dict_as_a_list_of_strings_is_a_decode_error,
    invalid_ids_are_refused_before_the_store,
);
