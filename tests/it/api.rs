//! The public API, operation by operation: round trips, the check-out life cycle, expiry,
//! delete, id cycling, listing, garbage collection, tidying, permissions, store settings and
//! durability levels.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sessiondir::{
    Checkout, Dict, Durability, Error, Expiry, FORMAT_VERSION, HEADER_LEN, SessionId, Store,
    TidyReport, Value,
};

use crate::common::{
    TestStore, all_files, entry_state, fix_header_crc, lock_path_of, temp_files, tree_snapshot,
};

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
// Helpers

/// An application's own session type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Cart {
    user: String,
    items: Vec<(u32, String)>,
    total_cents: u64,
    coupon: Option<String>,
    flags: [bool; 3],
}

fn cart() -> Cart {
    Cart {
        user: "ada@example.org".into(),
        items: vec![(3, "tea".into()), (1, "scone".into())],
        total_cents: 1_250,
        coupon: Some("WELCOME".into()),
        flags: [true, false, true],
    }
}

fn counter_dict(n: i64) -> Dict {
    let mut d = Dict::new();
    d.insert("counter", n);
    d.insert("user", "ada");
    d
}

fn file_bytes(store: &Store, id: &SessionId) -> Vec<u8> {
    fs::read(store.session_path(id)).expect("read session file")
}

fn payload_bytes(store: &Store, id: &SessionId) -> Vec<u8> {
    file_bytes(store, id)[HEADER_LEN..].to_vec()
}

fn info(store: &Store, id: &SessionId) -> sessiondir::SessionInfo {
    store.info(id).expect("info").expect("session exists")
}

fn ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// A point in time at a whole millisecond (what the file format stores), `offset_ms` from now.
fn whole_ms_from_now(offset_ms: i64) -> SystemTime {
    let now = ms(SystemTime::now()) as i64;
    UNIX_EPOCH + Duration::from_millis((now + offset_ms) as u64)
}

/// Lets the millisecond clock advance, so that a later timestamp is strictly greater.
fn tick() {
    std::thread::sleep(Duration::from_millis(3));
}

fn mode_of(path: &Path) -> u32 {
    fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// Unlinks a store file from outside the store, as an operator or attacker would (tests
/// damage stores on purpose; the library's own unlinks all go through src/atomic.rs).
#[allow(clippy::disallowed_methods)]
fn unlink(path: &Path) {
    fs::remove_file(path).unwrap_or_else(|e| panic!("unlink {}: {e}", path.display()));
}

#[track_caller]
fn assert_not_found<T: std::fmt::Debug>(r: Result<T, Error>, id: &SessionId) {
    match r {
        Err(Error::NotFound { id: got }) => assert_eq!(&got, id),
        other => panic!("expected NotFound for {id}, got {other:?}"),
    }
}

#[track_caller]
fn assert_expired<T: std::fmt::Debug>(r: Result<T, Error>, id: &SessionId) {
    match r {
        Err(Error::Expired { id: got }) => assert_eq!(&got, id),
        other => panic!("expected Expired for {id}, got {other:?}"),
    }
}

#[track_caller]
fn assert_busy<T: std::fmt::Debug>(r: Result<T, Error>, id: &SessionId) {
    match r {
        Err(Error::Busy { id: got }) => assert_eq!(&got, id),
        other => panic!("expected Busy for {id}, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Round trips and ids

#[test]
fn custom_struct_round_trips_through_create_load_info() {
    let ts = TestStore::new();
    let store = &ts.store;
    let data = cart();
    let before = ms(SystemTime::now());
    let id = store.create(&data).unwrap();
    let after = ms(SystemTime::now());

    assert_eq!(store.load::<Cart>(&id).unwrap(), Some(data.clone()));
    assert!(store.exists(&id).unwrap());

    let encoded = postcard::to_stdvec(&data).unwrap();
    let i = info(store, &id);
    assert_eq!(i.id, id);
    assert_eq!(i.generation, 1);
    assert_eq!(i.payload_len as usize, encoded.len());
    assert_eq!(i.file_len(), (HEADER_LEN + encoded.len()) as u64);
    assert_eq!(i.created, i.modified);
    assert!(
        (before..=after).contains(&ms(i.created)),
        "created {:?}",
        i.created
    );
    assert_eq!(i.expires, None);
    assert_eq!(i.idle_ttl, None);
    assert_eq!(i.expiry(), Expiry::Never);
    assert!(!i.is_expired());

    // The file is exactly the documented header followed by the postcard payload.
    let bytes = file_bytes(store, &id);
    assert_eq!(bytes.len() as u64, i.file_len());
    assert_eq!(&bytes[0..4], b"SDIR");
    assert_eq!(u16::from_le_bytes([bytes[4], bytes[5]]), FORMAT_VERSION);
    assert_eq!(u16::from_le_bytes([bytes[6], bytes[7]]), 0, "flags");
    assert_eq!(u64::from_le_bytes(bytes[8..16].try_into().unwrap()), 1);
    assert_eq!(
        u32::from_le_bytes(bytes[52..56].try_into().unwrap()),
        crc32fast::hash(&encoded)
    );
    assert_eq!(&bytes[HEADER_LEN..], encoded.as_slice());

    let snap = store.snapshot::<Cart>(&id).unwrap().unwrap();
    assert_eq!(snap.data, data);
    assert_eq!(snap.info, i);

    let co = store.checkout::<Cart>(&id).unwrap();
    assert_eq!(co.id(), &id);
    assert_eq!(co.data(), &data);
    assert_eq!(co.info(), i);
    assert_eq!(co.into_data(), data);
}

#[test]
fn dict_round_trips_every_value_type() {
    let ts = TestStore::new();
    let store = &ts.store;
    let mut d = Dict::new();
    d.insert("null", Value::Null);
    d.insert("bool", true);
    d.insert("int", -42i64);
    d.insert("float", 2.5f64);
    d.insert("text", "héllo 🌍");
    d.insert("bytes", Value::Bytes(vec![0, 1, 254, 255]));
    d.insert("list", vec![Value::Int(1), Value::Text("two".into())]);
    d.insert(
        "map",
        BTreeMap::from([("inner".to_string(), Value::Bool(false))]),
    );
    let id = store.create(&d).unwrap();
    let loaded: Dict = store.load(&id).unwrap().unwrap();
    assert_eq!(loaded, d);
    assert_eq!(loaded.len(), 8);
    assert_eq!(loaded.get_i64("int"), Some(-42));
    assert_eq!(loaded.get_str("text"), Some("héllo 🌍"));
    assert_eq!(loaded.get_bool("bool"), Some(true));
    assert_eq!(
        info(store, &id).payload_len as usize,
        postcard::to_stdvec(&d).unwrap().len()
    );

    let mut co = store.checkout::<Dict>(&id).unwrap();
    assert_eq!(co.data_mut().increment("counter", 5), Ok(5));
    co.data_mut().remove("null");
    co.check_in().unwrap();
    let loaded: Dict = store.load(&id).unwrap().unwrap();
    assert_eq!(loaded.get_i64("counter"), Some(5));
    assert!(!loaded.contains_key("null"));
    assert_eq!(loaded.len(), 8);

    // An empty Dict is a valid session too.
    let empty = store.create(&Dict::new()).unwrap();
    assert_eq!(store.load::<Dict>(&empty).unwrap(), Some(Dict::new()));
}

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

// ---------------------------------------------------------------------------------------------
// The check-out life cycle

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

// ---------------------------------------------------------------------------------------------
// Expiry

#[test]
fn a_session_expired_at_a_past_time_is_gone_but_has_info() {
    let ts = TestStore::new();
    let store = &ts.store;
    let past = whole_ms_from_now(-60_000);
    let id = store
        .create_with_expiry(&counter_dict(1), Expiry::At(past))
        .unwrap();

    assert_eq!(store.load::<Dict>(&id).unwrap(), None);
    assert!(store.snapshot::<Dict>(&id).unwrap().is_none());
    assert!(!store.exists(&id).unwrap());
    assert_expired(store.checkout::<Dict>(&id), &id);
    assert_expired(store.try_checkout::<Dict>(&id), &id);
    assert_expired(store.touch(&id), &id);
    assert_expired(store.cycle_id(&id), &id);

    let i = info(store, &id);
    assert_eq!(i.expires, Some(past));
    assert_eq!(i.idle_ttl, None);
    assert_eq!(i.expiry(), Expiry::At(past));
    assert!(i.is_expired());
    assert!(i.is_expired_at(past));
    assert!(!i.is_expired_at(past - Duration::from_millis(1)));
    assert_eq!(i.generation, 1, "failed operations wrote nothing");

    // The file is still there until deleted.
    assert!(store.session_path(&id).is_file());
    assert!(store.delete(&id).unwrap());
    assert_eq!(store.info(&id).unwrap(), None);
}

#[test]
fn a_fixed_future_expiry_is_not_moved_by_check_in_or_touch() {
    let ts = TestStore::new();
    let store = &ts.store;
    let at = whole_ms_from_now(3_600_000);
    let id = store
        .create_with_expiry(&counter_dict(1), Expiry::At(at))
        .unwrap();
    assert_eq!(info(store, &id).expires, Some(at));
    tick();
    store.checkout::<Dict>(&id).unwrap().check_in().unwrap();
    assert_eq!(info(store, &id).expires, Some(at));
    tick();
    let touched = store.touch(&id).unwrap();
    assert_eq!(touched.expires, Some(at));
    assert_eq!(touched.generation, 3);
    assert_eq!(info(store, &id), touched);
    assert!(store.exists(&id).unwrap());
}

#[test]
fn idle_expiry_slides_on_check_in_and_touch() {
    let ts = TestStore::new();
    let store = &ts.store;
    let ttl = Duration::from_secs(3600);
    let id = store
        .create_with_expiry(&counter_dict(1), Expiry::Idle(ttl))
        .unwrap();
    let i0 = info(store, &id);
    assert_eq!(i0.idle_ttl, Some(ttl));
    assert_eq!(i0.expiry(), Expiry::Idle(ttl));
    assert_eq!(i0.expires, Some(i0.modified + ttl));

    // Check-in: expiry moves forward with the modification time.
    tick();
    let mut co = store.checkout::<Dict>(&id).unwrap();
    co.data_mut().increment("counter", 1).unwrap();
    co.check_in().unwrap();
    let i1 = info(store, &id);
    assert_eq!(i1.generation, 2);
    assert!(i1.modified > i0.modified, "{i1:?} vs {i0:?}");
    assert!(i1.expires > i0.expires, "{i1:?} vs {i0:?}");
    assert_eq!(i1.expires, Some(i1.modified + ttl));
    assert_eq!(i1.created, i0.created);

    // Touch: expiry moves forward, the payload bytes do not change, the generation does.
    let payload_before = payload_bytes(store, &id);
    tick();
    let i2 = store.touch(&id).unwrap();
    assert_eq!(info(store, &id), i2);
    assert_eq!(i2.generation, 3);
    assert!(i2.modified > i1.modified);
    assert!(i2.expires > i1.expires);
    assert_eq!(i2.expires, Some(i2.modified + ttl));
    assert_eq!(i2.created, i0.created);
    assert_eq!(i2.payload_len, i1.payload_len);
    assert_eq!(payload_bytes(store, &id), payload_before);
    assert_eq!(
        store.load::<Dict>(&id).unwrap().unwrap().get_i64("counter"),
        Some(2)
    );
}

#[test]
fn touch_without_idle_expiry_only_updates_modified_and_generation() {
    let ts = TestStore::new();
    let store = &ts.store;
    let id = store.create(&counter_dict(3)).unwrap();
    let i0 = info(store, &id);
    let payload = payload_bytes(store, &id);
    tick();
    let i1 = store.touch(&id).unwrap();
    assert_eq!(i1.generation, 2);
    assert!(i1.modified > i0.modified);
    assert_eq!(i1.expires, None);
    assert_eq!(i1.idle_ttl, None);
    assert_eq!(payload_bytes(store, &id), payload);
}

#[test]
fn set_expiry_never_clears_expiry_and_checkout_can_set_one() {
    let ts = TestStore::new();
    let store = &ts.store;
    let id = store
        .create_with_expiry(&counter_dict(1), Expiry::Idle(Duration::from_secs(60)))
        .unwrap();
    let payload = payload_bytes(store, &id);
    let i = store.set_expiry(&id, Expiry::Never).unwrap();
    assert_eq!(i.expires, None);
    assert_eq!(i.idle_ttl, None);
    assert_eq!(i.expiry(), Expiry::Never);
    assert_eq!(i.generation, 2);
    assert_eq!(info(store, &id), i);
    assert_eq!(
        payload_bytes(store, &id),
        payload,
        "set_expiry kept the payload"
    );

    // A later check-in does not bring an expiry back.
    store.checkout::<Dict>(&id).unwrap().check_in().unwrap();
    let i = info(store, &id);
    assert_eq!((i.expires, i.idle_ttl, i.generation), (None, None, 3));

    // set_expiry to a fixed time, then back to Idle.
    let at = whole_ms_from_now(600_000);
    assert_eq!(
        store.set_expiry(&id, Expiry::At(at)).unwrap().expires,
        Some(at)
    );
    let i = store
        .set_expiry(&id, Expiry::Idle(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(i.idle_ttl, Some(Duration::from_secs(5)));
    assert_eq!(i.expires, Some(i.modified + Duration::from_secs(5)));

    // Checkout::set_expiry is written by the check-in: a past time expires the session.
    let mut co = store.checkout::<Dict>(&id).unwrap();
    co.set_expiry(Expiry::At(whole_ms_from_now(-1_000)));
    co.check_in().unwrap();
    assert_eq!(store.load::<Dict>(&id).unwrap(), None);
    assert!(!store.exists(&id).unwrap());
    assert!(info(store, &id).is_expired());
}

#[test]
fn builder_default_expiry_applies_to_create() {
    let ttl = Duration::from_secs(1800);
    let ts = TestStore::with(|b| b.idle_expiry(ttl));
    let id = ts.store.create(&Dict::new()).unwrap();
    let i = info(&ts.store, &id);
    assert_eq!(i.idle_ttl, Some(ttl));
    assert_eq!(i.expires, Some(i.modified + ttl));
    // An explicit rule overrides the default.
    let id = ts
        .store
        .create_with_expiry(&Dict::new(), Expiry::Never)
        .unwrap();
    assert_eq!(info(&ts.store, &id).expires, None);

    let at = whole_ms_from_now(86_400_000);
    let ts = TestStore::with(|b| b.default_expiry(Expiry::At(at)));
    let id = ts.store.create(&Dict::new()).unwrap();
    let i = info(&ts.store, &id);
    assert_eq!(i.expires, Some(at));
    assert_eq!(i.idle_ttl, None);

    // The default default is Never.
    let ts = TestStore::new();
    let id = ts.store.create(&Dict::new()).unwrap();
    assert_eq!(info(&ts.store, &id).expiry(), Expiry::Never);
}

// ---------------------------------------------------------------------------------------------
// Delete and cycle

#[test]
fn delete_removes_the_session_once() {
    let ts = TestStore::new();
    let store = &ts.store;
    let keep = store.create(&counter_dict(1)).unwrap();
    let id = store.create(&counter_dict(2)).unwrap();
    let lock = lock_path_of(store, &id);
    assert!(lock.is_file());

    assert!(store.delete(&id).unwrap());
    assert!(!store.delete(&id).unwrap());

    assert_eq!(store.load::<Dict>(&id).unwrap(), None);
    assert!(!store.exists(&id).unwrap());
    assert_eq!(store.info(&id).unwrap(), None);
    assert_not_found(store.checkout::<Dict>(&id), &id);
    assert_not_found(store.try_checkout::<Dict>(&id), &id);
    assert_not_found(store.touch(&id), &id);
    assert_not_found(store.cycle_id(&id), &id);
    assert_not_found(store.set_expiry(&id, Expiry::Never), &id);
    // Both of its files are gone, nothing else is.
    assert!(entry_state(&store.session_path(&id)).is_none());
    assert!(entry_state(&lock).is_none());
    let names: Vec<String> = all_files(&ts.dir)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.contains(id.as_str())), "{names:?}");
    assert_eq!(store.load::<Dict>(&keep).unwrap(), Some(counter_dict(1)));

    // Deleting through a check-out.
    let co = store.checkout::<Dict>(&keep).unwrap();
    co.delete().unwrap();
    assert_eq!(store.load::<Dict>(&keep).unwrap(), None);
    assert!(!store.delete(&keep).unwrap());
    assert_eq!(store.ids().count(), 0);
    assert_eq!(all_files(&ts.dir.join("locks")).len(), 0);
}

#[test]
fn cycle_id_moves_data_and_keeps_created_time() {
    let ts = TestStore::new();
    let store = &ts.store;
    let old = store.create(&counter_dict(1)).unwrap();
    let mut co = store.checkout::<Dict>(&old).unwrap();
    co.data_mut().increment("counter", 1).unwrap();
    co.check_in().unwrap();
    let before = info(store, &old);
    let bytes_before = file_bytes(store, &old);
    tick();

    let new = store.cycle_id(&old).unwrap();
    assert_ne!(new, old);
    assert_eq!(store.load::<Dict>(&old).unwrap(), None);
    assert!(!store.exists(&old).unwrap());
    assert_eq!(store.info(&old).unwrap(), None);
    assert_not_found(store.checkout::<Dict>(&old), &old);
    assert!(entry_state(&lock_path_of(store, &old)).is_none());

    assert_eq!(store.load::<Dict>(&new).unwrap(), Some(counter_dict(2)));
    let after = info(store, &new);
    assert_eq!(after.id, new);
    assert_eq!(after.created, before.created);
    // The file moved as last written: same header and payload.
    assert_eq!(after.modified, before.modified);
    assert_eq!(after.generation, before.generation);
    assert_eq!(file_bytes(store, &new), bytes_before);
    assert!(lock_path_of(store, &new).is_file());
    assert_eq!(
        store.ids().map(Result::unwrap).collect::<Vec<_>>(),
        vec![new]
    );
    // The new id is free to check out.
    store.try_checkout::<Dict>(&new).unwrap().release();
}

#[test]
fn checkout_cycle_id_keeps_the_session_checked_out_under_the_new_id() {
    let ts = TestStore::new();
    let store = &ts.store;
    let other = Store::open(&ts.dir).unwrap();
    let old = store.create(&counter_dict(1)).unwrap();
    let mut co = store.checkout::<Dict>(&old).unwrap();
    co.data_mut().increment("counter", 10).unwrap();
    let new = co.cycle_id().unwrap();
    assert_ne!(new, old);
    assert_eq!(co.id(), &new);
    // Moved as last written: the unsaved change is not on disk yet.
    assert_eq!(store.load::<Dict>(&new).unwrap(), Some(counter_dict(1)));
    assert_eq!(store.load::<Dict>(&old).unwrap(), None);
    assert_busy(other.try_checkout::<Dict>(&new), &new);
    assert_not_found(other.try_checkout::<Dict>(&old), &old);
    co.check_in().unwrap();
    assert_eq!(store.load::<Dict>(&new).unwrap(), Some(counter_dict(11)));
    assert_eq!(info(store, &new).generation, 2);
    assert_eq!(store.load::<Dict>(&old).unwrap(), None);
    other.try_checkout::<Dict>(&new).unwrap().release();
}

// ---------------------------------------------------------------------------------------------
// Listing

#[test]
fn ids_and_sessions_list_every_session_once_and_nothing_else() {
    let ts = TestStore::new();
    let store = &ts.store;
    assert_eq!(store.fan_out(), 4);
    let created: HashSet<SessionId> = (0..500i64)
        .map(|i| store.create(&counter_dict(i)).unwrap())
        .collect();
    assert_eq!(created.len(), 500);

    // Plant things that are not sessions, in every shard and around the tree.
    let sessions = ts.dir.join("sessions");
    let some_id = *created.iter().next().unwrap();
    for shard in fs::read_dir(&sessions).unwrap() {
        let shard = shard.unwrap().path();
        let first_here = fs::read_dir(&shard)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .next()
            .expect("every shard has sessions");
        fs::write(shard.join(format!(".{first_here}.a1b2c3d4.tmp")), b"tmp").unwrap();
        fs::write(shard.join("README"), b"foreign").unwrap();
        fs::write(shard.join(".hidden"), b"foreign").unwrap();
        fs::write(shard.join(first_here.to_ascii_uppercase()), b"foreign").unwrap();
        fs::write(shard.join(&first_here[..31]), b"foreign").unwrap();
        fs::write(shard.join(format!("{first_here}.bak")), b"foreign").unwrap();
        // A directory and a symlink with valid-id names are not session files either.
        fs::create_dir(shard.join("abcdefghijklmnopqrstuvwxyz234567")).unwrap();
        std::os::unix::fs::symlink(
            store.session_path(&some_id),
            shard.join("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"),
        )
        .unwrap();
    }
    fs::write(
        sessions.join("cccccccccccccccccccccccccccccccc"),
        b"not in a shard",
    )
    .unwrap();
    fs::write(
        ts.dir.join("dddddddddddddddddddddddddddddddd"),
        b"not in sessions",
    )
    .unwrap();

    let listed: Vec<SessionId> = store.ids().map(Result::unwrap).collect();
    assert_eq!(listed.len(), 500, "each session exactly once");
    assert_eq!(listed.iter().copied().collect::<HashSet<_>>(), created);

    let infos: Vec<_> = store.sessions().map(Result::unwrap).collect();
    assert_eq!(infos.len(), 500);
    assert_eq!(infos.iter().map(|i| i.id).collect::<HashSet<_>>(), created);
    assert!(
        infos
            .iter()
            .all(|i| i.generation == 1 && i.expires.is_none())
    );
    // Every shard is used and every listed session lives where session_path says.
    let mut shards = HashSet::new();
    for id in &listed {
        let path = store.session_path(id);
        assert!(path.is_file());
        shards.insert(path.parent().unwrap().to_path_buf());
    }
    assert_eq!(shards.len(), 4);
}

// ---------------------------------------------------------------------------------------------
// Garbage collection

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

// ---------------------------------------------------------------------------------------------
// Tidy and close

#[test]
fn tidy_removes_orphan_locks_and_dead_writers_temp_files_only() {
    let ts = TestStore::new();
    let store = &ts.store;
    let live = store.create(&counter_dict(1)).unwrap();
    let held_id = store.create(&counter_dict(2)).unwrap();
    let dead = store.create(&counter_dict(3)).unwrap();
    assert!(store.delete(&dead).unwrap());

    // A create killed before its session file existed: a lock file and nothing else.
    let orphan = lock_path_of(store, &dead);
    fs::write(&orphan, b"").unwrap();
    fs::set_permissions(&orphan, fs::Permissions::from_mode(0o600)).unwrap();
    // Writers killed between creating and renaming their temporary files.
    let temp_of = |id: &SessionId, tag: &str| {
        store
            .session_path(id)
            .with_file_name(format!(".{id}.{tag}.tmp"))
    };
    let dead_temp = temp_of(&dead, "x1y2z3w4");
    let live_temp = temp_of(&live, "abcdefgh");
    let held_temp = temp_of(&held_id, "qwertyui");
    fs::write(&dead_temp, vec![1u8; 100]).unwrap();
    fs::write(&live_temp, vec![2u8; 50]).unwrap();
    fs::write(&held_temp, vec![3u8; 30]).unwrap();
    // Foreign files are not ours to remove.
    let foreign_lock_dir_file = orphan.with_file_name("README");
    fs::write(&foreign_lock_dir_file, b"keep").unwrap();
    let foreign_tmp = store.session_path(&live).with_file_name(".notes.tmp");
    fs::write(&foreign_tmp, b"keep").unwrap();

    // A live writer may own the held session's temporary file: it must survive.
    let held = store.checkout::<Dict>(&held_id).unwrap();
    let report = store.tidy().unwrap();
    assert_eq!(
        report,
        TidyReport {
            temp_files_removed: 2,
            orphan_locks_removed: 1,
            skipped_busy: 1,
            bytes_freed: 150,
            failed: 0,
        }
    );
    assert!(entry_state(&orphan).is_none());
    assert!(entry_state(&dead_temp).is_none());
    assert!(entry_state(&live_temp).is_none());
    assert_eq!(fs::read(&held_temp).unwrap(), vec![3u8; 30]);
    assert!(lock_path_of(store, &live).is_file());
    assert!(lock_path_of(store, &held_id).is_file());
    assert_eq!(fs::read(&foreign_lock_dir_file).unwrap(), b"keep");
    assert_eq!(fs::read(&foreign_tmp).unwrap(), b"keep");
    assert_eq!(store.load::<Dict>(&live).unwrap(), Some(counter_dict(1)));
    assert_eq!(store.load::<Dict>(&held_id).unwrap(), Some(counter_dict(2)));

    // Once released, the leftover goes too; a clean store tidies to nothing.
    drop(held);
    let report = store.tidy().unwrap();
    assert_eq!(
        report,
        TidyReport {
            temp_files_removed: 1,
            orphan_locks_removed: 0,
            skipped_busy: 0,
            bytes_freed: 30,
            failed: 0,
        }
    );
    assert_eq!(store.tidy().unwrap(), TidyReport::default());
    store
        .checkout::<Dict>(&held_id)
        .unwrap()
        .check_in()
        .unwrap();
    assert_eq!(temp_files(&ts.dir), vec![foreign_tmp]);
}

#[test]
fn close_returns_the_tidy_report() {
    let ts = TestStore::new();
    let keep = ts.store.create(&counter_dict(1)).unwrap();
    let dead = ts.store.create(&counter_dict(2)).unwrap();
    ts.store.delete(&dead).unwrap();
    fs::write(lock_path_of(&ts.store, &dead), b"").unwrap();
    let temp = ts
        .store
        .session_path(&keep)
        .with_file_name(format!(".{keep}.zzzzzzzz.tmp"));
    fs::write(&temp, vec![0u8; 77]).unwrap();

    let clone = ts.store.clone();
    let report = ts.store.clone().close().unwrap();
    assert_eq!(
        report,
        TidyReport {
            temp_files_removed: 1,
            orphan_locks_removed: 1,
            skipped_busy: 0,
            bytes_freed: 77,
            failed: 0,
        }
    );
    assert!(entry_state(&temp).is_none());
    assert!(entry_state(&lock_path_of(&ts.store, &dead)).is_none());
    // Other clones keep working after one is closed.
    let mut co = clone.checkout::<Dict>(&keep).unwrap();
    co.data_mut().increment("counter", 1).unwrap();
    co.check_in().unwrap();
    assert_eq!(
        clone
            .load::<Dict>(&keep)
            .unwrap()
            .unwrap()
            .get_i64("counter"),
        Some(2)
    );
    assert_eq!(clone.close().unwrap(), TidyReport::default());
}

// ---------------------------------------------------------------------------------------------
// Permissions and store settings

#[test]
fn directories_are_0700_and_files_0600() {
    // The process umask (usually 022) can only remove bits; 0700/0600 have none it removes
    // unless the umask masks the owner, which no sane test environment does.
    let ts = TestStore::new();
    let store = &ts.store;
    let id = store.create(&counter_dict(1)).unwrap();
    store.checkout::<Dict>(&id).unwrap().check_in().unwrap();
    let touched = store.create(&counter_dict(2)).unwrap();
    store.touch(&touched).unwrap();
    let cycled = store
        .cycle_id(&store.create(&counter_dict(3)).unwrap())
        .unwrap();

    assert_eq!(mode_of(&ts.dir), 0o700, "store root");
    let mut dirs = 0;
    let mut files = 0;
    for entry in walkdir::WalkDir::new(&ts.dir).min_depth(1) {
        let entry = entry.unwrap();
        let mode = mode_of(entry.path());
        if entry.file_type().is_dir() {
            dirs += 1;
            assert_eq!(mode, 0o700, "{}", entry.path().display());
        } else {
            files += 1;
            assert!(entry.file_type().is_file());
            assert_eq!(mode, 0o600, "{}", entry.path().display());
        }
    }
    // sessions/, locks/, 4 shards each; marker + 3 sessions + 3 lock files.
    assert_eq!(dirs, 2 + 8);
    assert_eq!(files, 1 + 3 + 3);
    for id in [id, touched, cycled] {
        assert_eq!(mode_of(&store.session_path(&id)), 0o600);
        assert_eq!(mode_of(&lock_path_of(store, &id)), 0o600);
    }
    assert_eq!(mode_of(&ts.dir.join("sessiondir.store")), 0o600);
}

#[test]
fn fan_out_is_fixed_at_creation() {
    let ts = TestStore::new();
    let id = ts.store.create(&counter_dict(5)).unwrap();
    let before = tree_snapshot(&ts.dir);

    match Store::builder(&ts.dir).fan_out(8).open() {
        Err(Error::Config { path, reason }) => {
            assert_eq!(path, ts.dir.join("sessiondir.store"));
            assert!(reason.contains('4') && reason.contains('8'), "{reason}");
        }
        other => panic!("expected Config, got {other:?}"),
    }
    assert_eq!(
        tree_snapshot(&ts.dir),
        before,
        "a refused open changed the store"
    );

    // No fan-out asked: the stored one is adopted, and sessions are found where they are.
    let adopted = Store::open(&ts.dir).unwrap();
    assert_eq!(adopted.fan_out(), 4);
    assert_eq!(adopted.session_path(&id), ts.store.session_path(&id));
    assert_eq!(adopted.load::<Dict>(&id).unwrap(), Some(counter_dict(5)));
    assert_eq!(
        Store::builder(&ts.dir).fan_out(4).open().unwrap().fan_out(),
        4
    );

    // Out of range fan-outs are refused.
    let tmp = tempfile::tempdir().unwrap();
    for bad in [0, 4097] {
        let dir = tmp.path().join(format!("bad{bad}"));
        match Store::builder(&dir).fan_out(bad).open() {
            Err(Error::Config { reason, .. }) => assert!(reason.contains("fan-out"), "{reason}"),
            other => panic!("fan-out {bad}: expected Config, got {other:?}"),
        }
    }
    // The default fan-out is 256, and it sticks.
    let dir = tmp.path().join("default");
    assert_eq!(Store::open(&dir).unwrap().fan_out(), 256);
    assert_eq!(Store::open(&dir).unwrap().fan_out(), 256);
    assert!(matches!(
        Store::builder(&dir).fan_out(4).open(),
        Err(Error::Config { .. })
    ));
}

#[test]
fn a_directory_others_can_write_is_refused_unless_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("shared");
    fs::create_dir(&root).unwrap();
    fs::set_permissions(&root, fs::Permissions::from_mode(0o777)).unwrap();
    let before = tree_snapshot(&root);
    match Store::open(&root) {
        Err(e @ Error::UnsafePath { .. }) => {
            let Error::UnsafePath { path, .. } = &e else {
                unreachable!()
            };
            assert_eq!(path, &root);
            assert!(e.to_string().contains(&root.display().to_string()), "{e}");
        }
        other => panic!("expected UnsafePath, got {other:?}"),
    }
    assert_eq!(
        tree_snapshot(&root),
        before,
        "a refused open wrote something"
    );

    // Group-writable is refused too (the default file mode gives the group nothing).
    fs::set_permissions(&root, fs::Permissions::from_mode(0o770)).unwrap();
    assert!(matches!(
        Store::open(&root),
        Err(Error::UnsafePath { path, .. }) if path == root
    ));

    fs::set_permissions(&root, fs::Permissions::from_mode(0o777)).unwrap();
    let store = Store::builder(&root)
        .fan_out(2)
        .allow_shared_dir(true)
        .open()
        .unwrap();
    let id = store.create(&counter_dict(1)).unwrap();
    assert_eq!(store.load::<Dict>(&id).unwrap(), Some(counter_dict(1)));

    // An existing store whose shard directory became world-writable is refused too.
    let ts = TestStore::new();
    let shard = ts.dir.join("locks").join("2");
    assert!(shard.is_dir());
    fs::set_permissions(&shard, fs::Permissions::from_mode(0o777)).unwrap();
    assert!(matches!(
        Store::open(&ts.dir),
        Err(Error::UnsafePath { path, .. }) if path == shard
    ));

    // A file mode that lets everyone read sessions is a configuration error.
    let dir = tmp.path().join("readable");
    match Store::builder(&dir).file_mode(0o644).open() {
        Err(Error::Config { reason, .. }) => assert!(reason.contains("644"), "{reason}"),
        other => panic!("expected Config, got {other:?}"),
    }
    assert!(!dir.exists());
}

#[test]
fn every_durability_level_works_end_to_end() {
    for level in [
        Durability::None,
        Durability::FileData,
        Durability::FileAndDirectory,
    ] {
        let ts = TestStore::with(|b| b.durability(level));
        let store = &ts.store;
        let id = store.create(&counter_dict(0)).unwrap();
        let mut co = store.checkout::<Dict>(&id).unwrap();
        co.data_mut().increment("counter", 1).unwrap();
        co.save().unwrap();
        co.data_mut().increment("counter", 1).unwrap();
        co.check_in().unwrap();
        assert_eq!(store.touch(&id).unwrap().generation, 4, "{level:?}");
        store
            .set_expiry(&id, Expiry::Idle(Duration::from_secs(60)))
            .unwrap();
        let new = store.cycle_id(&id).unwrap();
        let d: Dict = store.load(&new).unwrap().unwrap();
        assert_eq!(d.get_i64("counter"), Some(2), "{level:?}");
        assert_eq!(info(store, &new).generation, 5, "{level:?}");
        assert_eq!(store.load::<Dict>(&id).unwrap(), None);

        let gone = store
            .create_with_expiry(&Dict::new(), Expiry::At(whole_ms_from_now(-1000)))
            .unwrap();
        let report = store.delete_expired().unwrap();
        assert_eq!((report.scanned, report.deleted), (2, 1), "{level:?}");
        assert_eq!(store.info(&gone).unwrap(), None);

        assert!(store.delete(&new).unwrap(), "{level:?}");
        assert!(!store.delete(&new).unwrap(), "{level:?}");
        assert_eq!(store.ids().count(), 0);
        assert_eq!(store.tidy().unwrap(), TidyReport::default());
        assert_eq!(all_files(&ts.dir), vec![ts.dir.join("sessiondir.store")]);
    }
}

#[test]
fn error_helpers_classify_errors() {
    let ts = TestStore::new();
    let id = ts.store.create(&Dict::new()).unwrap();
    ts.store.delete(&id).unwrap();
    let e = ts.store.checkout::<Dict>(&id).unwrap_err();
    assert!(e.is_gone());
    assert_eq!(e.session_id(), Some(&id));
    assert_eq!(e.to_string(), format!("session {id} not found"));
    let e = SessionId::parse("nope").unwrap_err();
    assert!(!e.is_gone());
    assert_eq!(e.session_id(), None);
    // Decoding as the wrong type is a Decode error naming the file, not a panic.
    let id = ts.store.create(&2u8).unwrap();
    match ts.store.load::<bool>(&id) {
        Err(Error::Decode { path, .. }) => assert_eq!(path, ts.store.session_path(&id)),
        Ok(v) => panic!("decoded the byte 2 as the bool {v:?}"),
        Err(other) => panic!("expected Decode, got {other:?}"),
    }
}
