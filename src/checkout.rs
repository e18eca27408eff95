//! [`Checkout`]: the exclusive guard that owns a session's lock and its data.
//!
//! The guard is the only way to change a session's data. It travels with what it protects: the
//! locked lock file, the header it was read with, and the decoded data. [`Checkout::check_in`]
//! writes atomically and releases; dropping the guard releases without writing; a failed
//! check-in hands the guard back inside [`CheckinError`].

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::acquire::{self, Held, Wait};
use crate::atomic::{self, Target};
use crate::backend::Backend;
use crate::backend::sealed::{self, Held as _};
use crate::config::Expiry;
use crate::error::{CheckinError, Error};
use crate::format::{self, Frame, Header};
use crate::id::SessionId;
use crate::info::{SessionInfo, expiry_fields};
use crate::lock;
use crate::observer::Acquisition;
use crate::store::Store;

/// A session checked out for exclusive use.
///
/// While it exists, no other thread or process can check the session out, delete it, cycle
/// its id, touch it or garbage-collect it; lock-free [`Store::load`]s still see the last
/// checked-in version.
///
/// One guard type serves every [`Backend`]: `Checkout<T>` is a check-out of the session
/// directory ([`Store`]); with the `redis` feature, `Checkout<T, RedisStore>` is one of Redis.
#[must_use = "dropping a Checkout releases it without writing; call check_in to save"]
pub struct Checkout<T, B: Backend = Store> {
    held: B::Held,
    header: Header,
    data: T,
}

impl<T, B: Backend> Checkout<T, B> {
    /// Assembles a guard from a held lock and what was read under it.
    pub(crate) fn from_parts(held: B::Held, header: Header, data: T) -> Self {
        Checkout { held, header, data }
    }

    /// The session's id (changes after [`cycle_id`](Self::cycle_id)).
    pub fn id(&self) -> &SessionId {
        self.held.id()
    }

    /// The session data.
    pub fn data(&self) -> &T {
        &self.data
    }

    /// The session data, to change before [`check_in`](Self::check_in).
    pub fn data_mut(&mut self) -> &mut T {
        &mut self.data
    }

    /// The header as of check-out (or the last [`save`](Self::save)).
    pub fn info(&self) -> SessionInfo {
        SessionInfo::from_header(*self.held.id(), &self.header)
    }

    /// How the lock was obtained and how long it took.
    pub fn acquisition(&self) -> &Acquisition {
        self.held.acquisition()
    }

    /// Changes the expiry rule; written by the next check-in or save.
    pub fn set_expiry(&mut self, expiry: Expiry) {
        let (expires_ms, ttl_ms) = expiry_fields(expiry, format::now_ms());
        self.header.expires_ms = expires_ms;
        self.header.ttl_ms = ttl_ms;
    }

    /// Releases the session without writing (the same as dropping the guard).
    pub fn release(self) {}

    /// Deletes the session. Waiters for it get [`Error::Deleted`]. [`Error::LockLost`] (nothing
    /// deleted) if the lock file was removed from the store while held; with Redis,
    /// [`Error::Conflict`] if the lease ran out and another holder may have taken over.
    pub fn delete(self) -> Result<(), Error> {
        self.held.remove().map(drop)
    }

    /// Moves the session, as last written, to a new id and keeps it checked out under that id
    /// (defence against session fixation). The old id stops existing at once; waiters on it get
    /// [`Error::Deleted`]. Unsaved changes to the data stay in the guard. If the move landed
    /// but its directory sync failed, the error is returned and [`id`](Self::id) is already
    /// the new id. [`Error::LockLost`] (nothing moved) if the lock file was removed from the
    /// store while held.
    pub fn cycle_id(&mut self) -> Result<SessionId, Error> {
        self.held.cycle()
    }

    /// Unwraps the data, releasing the session without writing.
    pub fn into_data(self) -> T {
        self.data
    }

    /// The held lock, for backend-specific methods (a Redis lease's fence and extension).
    #[cfg(feature = "redis")]
    pub(crate) fn held(&self) -> &B::Held {
        &self.held
    }

    /// The held lock, mutably.
    #[cfg(feature = "redis")]
    pub(crate) fn held_mut(&mut self) -> &mut B::Held {
        &mut self.held
    }
}

impl<T: Serialize, B: Backend> Checkout<T, B> {
    /// Writes the data atomically and releases the session.
    ///
    /// On failure the guard comes back inside the error, still holding the lock, and the
    /// previously checked-in version is intact on disk — with one exception: with
    /// [`Durability::FileAndDirectory`](crate::Durability), if only the directory sync after
    /// the rename failed, the new version is already in place (but may not survive a power
    /// loss); checking in again is safe.
    pub fn check_in(mut self) -> Result<(), CheckinError<T, B>> {
        match self.write(true) {
            Ok(()) => Ok(()),
            Err(error) => Err(CheckinError {
                error,
                checkout: Box::new(self),
            }),
        }
    }

    /// Writes the data atomically and keeps the session checked out.
    pub fn save(&mut self) -> Result<(), Error> {
        self.write(false)
    }

    fn write(&mut self, then_release: bool) -> Result<(), Error> {
        let header = rewritten_header(&self.header, None, format::now_ms());
        let max = self.held.max_payload();
        let (bytes, header) = format::encode(self.held.location(), header, &self.data, max)?;
        match self.held.write(&bytes, &self.header, &header, then_release) {
            Ok(()) => {
                self.header = header;
                Ok(())
            }
            Err(atomic::Failure::Before(e)) => Err(e),
            // The new version is in place; only its directory sync failed.
            Err(atomic::Failure::After(e)) => {
                self.header = header;
                Err(e)
            }
        }
    }
}

impl<T: DeserializeOwned> Checkout<T> {
    pub(crate) fn acquire(store: &Store, id: &SessionId, wait: Wait) -> Result<Self, Error> {
        let locked = Locked::acquire(store, id, wait)?;
        let frame = locked.read_live()?;
        let data = frame.decode(&locked.data_path)?;
        Ok(Checkout::from_parts(locked, frame.header, data))
    }
}

impl<T, B: Backend> fmt::Debug for Checkout<T, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checkout")
            .field("id", self.held.id())
            .field("generation", &self.header.generation)
            .finish_non_exhaustive()
    }
}

/// The header of a header-only rewrite (touch, set_expiry): the next generation, modified now,
/// and either a new expiry rule or the current one re-applied; the payload fields unchanged.
pub(crate) fn rewritten_header(previous: &Header, expiry: Option<Expiry>, now_ms: u64) -> Header {
    let mut header = Header {
        generation: previous.generation.wrapping_add(1),
        modified_ms: now_ms,
        ..*previous
    };
    match expiry {
        Some(expiry) => (header.expires_ms, header.ttl_ms) = expiry_fields(expiry, now_ms),
        None => header.expires_ms = next_expiry(previous, now_ms),
    }
    header
}

/// Sliding sessions move their expiry on every write; fixed ones keep it.
fn next_expiry(h: &Header, now_ms: u64) -> u64 {
    if h.ttl_ms != 0 {
        now_ms.saturating_add(h.ttl_ms)
    } else {
        h.expires_ms
    }
}

/// A held session lock, before (or without) decoding the data: what delete, cycle and touch
/// need, and what [`Checkout`] is built on. (Nominally `pub`: it is the directory store's
/// `Backend::Held`; the module is private.)
pub struct Locked {
    pub(crate) store: Store,
    pub(crate) id: SessionId,
    pub(crate) data_path: PathBuf,
    pub(crate) acquisition: Acquisition,
    held: Held,
}

impl sealed::Held for Locked {
    fn id(&self) -> &SessionId {
        &self.id
    }

    fn location(&self) -> &Path {
        &self.data_path
    }

    fn acquisition(&self) -> &Acquisition {
        &self.acquisition
    }

    fn max_payload(&self) -> u64 {
        self.store.shared.config.max_session_size
    }

    fn write(
        &mut self,
        bytes: &[u8],
        previous: &Header,
        _next: &Header,
        _then_release: bool,
    ) -> Result<(), atomic::Failure> {
        Locked::write(self, bytes, previous)
    }

    fn remove(self) -> Result<bool, Error> {
        Locked::remove(self)
    }

    fn cycle(&mut self) -> Result<SessionId, Error> {
        Locked::cycle(self)
    }
}

impl Locked {
    pub(crate) fn acquire(store: &Store, id: &SessionId, wait: Wait) -> Result<Self, Error> {
        let (held, acquisition) = acquire::acquire(&store.shared, id, wait)?;
        Ok(Locked {
            store: store.clone(),
            id: *id,
            data_path: store.shared.layout.data_path(id),
            acquisition,
            held,
        })
    }

    /// Reads the session file under the lock; missing or expired is an error.
    pub(crate) fn read_live(&self) -> Result<Frame, Error> {
        let max = self.store.shared.config.max_session_size;
        let Some(frame) = format::read_frame(&self.data_path, max)? else {
            return Err(self.vanished());
        };
        if frame.header.is_expired(format::now_ms()) {
            return Err(Error::Expired { id: self.id });
        }
        Ok(frame)
    }

    /// Checks the session file exists and has not expired, reading the header only.
    pub(crate) fn require_live(&self) -> Result<(), Error> {
        match format::read_header(&self.data_path)? {
            None => Err(self.vanished()),
            Some(h) if h.is_expired(format::now_ms()) => Err(Error::Expired { id: self.id }),
            Some(_) => Ok(()),
        }
    }

    /// The lock file exists but the session file does not: a create or delete crashed half
    /// way. We hold the lock, so removing the orphaned lock file is safe; report not found.
    /// Fenced (a shared file system), the lock file stays for tidy: there a missing file can
    /// also be this host's stale view of a live session (a cached negative or replaced entry,
    /// design §13), and unlinking a live session's lock would turn its waiters' check-outs
    /// into false `Deleted` errors.
    fn vanished(&self) -> Error {
        if !self.store.shared.fencing {
            let _ = atomic::remove(self.held.path(), self.store.shared.config.durability);
        }
        Error::NotFound { id: self.id }
    }

    /// Replaces the session file (check-in, touch), after checking the lock is still ours.
    /// `previous` is the version this holder read (or last wrote); with fencing on, the
    /// session file must still be exactly that version right before the rename.
    pub(crate) fn write(&mut self, bytes: &[u8], previous: &Header) -> Result<(), atomic::Failure> {
        let shared = &self.store.shared;
        let config = &shared.config;
        atomic::write(
            &self.data_path,
            Target::Replace,
            &self.id,
            bytes,
            config.file_mode,
            config.durability,
            || {
                self.verify_lock()?;
                if shared.fencing {
                    self.require_version(previous)?;
                }
                Ok(())
            },
        )
    }

    /// Checks the lock is still ours before a change (write, delete, cycle): the locked file
    /// still linked, and with fencing also still the file at the lock path.
    fn verify_lock(&self) -> Result<(), Error> {
        if self.store.shared.fencing {
            self.held.verify_at_path()
        } else {
            self.held.verify()
        }
    }

    /// Fencing: the session file on disk must be the version `previous` this holder read.
    /// Anything else means somebody wrote or deleted it while we held the lock, which only a
    /// lock the file system failed to exclude allows: refuse, write nothing.
    fn require_version(&self, previous: &Header) -> Result<(), Error> {
        let found = format::read_header(&self.data_path)?;
        if found.as_ref() == Some(previous) {
            Ok(())
        } else {
            Err(Error::Conflict {
                id: self.id,
                held: previous.generation,
                found: found.map(|h| h.generation),
            })
        }
    }

    /// Rewrites the header with a new generation and modification time (and optionally a new
    /// expiry rule), copying the payload bytes unchanged.
    pub(crate) fn rewrite_header(&mut self, expiry: Option<Expiry>) -> Result<SessionInfo, Error> {
        let frame = self.read_live()?;
        let header = rewritten_header(&frame.header, expiry, format::now_ms());
        self.write(&format::reframe(header, frame.payload()), &frame.header)
            .map_err(atomic::Failure::into_error)?;
        Ok(SessionInfo::from_header(self.id, &header))
    }

    /// Deletes the session file, then its lock file, then releases the lock (in that order, so
    /// that a lock file is only ever unlinked after its session file). `Ok(false)`: the session
    /// file was already gone.
    pub(crate) fn remove(mut self) -> Result<bool, Error> {
        // As before a write: if our lock file was removed under us, another process may hold
        // the session through a new one; deleting would pull it from under that holder (and
        // unlink its lock file). Refuse with `LockLost` (tests/it/faults.rs).
        self.verify_lock()?;
        let shared = &self.store.shared;
        let (existed, unsynced) = match atomic::remove(&self.data_path, shared.config.durability) {
            Ok(existed) => (existed, None),
            Err(atomic::Failure::Before(e)) => return Err(e),
            // Unlinked, but the directory sync failed: the session is gone all the same.
            Err(atomic::Failure::After(e)) => (true, Some(e)),
        };
        // From here on the session is gone, whatever else fails: tell local waiters.
        self.held.mark_gone();
        atomic::remove(self.held.path(), shared.config.durability)
            .map_err(atomic::Failure::into_error)?;
        match unsynced {
            Some(e) => Err(e),
            None => Ok(existed),
        }
    }

    /// Moves the session file to a fresh id whose lock we create and hold, then retires the old
    /// lock file. No moment exists at which both ids are valid.
    pub(crate) fn cycle(&mut self) -> Result<SessionId, Error> {
        // As before a write: a holder whose lock file was removed under it must not move the
        // session, or the fresh lock of the new id would let its stale data overwrite what
        // another holder checked in meanwhile. Refuse with `LockLost` (tests/it/faults.rs).
        self.verify_lock()?;
        let shared = &*self.store.shared;
        loop {
            let new_id = SessionId::generate()?;
            let new_lock_path = shared.layout.lock_path(&new_id);
            let Some(file) = lock::create(&new_lock_path, shared.config.file_mode)? else {
                continue;
            };
            if !lock::try_lock(&file, &new_lock_path)? || !lock::is_linked(&file, &new_lock_path)? {
                continue; // tidy took the fresh lock file: draw another id
            }
            let new_held = acquire::adopt(shared, &new_id, file, new_lock_path)?;
            let new_data_path = shared.layout.data_path(&new_id);
            // Only a holder of new_id's lock writes new_data_path, and that is us: the rename
            // cannot clobber anything.
            let unsynced =
                match atomic::rename(&self.data_path, &new_data_path, shared.config.durability) {
                    Ok(true) => None,
                    Ok(false) => {
                        let _ = atomic::remove(new_held.path(), shared.config.durability);
                        return Err(self.vanished());
                    }
                    Err(atomic::Failure::Before(e)) => {
                        let _ = atomic::remove(new_held.path(), shared.config.durability);
                        return Err(e);
                    }
                    // Moved, but the directory sync failed: carry on under the new id, then report.
                    Err(atomic::Failure::After(e)) => Some(e),
                };
            // From here on the session lives under new_id, whatever else happens.
            let mut old_held = std::mem::replace(&mut self.held, new_held);
            old_held.mark_gone();
            self.id = new_id;
            self.data_path = new_data_path;
            // Old id: its session file is gone; unlink its lock file while still holding it, so
            // waiters on the old id wake up holding an unlinked inode and report Deleted. If
            // this unlink fails, the orphaned lock file makes them report NotFound instead, and
            // tidy removes it: the old id is dead either way.
            let _ = atomic::remove(old_held.path(), shared.config.durability);
            drop(old_held);
            return match unsynced {
                Some(e) => Err(e),
                None => Ok(new_id),
            };
        }
    }
}
