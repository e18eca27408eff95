//! [`Backend`]: the session API every store offers, so that an application switches stores
//! (the session directory, or Redis/Valkey with the `redis` feature) by changing one
//! constructor.
//!
//! Code written against `B: Backend` runs on either store; code that names [`Store`] directly
//! calls its inherent methods and pays nothing for the seam (the trait is implemented by
//! delegation, dispatched statically). [`Checkout`] is one guard type for all backends: its
//! data, header and check-in logic are shared, and only the held lock (`Backend::Held`)
//! differs.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::checkout::Checkout;
use crate::config::Expiry;
use crate::error::Error;
use crate::gc::GcReport;
use crate::id::SessionId;
use crate::info::{SessionInfo, Snapshot};
use crate::observer::LockStats;
use crate::store::Store;

/// The operations both stores offer, with the same meaning and the same errors.
///
/// Each method documents its contract on [`Store`]; where a backend differs, its own type says
/// so (for instance, Redis reports an expired session as not found, because the server
/// itself removes it when it expires).
///
/// The trait is sealed: the crate's own stores implement it.
pub trait Backend: Clone + Send + Sync + 'static + sealed::Sealed {
    /// The lock a [`Checkout`] holds in this backend (an implementation detail).
    #[doc(hidden)]
    type Held: sealed::Held;

    /// Iterator over all session ids (see [`Store::ids`]).
    type Ids: Iterator<Item = Result<SessionId, Error>>;

    /// See [`Store::create`].
    fn create<T: Serialize>(&self, data: &T) -> Result<SessionId, Error>;
    /// See [`Store::create_with_expiry`].
    fn create_with_expiry<T: Serialize>(
        &self,
        data: &T,
        expiry: Expiry,
    ) -> Result<SessionId, Error>;
    /// See [`Store::create_with_id`].
    fn create_with_id<T: Serialize>(
        &self,
        id: &SessionId,
        data: &T,
        expiry: Expiry,
    ) -> Result<(), Error>;
    /// See [`Store::load`].
    fn load<T: DeserializeOwned>(&self, id: &SessionId) -> Result<Option<T>, Error>;
    /// See [`Store::snapshot`].
    fn snapshot<T: DeserializeOwned>(&self, id: &SessionId) -> Result<Option<Snapshot<T>>, Error>;
    /// See [`Store::exists`].
    fn exists(&self, id: &SessionId) -> Result<bool, Error>;
    /// See [`Store::info`].
    fn info(&self, id: &SessionId) -> Result<Option<SessionInfo>, Error>;
    /// See [`Store::checkout`].
    fn checkout<T: DeserializeOwned>(&self, id: &SessionId) -> Result<Checkout<T, Self>, Error>;
    /// See [`Store::try_checkout`].
    fn try_checkout<T: DeserializeOwned>(&self, id: &SessionId)
    -> Result<Checkout<T, Self>, Error>;
    /// See [`Store::delete`].
    fn delete(&self, id: &SessionId) -> Result<bool, Error>;
    /// See [`Store::cycle_id`].
    fn cycle_id(&self, id: &SessionId) -> Result<SessionId, Error>;
    /// See [`Store::touch`].
    fn touch(&self, id: &SessionId) -> Result<SessionInfo, Error>;
    /// See [`Store::set_expiry`].
    fn set_expiry(&self, id: &SessionId, expiry: Expiry) -> Result<SessionInfo, Error>;
    /// See [`Store::ids`].
    fn ids(&self) -> Self::Ids;
    /// See [`Store::delete_expired`].
    fn delete_expired(&self) -> Result<GcReport, Error>;
    /// See [`Store::delete_idle`].
    fn delete_idle(&self, idle: Duration) -> Result<GcReport, Error>;
    /// See [`Store::lock_stats`].
    fn lock_stats(&self) -> LockStats;
}

impl sealed::Sealed for Store {}

impl Backend for Store {
    type Held = crate::checkout::Locked;
    type Ids = crate::iter::SessionIds;

    fn create<T: Serialize>(&self, data: &T) -> Result<SessionId, Error> {
        Store::create(self, data)
    }
    fn create_with_expiry<T: Serialize>(
        &self,
        data: &T,
        expiry: Expiry,
    ) -> Result<SessionId, Error> {
        Store::create_with_expiry(self, data, expiry)
    }
    fn create_with_id<T: Serialize>(
        &self,
        id: &SessionId,
        data: &T,
        expiry: Expiry,
    ) -> Result<(), Error> {
        Store::create_with_id(self, id, data, expiry)
    }
    fn load<T: DeserializeOwned>(&self, id: &SessionId) -> Result<Option<T>, Error> {
        Store::load(self, id)
    }
    fn snapshot<T: DeserializeOwned>(&self, id: &SessionId) -> Result<Option<Snapshot<T>>, Error> {
        Store::snapshot(self, id)
    }
    fn exists(&self, id: &SessionId) -> Result<bool, Error> {
        Store::exists(self, id)
    }
    fn info(&self, id: &SessionId) -> Result<Option<SessionInfo>, Error> {
        Store::info(self, id)
    }
    fn checkout<T: DeserializeOwned>(&self, id: &SessionId) -> Result<Checkout<T>, Error> {
        Store::checkout(self, id)
    }
    fn try_checkout<T: DeserializeOwned>(&self, id: &SessionId) -> Result<Checkout<T>, Error> {
        Store::try_checkout(self, id)
    }
    fn delete(&self, id: &SessionId) -> Result<bool, Error> {
        Store::delete(self, id)
    }
    fn cycle_id(&self, id: &SessionId) -> Result<SessionId, Error> {
        Store::cycle_id(self, id)
    }
    fn touch(&self, id: &SessionId) -> Result<SessionInfo, Error> {
        Store::touch(self, id)
    }
    fn set_expiry(&self, id: &SessionId, expiry: Expiry) -> Result<SessionInfo, Error> {
        Store::set_expiry(self, id, expiry)
    }
    fn ids(&self) -> Self::Ids {
        Store::ids(self)
    }
    fn delete_expired(&self) -> Result<GcReport, Error> {
        Store::delete_expired(self)
    }
    fn delete_idle(&self, idle: Duration) -> Result<GcReport, Error> {
        Store::delete_idle(self, idle)
    }
    fn lock_stats(&self) -> LockStats {
        Store::lock_stats(self)
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

    use crate::atomic::Failure;
    use crate::error::Error;
    use crate::format::Header;
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
    }
}
