//! # sessiondir
//!
//! A web session store on a plain directory: one file per session, shared safely by many worker
//! processes and threads, with no database and no server.
//!
//! A request **checks out** a session (an exclusive lock; concurrent requests for the same
//! session wait, and are woken as soon as it is released), changes it, and **checks it in**
//! with an atomic rename. Requests that only read use [`Store::load`], which never waits and
//! never sees half a file.
//!
//! ```
//! use sessiondir::{Dict, Store};
//!
//! # let tmp = tempfile::tempdir()?;
//! # let dir = tmp.path().join("sessions");
//! let store = Store::open(&dir)?;
//!
//! // A new visitor: create a session and send its id in a cookie.
//! let id = store.create(&Dict::new())?;
//!
//! // A request that changes the session: check out, change, check in.
//! let mut session = store.checkout::<Dict>(&id)?;
//! session.data_mut().increment("counter", 1)?;
//! session.check_in()?;
//!
//! // A request that only reads: no lock, no waiting.
//! let seen: Dict = store.load(&id)?.expect("the session exists");
//! assert_eq!(seen.get_i64("counter"), Some(1));
//!
//! // The id in a cookie is untrusted input: parse it, never build a path from raw text.
//! assert!(sessiondir::SessionId::parse("../../etc/passwd").is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Guarantees
//!
//! * **Exclusive check-out** across processes and threads: no two holders, ever (an
//!   `flock(2)` on a per-session lock file that is never renamed, verified after locking).
//! * **No lost update**: every check-in is a complete new file renamed over the old one by the
//!   only holder of the lock.
//! * **Crash safety**: a worker killed at any point (even with SIGKILL) releases its sessions at
//!   once (the kernel drops its locks) and leaves either the old or the new version of each
//!   session, never a torn one; its temporary files are removed by [`Store::tidy`] /
//!   [`Store::close`], never a live writer's.
//! * **Lock-free reads**: [`Store::load`] takes no lock and sees the last checked-in version.
//! * **Prompt wake-up, no starvation**: a waiter in the same process is woken directly by the
//!   releasing thread; a waiter in another process waits in the kernel's own `flock` queue
//!   (through a helper thread, so the lock timeout stays exact) and is woken by the release
//!   itself; a process that keeps re-taking a contended session steps aside every few times.
//!   Polling every [`poll_delay`](StoreBuilder::poll_delay) at most is the fallback.
//! * **Safe ids and paths**: ids carry 160 bits from the OS CSPRNG; ids from outside are
//!   validated before any path is built; symlinks inside the store are never followed (its
//!   directories are checked at open, and again by tidy and gc before they remove anything);
//!   files are 0600 and directories 0700 by default, owned by the store's user.
//! * **Typed errors** naming the id or path: damaged files never panic and never block other
//!   sessions.
//!
//! ## Not guaranteed
//!
//! * Durability across power loss depends on [`Durability`] (none by default).
//! * Network and FUSE file systems (NFS, CIFS, JuiceFS, GlusterFS, ...): their locks and caches
//!   may break exclusion, so [`Store::open`] refuses them unless
//!   [`StoreBuilder::allow_network_fs`] opts in; then check-ins are fenced
//!   ([`StoreBuilder::fencing`]): a check-in over a version the holder did not read is refused
//!   with [`Error::Conflict`]. That narrows the damage a non-excluding lock can do, but does
//!   not close it, and does nothing against caches that serve old files (`docs/design.md`
//!   §13); the Redis backend does. `sessiondir::doctor` (feature `doctor`) checks a mount (and a second mount of
//!   the same share) for locks that exclude and renames the next reader sees;
//!   `docs/shared-filesystems.md` lists the configurations that pass.
//! * Strict arrival order: waiters are served by the kernel's queue, but a releasing process
//!   may re-take a contended session a few times in a row.
//! * Open the store after `fork`, and never fork while holding a check-out.
//! * Keep the store directory away from temporary-file cleaners: a lock file removed under its
//!   holder is detected at check-in ([`Error::LockLost`]) but not before.
//!
//! ## Web frameworks
//!
//! * `tower-sessions` feature: `sessiondir::tower::TowerStore`, a
//!   `tower_sessions_core::SessionStore` and `ExpiredDeletion` (tower-sessions 0.15). `create`
//!   never overwrites (a taken id is redrawn), `load` is lock-free and gives `None` for missing
//!   or expired sessions, `save` is an atomic check-in, `delete` takes the lock; all file I/O
//!   runs in `spawn_blocking`, off the executor's threads.
//! * `actix-session` feature: `sessiondir::actix::ActixStore`, an
//!   `actix_session::storage::SessionStore` (actix-session 0.11) with the same contract; the
//!   session key is the sessiondir id, and an invalid key loads as no session.
//!
//! Both store a session as a [`Dict`] of JSON texts, which `sessiondir show` displays and the
//! actix adapter can load from either. Neither trait can hold a session's lock across a
//! request, so two concurrent requests on one session still end "last writer wins" (each save
//! atomic, never a torn file); the `axum` feature holds the check-out for the whole request.
//!
//! `axum` feature: `sessiondir::axum`, a tower layer (`SessionLayer`) and two extractors that
//! give axum handlers sessiondir's own semantics. `SessionMut<T>` checks the session out when
//! the handler asks for it and checks it in when the handler returns a 2xx or 3xx response;
//! an error response or a panic releases it without writing; so concurrent requests on one
//! session, in any worker process, lose no update. `SessionRef<T>` is a lock-free snapshot
//! that never waits for a writer. The cookie is `HttpOnly`, `SameSite=Lax` and `Secure` by
//! default, follows `cycle_id`, and an id the client sends is used only if a live session has
//! it (a fresh session otherwise, created only when a handler writes to it).
//!
//! ## Beyond one machine
//!
//! [`Backend`] is the session API both stores offer. With the `redis` feature,
//! `sessiondir::redis::RedisStore` keeps sessions on a Redis or Valkey server: leases with a
//! random token and a fencing number, verified by server-side scripts at check-in, release and
//! extension, so a holder stalled past its lease can never overwrite the next holder's data
//! ([`Error::Conflict`]). Code written against `B: Backend` switches stores with one
//! constructor; code that names [`Store`] pays nothing for the seam.
//!
//! The on-disk layout, file format, lock protocol and its invariants are argued in
//! `docs/design.md`.

// The vocabulary every wing speaks: ids, session data, errors, settings, observers, and the
// session record (header rules, clock, file format) and its caller-friendly views.
mod dict;
mod error;
mod format;
mod id;
mod info;
mod observer;
mod settings;

// The session API both backends offer: the `Backend` trait and the generic `Checkout` guard
// (public so that its documentation is reachable; `Checkout` and `CheckinError` below are the
// names to use).
pub mod backend;

// The lock protocol: flock chokepoint, in-process queue, kernel-queue waiting and wake-up,
// bounded barging, acquisition; behind one `Locks` value. Knows nothing of the store.
mod lock;

// The disk primitives: the only renames and unlinks, safe opens, file-system detection.
mod fs;

// The session directory backend: `Store`, its builder, layout, held check-out, gc, tidy,
// walk, watch.
mod store;

// The same sessions on a Redis or Valkey server, behind the same `Backend` API.
#[cfg(feature = "redis")]
pub mod redis;

// Probing a directory (and a second mount of it) for working locks and fresh reads.
#[cfg(feature = "doctor")]
pub mod doctor;

// The web-framework adapters (tower-sessions, actix-session, axum), on the public API only.
mod web;
#[cfg(feature = "actix-session")]
pub use web::actix;
#[cfg(feature = "axum")]
pub use web::axum;
#[cfg(feature = "tower-sessions")]
pub use web::tower;

pub use backend::{Backend, GcReport, Refused};
pub use dict::{Dict, EntryError, MAX_NESTING, Value, WrongType};
pub use error::{Corruption, Error};
pub use format::{FORMAT_VERSION, HEADER_LEN};
pub use fs::{FileSystem, file_system};
pub use id::SessionId;
pub use info::{Forward, SessionInfo, Snapshot};
pub use observer::{AcquiredBy, Acquisition, LockStats, Observer};
pub use settings::{Durability, Expiry};
pub use store::{
    Change, ChangeKind, FORWARD_LIFETIME, GcPolicy, SessionIds, Store, StoreBuilder, TidyReport,
    Watch,
};

/// A session checked out for exclusive use: [`backend::Checkout`], with the directory
/// [`Store`] as its default backend. `Checkout<T>` is a check-out of the session directory;
/// with the `redis` feature, `Checkout<T, RedisStore>` is one of Redis.
///
/// (An alias, so that the generic guard in [`backend`] need not name the directory store it
/// defaults to: the API wing stays below the store.)
pub type Checkout<T, B = Store> = backend::Checkout<T, B>;

/// A failed check-in: [`backend::CheckinError`], with the directory [`Store`] as its default
/// backend.
pub type CheckinError<T, B = Store> = backend::CheckinError<T, B>;

/// Entry points for the fuzz targets in `fuzz/` and their regression test
/// (`tests/it/fuzz_regressions.rs`). **Not a stable API**: it exists only for fuzzing, is
/// compiled only with the `fuzzing` feature, and may change or go away in any release.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::format::read_session_file;
}

/// The README's Rust snippets, compiled as doctests (`cargo test --doc --all-features`), so
/// that none of them can drift from the API (issue 18, point 6). Each is `no_run`: they name
/// `/var/lib/myapp` and a Redis server. `tests/adapters/readme.rs` checks that README has no
/// Rust snippet this skips.
#[cfg(all(
    doctest,
    feature = "axum",
    feature = "tower-sessions",
    feature = "actix-session",
    feature = "redis"
))]
#[doc = include_str!("../README.md")]
pub struct ReadmeSnippets;
