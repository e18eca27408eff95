//! [`Checkout`]: the exclusive guard that owns a session's lock and its data.
//!
//! The guard is the only way to change a session's data. It travels with what it protects: the
//! locked lock file, the header it was read with, and the decoded data. [`Checkout::check_in`]
//! writes atomically and releases; dropping the guard releases without writing; a failed
//! check-in hands the guard back inside [`CheckinError`]. [`Checkout::check_in_if_changed`]
//! writes only if the encoded data differ from the bytes read at check-out (kept for that).

use std::fmt;

use serde::Serialize;

use super::Backend;
use super::sealed::Held as _;
use crate::error::Error;
use crate::format::{self, Header};
use crate::fs::Failure;
use crate::id::SessionId;
use crate::info::SessionInfo;
use crate::observer::Acquisition;
use crate::settings::Expiry;

/// A session checked out for exclusive use.
///
/// While it exists, no other thread or process can check the session out, delete it, cycle
/// its id, touch it or garbage-collect it; lock-free [`Store::load`](crate::Store::load)s still see the last
/// checked-in version.
///
/// One guard type serves every [`Backend`]: `Checkout<T>` is a check-out of the session
/// directory ([`Store`](crate::Store)); with the `redis` feature, `Checkout<T, RedisStore>` is one of Redis.
#[must_use = "dropping a Checkout releases it without writing; call check_in to save"]
pub struct Checkout<T, B: Backend> {
    held: B::Held,
    header: Header,
    data: T,
    /// The frame as read at check-out (or last written): what
    /// [`check_in_if_changed`](Self::check_in_if_changed) compares the encoded data with.
    stored: Vec<u8>,
    /// An expiry change or an id cycle since `stored`: the next check-in must write.
    moved_on: bool,
}

impl<T, B: Backend> Checkout<T, B> {
    /// Assembles a guard from a held lock and what was read under it: the frame (kept, to
    /// tell an unchanged check-in) and the data decoded from it.
    pub(crate) fn from_parts(held: B::Held, frame: format::Frame, data: T) -> Self {
        Checkout {
            held,
            header: frame.header,
            data,
            stored: frame.into_bytes(),
            moved_on: false,
        }
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
        self.header.apply_expiry(expiry, format::now_ms());
        self.moved_on = true;
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
        // Even a failed cycle may have moved the session: count it as a change either way.
        self.moved_on = true;
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
        match self
            .encode()
            .and_then(|(bytes, header)| self.write(bytes, header, true))
        {
            Ok(()) => Ok(()),
            Err(error) => Err(CheckinError {
                error,
                checkout: Box::new(self),
            }),
        }
    }

    /// Checks the session in only if it changed: if the data encode to exactly the bytes
    /// read at check-out (or last saved), and neither [`set_expiry`](Self::set_expiry) nor
    /// [`cycle_id`](Self::cycle_id) was called, releases the session without writing
    /// (the generation and the stored version stay as they are) and returns `Ok(false)`;
    /// otherwise it is [`check_in`](Self::check_in), and returns `Ok(true)`.
    ///
    /// The comparison is of the encoded bytes, so a change made any way at all (interior
    /// mutability included) is written, and a change undone before the check-in is not. An
    /// unchanged session with an idle lifetime ([`Expiry::Idle`]) is kept alive as a visitor's
    /// lock-free read keeps it ([`Backend::mark_active`]: throttled to once per quarter
    /// lifetime, no rewrite); if it had expired by then (it was held past its expiry), it is
    /// written after all, as a check-in would, since its holder kept it in use.
    ///
    /// Costs one encoding of the data, as a check-in does; the bytes read at check-out are
    /// kept in the guard for it (the session's size in memory while it is checked out).
    pub fn check_in_if_changed(mut self) -> Result<bool, CheckinError<T, B>> {
        self.check_in_changed().map_err(|error| CheckinError {
            error,
            checkout: Box::new(self),
        })
    }

    fn check_in_changed(&mut self) -> Result<bool, Error> {
        let (bytes, header) = self.encode()?;
        let unchanged = !self.moved_on
            && bytes.get(format::HEADER_LEN..) == self.stored.get(format::HEADER_LEN..);
        // A sliding session stays alive without a write if the keep-alive finds it live; an
        // error or an expired session falls back to the write.
        if unchanged && (self.header.ttl_ms == 0 || self.held.mark_active().unwrap_or(false)) {
            return Ok(false);
        }
        self.write(bytes, header, true).map(|()| true)
    }

    /// Writes the data atomically and keeps the session checked out.
    pub fn save(&mut self) -> Result<(), Error> {
        let (bytes, header) = self.encode()?;
        self.write(bytes, header, false)
    }

    /// The data encoded behind the next header.
    fn encode(&self) -> Result<(Vec<u8>, Header), Error> {
        let header = self.header.next(None, format::now_ms());
        let max = self.held.max_payload();
        format::encode(self.held.location(), header, &self.data, max)
    }

    fn write(&mut self, bytes: Vec<u8>, header: Header, then_release: bool) -> Result<(), Error> {
        match self.held.write(&bytes, &self.header, &header, then_release) {
            Ok(()) => {
                self.wrote(bytes, header);
                Ok(())
            }
            Err(Failure::Before(e)) => Err(e),
            // The new version is in place; only its directory sync failed.
            Err(Failure::After(e)) => {
                self.wrote(bytes, header);
                Err(e)
            }
        }
    }

    /// `bytes` (with `header`) is now the stored version.
    fn wrote(&mut self, bytes: Vec<u8>, header: Header) {
        self.header = header;
        self.stored = bytes;
        self.moved_on = false;
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

/// A failed [`Checkout::check_in`]: the error, and the check-out handed back still locked, with
/// its data unchanged, so the caller can retry or release it.
pub struct CheckinError<T, B: Backend> {
    pub(crate) error: Error,
    // Boxed: a check-out is large and the error path is the rare one.
    pub(crate) checkout: Box<Checkout<T, B>>,
}

impl<T, B: Backend> CheckinError<T, B> {
    /// What went wrong.
    pub fn error(&self) -> &Error {
        &self.error
    }

    /// Takes back the check-out (still holding the lock) to retry or release it.
    pub fn into_checkout(self) -> Checkout<T, B> {
        *self.checkout
    }

    /// Splits into the error and the check-out.
    pub fn into_parts(self) -> (Error, Checkout<T, B>) {
        (self.error, *self.checkout)
    }
}

impl<T, B: Backend> fmt::Debug for CheckinError<T, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckinError")
            .field("error", &self.error)
            .field("id", self.checkout.id())
            .finish()
    }
}

impl<T, B: Backend> fmt::Display for CheckinError<T, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "check-in of session {} failed: {}",
            self.checkout.id(),
            self.error
        )
    }
}

impl<T, B: Backend> std::error::Error for CheckinError<T, B> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl<T, B: Backend> From<CheckinError<T, B>> for Error {
    fn from(e: CheckinError<T, B>) -> Self {
        e.error
    }
}
