//! The core contract of [`Backend`], written once as generic functions over a [`Fixture`] (a
//! fresh store of one backend) and run against both stores by `conformance_tests!` at the
//! bottom: `conformance::dir::*` on a session directory, `conformance::redis::*` on a
//! `redis-server` of the test's own.
//!
//! Every call on a store goes through the `Backend` trait. Where the backends legitimately
//! differ (an expired session: still on disk and `Expired` in the directory, removed by the
//! server and `NotFound` in Redis; `delete_expired`: real work in the directory, nothing to do in
//! Redis), the test says so with an explicit branch on [`Fixture::KIND`].
//!
//! Waiters: a check-out waiting behind a *clone* of the directory store queues in memory and
//! tells the observer nothing, so tests that must know a waiter is really blocked put it on a
//! second, independently opened handle ([`Fixture::open_another`], as another worker process
//! would be) whose observer reports `waiting`. Both backends announce such a wait.
//!
//! Released is not always free at once in the directory store: a `flock` belongs to the open
//! file, and a process spawned by *any* thread (this binary starts a `redis-server` per Redis
//! test, and child processes) holds a copy of every descriptor from its fork until its exec.
//! So a session just released (or just created, or just read under the lock) can answer
//! `try_checkout` with `Busy`, and gc can skip it, for that moment. Tests therefore prove "it
//! was released" with a waiting check-out bounded by [`PATIENCE`] ([`free_again`]), and run gc
//! only on sessions whose lock this process has not taken lately.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use serde::Deserialize;
use sessiondir::redis::RedisStore;
use sessiondir::{
    AcquiredBy, Backend, Checkout, Dict, Error, Expiry, GcReport, LockStats, Observer, SessionId,
    Store, Value,
};

use crate::common::{RedisServer, TestStore, wait_until};

/// Upper bound for anything awaited, and the default lock timeout (a broken wait fails the
/// test instead of hanging it).
const PATIENCE: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Fixtures: one per backend.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    Redis,
}

/// Builder settings a test may ask for (both builders have them).
#[derive(Clone, Default)]
struct Settings {
    lock_timeout: Option<Duration>,
    observer: Option<Arc<dyn Observer>>,
}

impl Settings {
    fn lock_timeout(timeout: Duration) -> Self {
        Settings {
            lock_timeout: Some(timeout),
            observer: None,
        }
    }

    fn observer(observer: Arc<dyn Observer>) -> Self {
        Settings {
            lock_timeout: None,
            observer: Some(observer),
        }
    }
}

/// A fresh, empty store of one backend, cleaned up on drop.
trait Fixture: Sized {
    type B: Backend;
    const KIND: Kind;

    fn start_with(settings: Settings) -> Self;

    fn start() -> Self {
        Self::start_with(Settings::default())
    }

    fn store(&self) -> &Self::B;

    /// A second handle on the same sessions, opened independently (sharing no in-process
    /// state with [`store`](Self::store) and its clones), as another worker process holds.
    fn open_another(&self, settings: Settings) -> Self::B;

    /// Where session `id` lives, as error messages name it (file path, or server and key).
    fn location(&self, id: &SessionId) -> String;

    /// Lock statistics of [`store`](Self::store) and its clones.
    fn lock_stats(&self) -> LockStats;
}

struct DirFixture {
    dir: TestStore,
}

fn dir_builder(b: sessiondir::StoreBuilder, settings: Settings) -> sessiondir::StoreBuilder {
    let b = b.lock_timeout(settings.lock_timeout.unwrap_or(PATIENCE));
    match settings.observer {
        Some(observer) => b.observer(observer),
        None => b,
    }
}

impl Fixture for DirFixture {
    type B = Store;
    const KIND: Kind = Kind::Dir;

    fn start_with(settings: Settings) -> Self {
        DirFixture {
            dir: TestStore::with(|b| dir_builder(b, settings)),
        }
    }

    fn store(&self) -> &Store {
        &self.dir.store
    }

    fn open_another(&self, settings: Settings) -> Store {
        dir_builder(Store::builder(&self.dir.dir).fan_out(4), settings)
            .open()
            .expect("open a second handle on the directory")
    }

    fn location(&self, id: &SessionId) -> String {
        self.dir.store.session_path(id).display().to_string()
    }

    fn lock_stats(&self) -> LockStats {
        self.dir.store.lock_stats()
    }
}

struct RedisFixture {
    store: RedisStore,
    server: RedisServer,
}

fn redis_open(server: &RedisServer, settings: Settings) -> RedisStore {
    let b = server
        .builder()
        .lock_timeout(settings.lock_timeout.unwrap_or(PATIENCE));
    let b = match settings.observer {
        Some(observer) => b.observer(observer),
        None => b,
    };
    b.open().expect("open redis store")
}

impl Fixture for RedisFixture {
    type B = RedisStore;
    const KIND: Kind = Kind::Redis;

    fn start_with(settings: Settings) -> Self {
        let server = RedisServer::start();
        RedisFixture {
            store: redis_open(&server, settings),
            server,
        }
    }

    fn store(&self) -> &RedisStore {
        &self.store
    }

    fn open_another(&self, settings: Settings) -> RedisStore {
        redis_open(&self.server, settings)
    }

    fn location(&self, id: &SessionId) -> String {
        format!("{}/{}", self.store.server(), self.store.session_key(id))
    }

    fn lock_stats(&self) -> LockStats {
        self.store.lock_stats()
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers.
// ---------------------------------------------------------------------------------------------

/// Records the observer's `waiting` notifications.
#[derive(Default)]
struct Waits {
    ids: Mutex<Vec<SessionId>>,
}

impl Waits {
    fn count(&self, id: &SessionId) -> usize {
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
fn observed_handle<F: Fixture>(fx: &F) -> (F::B, Arc<Waits>) {
    let waits = Arc::new(Waits::default());
    let handle = fx.open_another(Settings::observer(waits.clone()));
    (handle, waits)
}

/// Runs `f` on another thread and fails the test if it has not returned within [`PATIENCE`]:
/// for calls that must not wait.
fn within<R: Send + 'static>(what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(PATIENCE)
        .unwrap_or_else(|_| panic!("{what} did not return within {PATIENCE:?}"))
}

fn dict(pairs: &[(&str, Value)]) -> Dict {
    let mut d = Dict::new();
    for (k, v) in pairs {
        d.insert(*k, v.clone());
    }
    d
}

/// A dictionary with every kind of value.
fn sample() -> Dict {
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

fn n_of<B: Backend>(store: &B, id: &SessionId) -> i64 {
    store
        .load::<Dict>(id)
        .expect("load")
        .expect("session exists")
        .get_i64("n")
        .unwrap_or(0)
}

fn generation<B: Backend>(store: &B, id: &SessionId) -> u64 {
    store
        .info(id)
        .expect("info")
        .expect("session exists")
        .generation
}

fn id_set<B: Backend>(store: &B) -> HashSet<SessionId> {
    let ids: Vec<SessionId> = store.ids().map(|r| r.expect("ids")).collect();
    let set: HashSet<SessionId> = ids.iter().copied().collect();
    assert_eq!(set.len(), ids.len(), "ids() yields each id once: {ids:?}");
    set
}

/// An id of the caller's drawing, from the OS CSPRNG as `create_with_id` requires.
fn drawn_id() -> SessionId {
    let mut raw = [0u8; 20];
    getrandom::fill(&mut raw).expect("random bytes");
    SessionId::from_bytes(raw)
}

/// Checks the session out and releases it: proves nobody holds it (a waiting check-out, so a
/// spawned process's brief copy of a just-released lock does not count; a session never
/// released fails after [`PATIENCE`] with `LockTimeout`).
fn free_again<B: Backend>(store: &B, id: &SessionId, what: &str) {
    match store.checkout::<Dict>(id) {
        Ok(session) => session.release(),
        Err(error) => panic!("{what}: {error:?}"),
    }
}

fn acquisitions(s: &LockStats) -> u64 {
    s.immediate + s.local_queue + s.event + s.poll
}

// ---------------------------------------------------------------------------------------------
// 1. create → load, exists, info, snapshot.
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
// 2. Check-in, generations, save.
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
// 3. Dropping or releasing writes nothing.
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

// ---------------------------------------------------------------------------------------------
// 4. Busy and LockTimeout.
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
// 5. A waiter gets the session after the holder checks in, and sees its write.
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
// 6. No lost update under contention.
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
// 7. Delete.
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
// 8. Id cycling.
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

// ---------------------------------------------------------------------------------------------
// 9. create_with_id.
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

// ---------------------------------------------------------------------------------------------
// 10. Expiry.
// ---------------------------------------------------------------------------------------------

fn idle_expiry_removes_the_session<F: Fixture>() {
    const TTL: Duration = Duration::from_millis(500);
    let fx = F::start();
    let store = fx.store();
    let keep = store
        .create(&dict(&[("n", Value::Int(1))]))
        .expect("create");
    let brief = store
        .create_with_expiry(&sample(), Expiry::Idle(TTL))
        .expect("create");
    // Held from before it expires until after gc.
    let pinned = store
        .create_with_expiry(&sample(), Expiry::Idle(TTL))
        .expect("create");
    let held = store.checkout::<Dict>(&pinned).expect("check out");
    let info = store.info(&brief).expect("info").expect("exists");
    assert_eq!(info.idle_ttl, Some(TTL));
    assert_eq!(info.expires, Some(info.modified + TTL));
    assert_eq!(info.expiry(), Expiry::Idle(TTL));

    wait_until(PATIENCE, "the sessions to expire", || {
        store.load::<Dict>(&brief).expect("load").is_none()
            && store.load::<Dict>(&pinned).expect("load").is_none()
    });
    assert!(!store.exists(&brief).expect("exists"));
    assert!(store.snapshot::<Dict>(&brief).expect("snapshot").is_none());

    match F::KIND {
        Kind::Dir => {
            // Still on disk until collected: info and ids show it.
            let info = store.info(&brief).expect("info").expect("still on disk");
            assert!(info.is_expired());
            assert_eq!(id_set(store), HashSet::from([keep, brief, pinned]));
            // gc deletes the expired session nobody holds and skips the held one.
            let report = store.delete_expired().expect("delete_expired");
            assert_eq!(
                (
                    report.scanned,
                    report.deleted,
                    report.skipped_busy,
                    report.damaged
                ),
                (3, 1, 1, 0),
                "{report:?}"
            );
            assert_eq!(report.bytes_freed, info.file_len());
            assert_eq!(store.info(&brief).expect("info"), None);
            // Released, the expired session is there for check-out to call Expired.
            held.release();
            let error = store.checkout::<Dict>(&pinned).expect_err("expired");
            assert!(
                matches!(error, Error::Expired { id } if id == pinned),
                "{error:?}"
            );
            assert_eq!(id_set(store), HashSet::from([keep, pinned]));
        }
        Kind::Redis => {
            // The server removes the keys itself, held or not; check-out says NotFound.
            wait_until(PATIENCE, "the server to remove the keys", || {
                store.info(&brief).expect("info").is_none()
                    && store.info(&pinned).expect("info").is_none()
            });
            let error = store.checkout::<Dict>(&brief).expect_err("expired");
            assert!(
                matches!(error, Error::NotFound { id } if id == brief),
                "{error:?}"
            );
            assert_eq!(id_set(store), HashSet::from([keep]));
            let report = store.delete_expired().expect("delete_expired");
            assert_eq!(report, GcReport::default(), "nothing to do on Redis");
            held.release();
            let error = store.checkout::<Dict>(&pinned).expect_err("expired");
            assert!(
                matches!(error, Error::NotFound { id } if id == pinned),
                "{error:?}"
            );
            assert_eq!(id_set(store), HashSet::from([keep]));
        }
    }
    assert!(store.checkout::<Dict>(&brief).expect_err("gone").is_gone());
    assert_eq!(n_of(store, &keep), 1, "a session without expiry stays");
}

fn touch_slides_only_a_sliding_expiry<F: Fixture>() {
    const TTL: Duration = Duration::from_secs(60);
    let fx = F::start();
    let store = fx.store();
    let clock_moves_past = |t: SystemTime| {
        wait_until(PATIENCE, "the clock to move on", || {
            SystemTime::now() >= t + Duration::from_millis(20)
        });
    };

    // Sliding: touch and check-in push the expiry later.
    let sliding = store
        .create_with_expiry(&sample(), Expiry::Idle(TTL))
        .expect("create");
    let first = store.info(&sliding).expect("info").expect("exists");
    clock_moves_past(first.modified);
    let touched = store.touch(&sliding).expect("touch");
    assert!(
        touched.expires > first.expires,
        "{:?} > {:?}",
        touched.expires,
        first.expires
    );
    assert_eq!(touched.expires, Some(touched.modified + TTL));
    assert_eq!(touched.idle_ttl, Some(TTL));
    assert_eq!(touched.generation, first.generation + 1);
    assert_eq!(touched.created, first.created);
    assert_eq!(store.info(&sliding).expect("info"), Some(touched.clone()));
    assert_eq!(
        store.load::<Dict>(&sliding).expect("load"),
        Some(sample()),
        "touch leaves the data"
    );
    clock_moves_past(touched.modified);
    let session = store.checkout::<Dict>(&sliding).expect("check out");
    session.check_in().expect("check in");
    let checked_in = store.info(&sliding).expect("info").expect("exists");
    assert!(
        checked_in.expires > touched.expires,
        "a check-in slides too"
    );
    assert_eq!(checked_in.expires, Some(checked_in.modified + TTL));

    // Fixed: touch changes the modification time only.
    let at = SystemTime::now() + Duration::from_secs(3600);
    let fixed = store
        .create_with_expiry(&sample(), Expiry::At(at))
        .expect("create");
    let first = store.info(&fixed).expect("info").expect("exists");
    assert_eq!(first.idle_ttl, None);
    let expires = first.expires.expect("a fixed expiry");
    assert!(
        expires <= at && at < expires + Duration::from_millis(1),
        "ms precision"
    );
    clock_moves_past(first.modified);
    let touched = store.touch(&fixed).expect("touch");
    assert_eq!(touched.expires, first.expires);
    assert!(touched.modified > first.modified);
    assert_eq!(touched.generation, 2);

    // Never: no expiry, before and after a touch.
    let never = store
        .create_with_expiry(&sample(), Expiry::Never)
        .expect("create");
    let info = store.info(&never).expect("info").expect("exists");
    assert_eq!((info.expires, info.idle_ttl), (None, None));
    assert_eq!(info.expiry(), Expiry::Never);
    let touched = store.touch(&never).expect("touch");
    assert_eq!((touched.expires, touched.idle_ttl), (None, None));
    assert_eq!(store.info(&never).expect("info"), Some(touched));
}

fn set_expiry_changes_the_rule<F: Fixture>() {
    let fx = F::start();
    let store = fx.store();
    let id = store
        .create(&dict(&[("n", Value::Int(1))]))
        .expect("create");

    let info = store
        .set_expiry(&id, Expiry::Idle(Duration::from_secs(60)))
        .expect("set_expiry");
    assert_eq!(info.idle_ttl, Some(Duration::from_secs(60)));
    assert_eq!(info.expires, Some(info.modified + Duration::from_secs(60)));
    assert_eq!(info.generation, 2);
    assert_eq!(store.info(&id).expect("info"), Some(info));

    let info = store.set_expiry(&id, Expiry::Never).expect("set_expiry");
    assert_eq!(
        (info.expires, info.idle_ttl, info.generation),
        (None, None, 3)
    );
    assert_eq!(n_of(store, &id), 1, "set_expiry leaves the data");

    // A time in the past: gone at once.
    let past = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    let info = store.set_expiry(&id, Expiry::At(past)).expect("set_expiry");
    assert_eq!(info.expires, Some(past));
    assert_eq!(store.load::<Dict>(&id).expect("load"), None);
    assert!(!store.exists(&id).expect("exists"));
    let error = store.checkout::<Dict>(&id).expect_err("expired");
    assert!(error.is_gone(), "{error:?}");
    match F::KIND {
        Kind::Dir => {
            assert!(matches!(error, Error::Expired { .. }), "{error:?}");
            assert!(
                store
                    .info(&id)
                    .expect("info")
                    .is_some_and(|i| i.is_expired()),
                "on disk until collected"
            );
            assert!(
                store.delete(&id).expect("delete"),
                "delete removes the expired file"
            );
        }
        Kind::Redis => {
            assert!(matches!(error, Error::NotFound { .. }), "{error:?}");
            assert_eq!(
                store.info(&id).expect("info"),
                None,
                "the server removed it"
            );
            assert!(
                !store.delete(&id).expect("delete"),
                "nothing left to delete"
            );
        }
    }
    assert!(store.ids().next().is_none(), "nothing left");

    // Checkout::set_expiry is written by the check-in: a brief session made permanent stays
    // past its old expiry.
    let brief = store
        .create_with_expiry(&Dict::new(), Expiry::Idle(Duration::from_millis(300)))
        .expect("create");
    let old = store.info(&brief).expect("info").expect("exists");
    let mut session = store.checkout::<Dict>(&brief).expect("check out");
    session.set_expiry(Expiry::Never);
    session.data_mut().insert("n", 2);
    session.check_in().expect("check in");
    let info = store.info(&brief).expect("info").expect("exists");
    assert_eq!((info.expires, info.idle_ttl), (None, None));
    let old_expiry = old.expires.expect("had an expiry");
    wait_until(PATIENCE, "the old expiry to pass", || {
        SystemTime::now() > old_expiry + Duration::from_millis(200)
    });
    assert_eq!(n_of(store, &brief), 2, "still there past the old expiry");
}

// ---------------------------------------------------------------------------------------------
// 11. ids().
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
// 12. delete_idle.
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

// ---------------------------------------------------------------------------------------------
// 13. Wrong type.
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
// 14. Invalid ids.
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

// ---------------------------------------------------------------------------------------------
// 15. Lock-free reads during a hold.
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

// ---------------------------------------------------------------------------------------------
// Each test above, once per backend.
// ---------------------------------------------------------------------------------------------

macro_rules! conformance_tests {
    ($($(#[$attr:meta])* $test:ident),* $(,)?) => {
        /// The session directory (`sessiondir::Store`).
        mod dir {
            $(
                #[test]
                $(#[$attr])*
                fn $test() {
                    super::$test::<super::DirFixture>();
                }
            )*
        }

        /// Redis (`sessiondir::redis::RedisStore`), a server per test.
        mod redis {
            $(
                #[test]
                $(#[$attr])*
                fn $test() {
                    super::$test::<super::RedisFixture>();
                }
            )*
        }
    };
}

conformance_tests!(
    create_load_info_snapshot,
    checkin_lands_and_save_keeps_the_session_held,
    drop_and_release_write_nothing,
    busy_and_lock_timeout,
    waiters_get_the_session_after_the_holder_and_see_its_write,
    no_lost_update_on_one_hot_session,
    no_lost_update_spread_over_sessions,
    delete_and_what_waiters_see,
    cycle_id_moves_the_session,
    create_with_id_never_overwrites,
    idle_expiry_removes_the_session,
    touch_slides_only_a_sliding_expiry,
    set_expiry_changes_the_rule,
    ids_lists_exactly_the_live_sessions,
    delete_idle_skips_fresh_and_held_sessions,
    wrong_type_is_a_decode_error_naming_the_location,
    dict_as_a_list_of_strings_is_a_decode_error,
    invalid_ids_are_refused_before_the_store,
    reads_never_wait_for_a_holder,
);
