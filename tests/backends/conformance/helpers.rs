//! What the contract's tests share: an observer recording waits, a second handle reporting to
//! it, a bound on calls that must not wait, sample data, and short reads of a store.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;

use sessiondir::{Backend, Dict, LockStats, Observer, SessionId, Value};

pub use crate::common::n_of;

use super::fixture::{Fixture, PATIENCE, Settings};

// ---------------------------------------------------------------------------------------------
// Helpers.
// ---------------------------------------------------------------------------------------------

/// Records the observer's `waiting` notifications.
#[derive(Default)]
pub struct Waits {
    ids: Mutex<Vec<SessionId>>,
}

impl Waits {
    pub fn count(&self, id: &SessionId) -> usize {
        self.ids
            .lock()
            .expect("waits")
            .iter()
            .filter(|w| *w == id)
            .count()
    }
}

impl Observer for Waits {
    fn waiting(&self, id: &SessionId) {
        self.ids.lock().expect("waits").push(*id);
    }
}

/// A second handle on the fixture's sessions whose waits are reported to the returned record.
pub fn observed_handle<F: Fixture>(fx: &F) -> (F::B, Arc<Waits>) {
    let waits = Arc::new(Waits::default());
    let handle = fx.open_another(Settings::observer(waits.clone()));
    (handle, waits)
}

/// Runs `f` on another thread and fails the test if it has not returned within [`PATIENCE`]:
/// for calls that must not wait.
pub fn within<R: Send + 'static>(what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(PATIENCE)
        .unwrap_or_else(|_| panic!("{what} did not return within {PATIENCE:?}"))
}

pub fn dict(pairs: &[(&str, Value)]) -> Dict {
    let mut d = Dict::new();
    for (k, v) in pairs {
        d.insert(*k, v.clone());
    }
    d
}

/// A dictionary with every kind of value.
pub fn sample() -> Dict {
    let mut nested = BTreeMap::new();
    nested.insert(
        "inner".to_owned(),
        Value::List(vec![Value::Int(1), Value::Null]),
    );
    dict(&[
        ("null", Value::Null),
        ("yes", Value::Bool(true)),
        ("no", Value::Bool(false)),
        ("min", Value::Int(i64::MIN)),
        ("max", Value::Int(i64::MAX)),
        ("float", Value::Float(-1234.5e-7)),
        ("text", Value::Text("héllo, wörld ✓".to_owned())),
        ("empty", Value::Text(String::new())),
        ("bytes", Value::Bytes(vec![0, 1, 0xfe, 0xff])),
        (
            "list",
            Value::List(vec![Value::Text("a".to_owned()), Value::Float(0.25)]),
        ),
        ("map", Value::Map(nested)),
    ])
}

pub fn generation<B: Backend>(store: &B, id: &SessionId) -> u64 {
    store
        .info(id)
        .expect("info")
        .expect("session exists")
        .generation
}

pub fn id_set<B: Backend>(store: &B) -> HashSet<SessionId> {
    let ids: Vec<SessionId> = store.ids().map(|r| r.expect("ids")).collect();
    let set: HashSet<SessionId> = ids.iter().copied().collect();
    assert_eq!(set.len(), ids.len(), "ids() yields each id once: {ids:?}");
    set
}

/// An id of the caller's drawing, from the OS CSPRNG as `create_with_id` requires.
pub fn drawn_id() -> SessionId {
    let mut raw = [0u8; 20];
    getrandom::fill(&mut raw).expect("random bytes");
    SessionId::from_bytes(raw)
}

/// Checks the session out and releases it: proves nobody holds it (a waiting check-out, so a
/// spawned process's brief copy of a just-released lock does not count; a session never
/// released fails after [`PATIENCE`] with `LockTimeout`).
pub fn free_again<B: Backend>(store: &B, id: &SessionId, what: &str) {
    match store.checkout::<Dict>(id) {
        Ok(session) => session.release(),
        Err(error) => panic!("{what}: {error:?}"),
    }
}

pub fn acquisitions(s: &LockStats) -> u64 {
    s.immediate + s.local_queue + s.event + s.poll
}
