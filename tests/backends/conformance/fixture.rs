//! The harness of the core contract of [`Backend`]: the contract is written once, as generic
//! functions over a [`Fixture`] (a fresh store of one backend), one file per concept, and each
//! file runs its functions against both stores with [`conformance_tests!`]:
//! `conformance::<concept>::dir::*` on a session directory, `conformance::<concept>::redis::*`
//! on a `redis-server` of the test's own.
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
//! was released" with a waiting check-out bounded by [`PATIENCE`] (`helpers::free_again`), and
//! run gc only on sessions whose lock this process has not taken lately.

use std::sync::Arc;
use std::time::Duration;

use sessiondir::redis::RedisStore;
use sessiondir::{Backend, LockStats, Observer, SessionId, Store};

use crate::common::{RedisServer, TestStore};

/// Upper bound for anything awaited, and the default lock timeout (a broken wait fails the
/// test instead of hanging it).
pub const PATIENCE: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Fixtures: one per backend.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    Redis,
}

/// Builder settings a test may ask for (both builders have them).
#[derive(Clone, Default)]
pub struct Settings {
    pub lock_timeout: Option<Duration>,
    pub observer: Option<Arc<dyn Observer>>,
}

impl Settings {
    pub fn lock_timeout(timeout: Duration) -> Self {
        Settings {
            lock_timeout: Some(timeout),
            observer: None,
        }
    }

    pub fn observer(observer: Arc<dyn Observer>) -> Self {
        Settings {
            lock_timeout: None,
            observer: Some(observer),
        }
    }
}

/// A fresh, empty store of one backend, cleaned up on drop.
pub trait Fixture: Sized {
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

pub struct DirFixture {
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

pub struct RedisFixture {
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
// Each test of a file, once per backend.
// ---------------------------------------------------------------------------------------------

/// Runs each named generic test of the calling file once per backend, as the tests
/// `dir::<test>` (a session directory) and `redis::<test>` (a `redis-server` of its own).
macro_rules! conformance_tests {
    ($($(#[$attr:meta])* $test:ident),* $(,)?) => {
        /// The session directory (`sessiondir::Store`).
        mod dir {
            $(
                #[test]
                $(#[$attr])*
                fn $test() {
                    super::$test::<$crate::conformance::fixture::DirFixture>();
                }
            )*
        }

        /// Redis (`sessiondir::redis::RedisStore`), a server per test.
        mod redis {
            $(
                #[test]
                $(#[$attr])*
                fn $test() {
                    // Without a redis-server: one message for the binary, and a skip (CI fails).
                    if !$crate::common::redis_available() {
                        return;
                    }
                    super::$test::<$crate::conformance::fixture::RedisFixture>();
                }
            )*
        }
    };
}

pub(crate) use conformance_tests;
