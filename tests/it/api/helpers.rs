//! What the API tests share: an application's own session type, sample data, the bytes and
//! header of a session file, whole-millisecond times, file modes, and assertions on errors.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sessiondir::{Dict, Error, HEADER_LEN, SessionId, Store};

/// An application's own session type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cart {
    user: String,
    items: Vec<(u32, String)>,
    total_cents: u64,
    coupon: Option<String>,
    flags: [bool; 3],
}

pub fn cart() -> Cart {
    Cart {
        user: "ada@example.org".into(),
        items: vec![(3, "tea".into()), (1, "scone".into())],
        total_cents: 1_250,
        coupon: Some("WELCOME".into()),
        flags: [true, false, true],
    }
}

pub fn counter_dict(n: i64) -> Dict {
    let mut d = Dict::new();
    d.insert("counter", n);
    d.insert("user", "ada");
    d
}

pub fn file_bytes(store: &Store, id: &SessionId) -> Vec<u8> {
    fs::read(store.session_path(id)).expect("read session file")
}

pub fn payload_bytes(store: &Store, id: &SessionId) -> Vec<u8> {
    file_bytes(store, id)[HEADER_LEN..].to_vec()
}

pub fn info(store: &Store, id: &SessionId) -> sessiondir::SessionInfo {
    store.info(id).expect("info").expect("session exists")
}

pub fn ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// A point in time at a whole millisecond (what the file format stores), `offset_ms` from now.
pub fn whole_ms_from_now(offset_ms: i64) -> SystemTime {
    let now = ms(SystemTime::now()) as i64;
    UNIX_EPOCH + Duration::from_millis((now + offset_ms) as u64)
}

/// Lets the millisecond clock advance, so that a later timestamp is strictly greater.
pub fn tick() {
    std::thread::sleep(Duration::from_millis(3));
}

pub fn mode_of(path: &Path) -> u32 {
    fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// Unlinks a store file from outside the store, as an operator or attacker would (tests
/// damage stores on purpose; the library's own unlinks all go through src/atomic.rs).
#[allow(clippy::disallowed_methods)]
pub fn unlink(path: &Path) {
    fs::remove_file(path).unwrap_or_else(|e| panic!("unlink {}: {e}", path.display()));
}

#[track_caller]
pub fn assert_not_found<T: std::fmt::Debug>(r: Result<T, Error>, id: &SessionId) {
    match r {
        Err(Error::NotFound { id: got }) => assert_eq!(&got, id),
        other => panic!("expected NotFound for {id}, got {other:?}"),
    }
}

#[track_caller]
pub fn assert_expired<T: std::fmt::Debug>(r: Result<T, Error>, id: &SessionId) {
    match r {
        Err(Error::Expired { id: got }) => assert_eq!(&got, id),
        other => panic!("expected Expired for {id}, got {other:?}"),
    }
}

#[track_caller]
pub fn assert_busy<T: std::fmt::Debug>(r: Result<T, Error>, id: &SessionId) {
    match r {
        Err(Error::Busy { id: got }) => assert_eq!(&got, id),
        other => panic!("expected Busy for {id}, got {other:?}"),
    }
}
