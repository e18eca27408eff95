//! [`Backend`]: the session API every store offers, so that an application switches stores
//! (the session directory, or Redis/Valkey with the `redis` feature) by changing one
//! constructor.
//!
//! Code written against `B: Backend` runs on either store; code that names [`Store`](crate::Store) directly
//! calls its inherent methods and pays nothing for the seam (the trait is implemented by
//! delegation, dispatched statically). [`Checkout`] is one guard type for all backends: its
//! data, header and check-in logic are shared, and only the held lock (`Backend::Held`)
//! differs. Name it as [`sessiondir::Checkout`](crate::Checkout) (and
//! [`sessiondir::CheckinError`](crate::CheckinError)), whose backend defaults to the directory
//! [`Store`](crate::Store); this module never names the store itself.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::id::SessionId;
use crate::info::{Forward, SessionInfo, Snapshot};
use crate::observer::LockStats;
use crate::settings::Expiry;

mod checkout;

pub use checkout::{CheckinError, Checkout};

/// The operations both stores offer, with the same meaning and the same errors.
///
/// Each method documents its contract on [`Store`](crate::Store); where a backend differs, its own type says
/// so (for instance, Redis reports an expired session as not found, because the server
/// itself removes it when it expires).
///
/// The trait is sealed: the crate's own stores implement it.
pub trait Backend: Clone + Send + Sync + 'static + sealed::Sealed {
    /// The lock a [`Checkout`] holds in this backend (an implementation detail).
    #[doc(hidden)]
    type Held: sealed::Held;

    /// Iterator over all session ids (see [`Store::ids`](crate::Store::ids)).
    type Ids: Iterator<Item = Result<SessionId, Error>>;

    /// See [`Store::create`](crate::Store::create).
    fn create<T: Serialize>(&self, data: &T) -> Result<SessionId, Error>;
    /// See [`Store::create_with_expiry`](crate::Store::create_with_expiry).
    fn create_with_expiry<T: Serialize>(
        &self,
        data: &T,
        expiry: Expiry,
    ) -> Result<SessionId, Error>;
    /// See [`Store::create_with_id`](crate::Store::create_with_id).
    fn create_with_id<T: Serialize>(
        &self,
        id: &SessionId,
        data: &T,
        expiry: Expiry,
    ) -> Result<(), Error>;
    /// See [`Store::load`](crate::Store::load).
    fn load<T: DeserializeOwned>(&self, id: &SessionId) -> Result<Option<T>, Error>;
    /// See [`Store::snapshot`](crate::Store::snapshot).
    fn snapshot<T: DeserializeOwned>(&self, id: &SessionId) -> Result<Option<Snapshot<T>>, Error>;
    /// See [`Store::exists`](crate::Store::exists).
    fn exists(&self, id: &SessionId) -> Result<bool, Error>;
    /// See [`Store::mark_active`](crate::Store::mark_active): a visitor's lock-free
    /// keep-alive of a sliding session, without reading its data or rewriting it (at most
    /// once per quarter of its idle lifetime; on Redis it raises the key's TTL and records the
    /// time in the session's hash, design §12). Missing or expired → `Ok(None)`.
    fn mark_active(&self, id: &SessionId) -> Result<Option<SessionInfo>, Error>;
    /// See [`Store::info`](crate::Store::info).
    fn info(&self, id: &SessionId) -> Result<Option<SessionInfo>, Error>;
    /// See [`Store::checkout`](crate::Store::checkout).
    fn checkout<T: DeserializeOwned>(&self, id: &SessionId) -> Result<Checkout<T, Self>, Error>;
    /// See [`Store::try_checkout`](crate::Store::try_checkout).
    fn try_checkout<T: DeserializeOwned>(&self, id: &SessionId)
    -> Result<Checkout<T, Self>, Error>;
    /// See [`Store::delete`](crate::Store::delete).
    fn delete(&self, id: &SessionId) -> Result<bool, Error>;
    /// See [`Store::cycle_id`](crate::Store::cycle_id).
    fn cycle_id(&self, id: &SessionId) -> Result<SessionId, Error>;
    /// See [`Store::forwarded`](crate::Store::forwarded) (both backends leave the same
    /// record).
    fn forwarded(&self, id: &SessionId) -> Result<Option<Forward>, Error> {
        let _ = id;
        Ok(None)
    }
    /// See [`Store::delete_expired_forwards`](crate::Store::delete_expired_forwards); `Ok(0)`
    /// where nothing needs removing (Redis: the server's TTL removes them).
    fn delete_expired_forwards(&self) -> Result<u64, Error> {
        Ok(0)
    }
    /// See [`Store::touch`](crate::Store::touch).
    fn touch(&self, id: &SessionId) -> Result<SessionInfo, Error>;
    /// See [`Store::set_expiry`](crate::Store::set_expiry).
    fn set_expiry(&self, id: &SessionId, expiry: Expiry) -> Result<SessionInfo, Error>;
    /// See [`Store::ids`](crate::Store::ids).
    fn ids(&self) -> Self::Ids;
    /// See [`Store::delete_expired`](crate::Store::delete_expired).
    fn delete_expired(&self) -> Result<GcReport, Error>;
    /// See [`Store::delete_idle`](crate::Store::delete_idle).
    fn delete_idle(&self, idle: Duration) -> Result<GcReport, Error>;
    /// See [`Store::lock_stats`](crate::Store::lock_stats).
    fn lock_stats(&self) -> LockStats;
}

/// What a garbage-collection pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Session files looked at.
    pub scanned: u64,
    /// Sessions deleted.
    pub deleted: u64,
    /// Condemned sessions skipped because somebody held them.
    pub skipped_busy: u64,
    /// Files that could not be read or judged (damaged or unreadable); left in place.
    pub damaged: u64,
    /// Paths the pass would not go through: a shard directory replaced by a symlink (or
    /// opened to other users) since the store was opened. Nothing beneath them was scanned or
    /// deleted; an operator must look (see [`Refused`]).
    pub refused: Vec<Refused>,
    /// Forwarding records ([`Store::forwarded`](crate::Store::forwarded)) removed because
    /// they had expired (or were damaged): every gc pass of the directory store removes them,
    /// whatever its policy. Always 0 on Redis, where the server's TTL removes them.
    pub forwards_removed: u64,
    /// Bytes of session files deleted.
    pub bytes_freed: u64,
    /// Wall time of the pass.
    pub elapsed: Duration,
}

/// A path a maintenance pass (gc, tidy) refused to go through or to remove, and why: a
/// symlink or a foreign file where the store keeps its own directories and files. Such a path
/// is never followed and never removed by the store: it may be an attack (a symlink leading
/// the pass out of the store) or a mistake, and only an operator can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The refused path.
    pub path: std::path::PathBuf,
    /// Why it was refused, and what clears it.
    pub reason: &'static str,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

impl Refused {
    /// Adds the refusal `e` stands for to `refused` (once per path: a directory refused for
    /// every shard is one refusal). `Err(e)`: `e` is no refusal.
    pub(crate) fn record(refused: &mut Vec<Refused>, e: Error) -> Result<(), Error> {
        let Some(r) = Refused::from_error(&e) else {
            return Err(e);
        };
        if !refused.iter().any(|seen| seen.path == r.path) {
            refused.push(r);
        }
        Ok(())
    }

    /// The refusal an [`Error::UnsafePath`] stands for; `None` for any other error.
    pub(crate) fn from_error(e: &Error) -> Option<Refused> {
        match e {
            Error::UnsafePath { path, reason } => Some(Refused {
                path: path.clone(),
                reason,
            }),
            _ => None,
        }
    }
}

/// Creates a session under fresh ids from the OS CSPRNG until `create_at` finds one free (a
/// collision of 160-bit ids is astronomically unlikely, but never overwrites).
pub(crate) fn create_under_new_id(
    mut create_at: impl FnMut(&SessionId) -> Result<bool, Error>,
) -> Result<SessionId, Error> {
    loop {
        let id = SessionId::generate()?;
        if create_at(&id)? {
            return Ok(id);
        }
    }
}

/// `create_with_id`'s answer once `create_at` has run: [`Error::AlreadyExists`] if the id was
/// taken.
pub(crate) fn created_or_taken(id: &SessionId, created: bool) -> Result<(), Error> {
    if created {
        Ok(())
    } else {
        Err(Error::AlreadyExists { id: *id })
    }
}

/// What the crate's backends implement and nobody else can: the held lock behind a
/// [`Checkout`].
pub(crate) mod sealed {
    use std::path::Path;

    use crate::error::Error;
    use crate::format::Header;
    use crate::fs::Failure;
    use crate::id::SessionId;
    use crate::observer::Acquisition;

    /// Only the crate's stores implement [`Backend`](super::Backend).
    pub trait Sealed {}

    /// A session lock held by a [`Checkout`]: everything a check-out does that touches the
    /// backend.
    pub trait Held: Send + Sync {
        /// The session's id (changes after [`cycle`](Self::cycle)).
        fn id(&self) -> &SessionId;
        /// Where the session lives, for error messages (a file path, or a Redis key).
        fn location(&self) -> &Path;
        /// How the lock was obtained.
        fn acquisition(&self) -> &Acquisition;
        /// The largest payload the store accepts.
        fn max_payload(&self) -> u64;
        /// Replaces the session with `bytes` (a whole frame with header `next`), which was
        /// checked out (or last written) as `previous`, if the lock is still ours. With
        /// `then_release`, the backend may release the lock in the same step (the guard is
        /// dropped right after a successful write either way).
        fn write(
            &mut self,
            bytes: &[u8],
            previous: &Header,
            next: &Header,
            then_release: bool,
        ) -> Result<(), Failure>;
        /// Deletes the session and releases the lock. `Ok(false)`: it was already gone.
        fn remove(self) -> Result<bool, Error>;
        /// Moves the session to a fresh id, still held.
        fn cycle(&mut self) -> Result<SessionId, Error>;
        /// Records a visitor's activity on the held session as its backend's lock-free
        /// `mark_active` does. `Ok(false)`: the session is gone or expired.
        fn mark_active(&self) -> Result<bool, Error>;
    }
}
