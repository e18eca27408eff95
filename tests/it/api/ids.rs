//! Ids: `create` never takes one, ids a framework issues (`from_bytes`, `create_with_id`:
//! once, never overwriting, one winner of a race), and the ids the store issues: distinct,
//! 32 base32 characters, parsed back, naming the session file.

use std::collections::HashSet;

use sessiondir::{Checkout, Dict, Error, Expiry, SessionId, Store};

use super::helpers::{counter_dict, file_bytes};
use crate::common::{TestStore, temp_files};

// ---------------------------------------------------------------------------------------------
// Static properties

const _: () = {
    const fn shareable<T: Send + Sync + Clone + 'static>() {}
    const fn sendable<T: Send + 'static>() {}
    const fn error_like<T: std::error::Error + Send + Sync + 'static>() {}
    shareable::<Store>();
    shareable::<SessionId>();
    sendable::<Checkout<Dict>>();
    error_like::<Error>();
};

/// `create` takes the data and nothing else: the caller can never choose the id.
#[test]
fn create_never_accepts_an_id() {
    let _create: fn(&Store, &Dict) -> Result<SessionId, Error> = Store::create::<Dict>;
    let _create_with: fn(&Store, &Dict, Expiry) -> Result<SessionId, Error> =
        Store::create_with_expiry::<Dict>;
}

// ---------------------------------------------------------------------------------------------
// Ids issued by a framework

#[test]
fn from_bytes_renders_an_id_that_parses_back_and_differs_per_input() {
    let a = SessionId::from_bytes([0u8; 20]);
    let b = SessionId::from_bytes([0xffu8; 20]);
    let mut raw = [0u8; 20];
    raw[19] = 1; // the last bit group must matter too
    let c = SessionId::from_bytes(raw);
    assert_eq!(a.as_str(), "a".repeat(32));
    assert_eq!(b.as_str(), "7".repeat(32));
    assert_ne!(a, c);
    for id in [a, b, c] {
        assert_eq!(SessionId::parse(id.as_str()).unwrap(), id);
    }
}

#[test]
fn create_with_id_creates_once_and_never_overwrites() {
    let ts = TestStore::new();
    let store = &ts.store;
    let id = SessionId::from_bytes([7u8; 20]);
    store
        .create_with_id(&id, &counter_dict(1), Expiry::Never)
        .unwrap();
    assert_eq!(store.load::<Dict>(&id).unwrap(), Some(counter_dict(1)));
    let before = file_bytes(store, &id);

    let err = store
        .create_with_id(&id, &counter_dict(2), Expiry::Never)
        .unwrap_err();
    assert!(
        matches!(err, Error::AlreadyExists { id: e } if e == id),
        "{err}"
    );
    assert!(err.to_string().contains(id.as_str()), "{err}");
    assert_eq!(
        file_bytes(store, &id),
        before,
        "the existing session was touched"
    );
    assert!(temp_files(&ts.dir).is_empty());

    // Held by a check-out: still refused, and the holder's check-in still lands.
    let mut co = store.checkout::<Dict>(&id).unwrap();
    co.data_mut().increment("counter", 10).unwrap();
    assert!(matches!(
        store.create_with_id(&id, &counter_dict(3), Expiry::Never),
        Err(Error::AlreadyExists { .. })
    ));
    co.check_in().unwrap();
    assert_eq!(store.load::<Dict>(&id).unwrap(), Some(counter_dict(11)));

    // Deleted: the id may be used again.
    assert!(store.delete(&id).unwrap());
    store
        .create_with_id(&id, &counter_dict(4), Expiry::Never)
        .unwrap();
    assert_eq!(store.load::<Dict>(&id).unwrap(), Some(counter_dict(4)));
}

#[test]
fn create_with_id_racing_threads_create_exactly_once() {
    let ts = TestStore::new();
    let id = SessionId::from_bytes([42u8; 20]);
    let winners: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|n| {
                let store = ts.store.clone();
                s.spawn(move || {
                    match store.create_with_id(&id, &counter_dict(n as i64), Expiry::Never) {
                        Ok(()) => 1,
                        Err(Error::AlreadyExists { .. }) => 0,
                        Err(e) => panic!("{e}"),
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(winners, 1);
    assert!(ts.store.load::<Dict>(&id).unwrap().is_some());
}

// ---------------------------------------------------------------------------------------------
// Ids the store issues

#[test]
fn ids_are_distinct_32_base32_chars_and_parse_back() {
    let ts = TestStore::new();
    let mut seen = HashSet::new();
    for _ in 0..50 {
        let id = ts.store.create(&Dict::new()).unwrap();
        let s = id.as_str();
        assert_eq!(s.len(), 32, "{s}");
        assert!(
            s.bytes().all(|b| matches!(b, b'a'..=b'z' | b'2'..=b'7')),
            "{s}"
        );
        assert_eq!(id.to_string(), s);
        assert_eq!(format!("{id:?}"), format!("SessionId({s})"));
        assert_eq!(SessionId::parse(s).unwrap(), id);
        assert_eq!(s.parse::<SessionId>().unwrap(), id);
        assert_eq!(<SessionId as AsRef<str>>::as_ref(&id), s);
        assert!(seen.insert(id), "duplicate id {id}");
        // The session file is named by the id, in a shard directory of the sessions tree.
        let path = ts.store.session_path(&id);
        assert_eq!(path.file_name().unwrap().to_str(), Some(s));
        assert_eq!(
            path.parent().unwrap().parent().unwrap(),
            ts.store.dir().join("sessions")
        );
    }
}

#[test]
fn a_thousand_creates_make_a_thousand_distinct_sessions() {
    let ts = TestStore::new();
    let created: Vec<SessionId> = (0..1000i64)
        .map(|i| ts.store.create(&counter_dict(i)).unwrap())
        .collect();
    let distinct: HashSet<SessionId> = created.iter().copied().collect();
    assert_eq!(distinct.len(), 1000);
    let listed: Vec<SessionId> = ts.store.ids().map(Result::unwrap).collect();
    assert_eq!(listed.len(), 1000);
    assert_eq!(listed.into_iter().collect::<HashSet<_>>(), distinct);
    // No create overwrote another: each holds its own data.
    for (i, id) in created.iter().enumerate() {
        let d: Dict = ts.store.load(id).unwrap().unwrap();
        assert_eq!(d.get_i64("counter"), Some(i as i64));
    }
    assert_eq!(temp_files(&ts.dir), Vec::<std::path::PathBuf>::new());
}
