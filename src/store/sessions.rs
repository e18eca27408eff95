//! The session operations of a [`Store`]: create, the lock-free reads, check-out, delete,
//! cycle, touch.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::handle::Store;
use super::locked::Locked;
use crate::backend::Checkout;
use crate::error::Error;
use crate::format::{self, Header};
use crate::fs::atomic::{self, Failure, Target};
use crate::id::SessionId;
use crate::info::{SessionInfo, Snapshot};
use crate::lock::{Locks, Wait};
use crate::settings::Expiry;

/// Whether a lock-free read reports expired sessions.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expired {
    Hide,
    Show,
}

impl Store {
    /// Creates a session holding `data`, with the store's default expiry, under a new id.
    ///
    /// The id comes from the OS CSPRNG and is never chosen by the caller; creation can never
    /// overwrite an existing session (its lock file is created with `O_EXCL` and its session
    /// file is renamed into place with `RENAME_NOREPLACE`; on the astronomically unlikely
    /// collision a new id is drawn).
    pub fn create<T: Serialize>(&self, data: &T) -> Result<SessionId, Error> {
        self.create_with_expiry(data, self.shared.config.settings.default_expiry)
    }

    /// Creates a session with an explicit expiry rule.
    pub fn create_with_expiry<T: Serialize>(
        &self,
        data: &T,
        expiry: Expiry,
    ) -> Result<SessionId, Error> {
        crate::backend::create_under_new_id(|id| self.create_at(id, data, expiry))
    }

    /// Creates a session under an id the caller drew, for frameworks that issue their own ids
    /// (tower-sessions, for one). Never overwrites: if a session with this id exists, or is
    /// being created or deleted, nothing is written and the error is
    /// [`Error::AlreadyExists`]; draw a new id and try again.
    ///
    /// The id must come from a CSPRNG (see [`SessionId::from_bytes`]); [`create`](Self::create)
    /// draws one itself and is the better choice whenever the id is not imposed.
    pub fn create_with_id<T: Serialize>(
        &self,
        id: &SessionId,
        data: &T,
        expiry: Expiry,
    ) -> Result<(), Error> {
        crate::backend::created_or_taken(id, self.create_at(id, data, expiry)?)
    }

    /// Creates session `id` unless something already has its id: `Ok(false)`, nothing written.
    fn create_at<T: Serialize>(
        &self,
        id: &SessionId,
        data: &T,
        expiry: Expiry,
    ) -> Result<bool, Error> {
        let shared = &*self.shared;
        let header = Header::new(expiry, format::now_ms());
        let data_path = shared.layout.data_path(id);
        // Encode first: a session that cannot be encoded never touches the disk.
        let (bytes, _) = format::encode(
            &data_path,
            header,
            data,
            shared.config.settings.max_session_size,
        )?;
        let Some(held) = shared.locks.create(id, shared.layout.lock_path(id))? else {
            return Ok(false); // a lock file has this id (a live session, or one coming or going)
        };
        let written = atomic::write(
            &data_path,
            Target::MustNotExist,
            &atomic::temp_prefix(id),
            &bytes,
            shared.config.file_mode,
            shared.config.durability,
            || Ok(()), // nobody else can know this id yet
        );
        match written {
            Ok(()) => Ok(true),
            Err(Failure::Before(Error::Io { source, .. }))
                if source.kind() == std::io::ErrorKind::AlreadyExists =>
            {
                Ok(false) // a session file without a lock file had this id: leave it be
            }
            Err(Failure::Before(e)) => {
                let _ = atomic::remove(held.path(), shared.config.durability);
                Err(e)
            }
            // The session exists but its directory sync failed: keep its lock file (I2)
            // and report; unreferenced, it expires or is collected like any other.
            Err(Failure::After(e)) => Err(e),
        }
    }

    /// Reads the last checked-in version of a session without taking its lock.
    ///
    /// Never waits for a holder and never sees a partial file. Missing or expired → `Ok(None)`.
    /// A damaged file is an error naming its path.
    pub fn load<T: DeserializeOwned>(&self, id: &SessionId) -> Result<Option<T>, Error> {
        Ok(self.snapshot(id)?.map(|s| s.data))
    }

    /// Like [`load`](Self::load), with the header the data was read with.
    pub fn snapshot<T: DeserializeOwned>(
        &self,
        id: &SessionId,
    ) -> Result<Option<Snapshot<T>>, Error> {
        self.read_snapshot(id, Expired::Hide)
    }

    /// The lock-free read behind `load`, `snapshot` and `inspect`.
    fn read_snapshot<T: DeserializeOwned>(
        &self,
        id: &SessionId,
        expired: Expired,
    ) -> Result<Option<Snapshot<T>>, Error> {
        let path = self.shared.layout.data_path(id);
        let Some(frame) = format::read_frame(
            &path,
            self.shared.config.settings.max_session_size,
            self.shared.layout.reads(),
            match expired {
                // A visitor's read keeps a sliding session alive; an admin's does not.
                Expired::Hide => format::Activity::Record,
                Expired::Show => format::Activity::Honour,
            },
        )?
        else {
            return Ok(None);
        };
        // Past its expiry, a session somebody holds is still in use: its holder will check
        // it in (design §3.6, "Held sessions do not expire").
        if expired == Expired::Hide
            && frame.header.is_expired(format::now_ms())
            && !self.is_checked_out(id)?
        {
            return Ok(None);
        }
        Ok(Some(Snapshot {
            data: frame.decode(&path)?,
            info: SessionInfo::from_header(*id, &frame.header),
        }))
    }

    /// Whether the session exists and has not expired (reads the header only, no lock). The
    /// header has its own checksum; the payload is not read, so a session whose payload is
    /// damaged still exists here while [`load`](Self::load) reports
    /// [`Error::Corrupt`](crate::Error::Corrupt) (gc, `ls` and `stats` judge by the header too).
    ///
    /// A session past its expiry that somebody holds exists: a checked-out session is in use
    /// and does not expire under its holder (one non-blocking lock attempt, only for a session
    /// whose expiry has passed).
    pub fn exists(&self, id: &SessionId) -> Result<bool, Error> {
        match self.info(id)? {
            None => Ok(false),
            Some(info) if !info.is_expired() => Ok(true),
            Some(_) => self.is_checked_out(id),
        }
    }

    /// A session's metadata from its header, expired or not (no lock). Missing → `Ok(None)`.
    /// Reads the header only, as [`exists`](Self::exists) does. Its times are the recorded
    /// ones: a held session past its expiry reports [`SessionInfo::is_expired`] true, although
    /// [`exists`](Self::exists) and [`load`](Self::load) count it as live while it is held.
    pub fn info(&self, id: &SessionId) -> Result<Option<SessionInfo>, Error> {
        self.read_info(id, format::Activity::Honour)
    }

    /// A lock-free keep-alive: records a read of a sliding session
    /// ([`Expiry::Idle`]) as activity, as [`load`](Self::load) does, without reading its data
    /// and without rewriting anything: at most once per quarter of its idle lifetime, the
    /// session file's modification time is set to now (design §3.7). Never waits. Returns the
    /// session's metadata; missing or expired → `Ok(None)`. A file system that does not let
    /// the time be set (read-only, another owner) is no error: the session then slides only
    /// with writes.
    pub fn mark_active(&self, id: &SessionId) -> Result<Option<SessionInfo>, Error> {
        Ok(self
            .read_info(id, format::Activity::Record)?
            .filter(|info| !info.is_expired()))
    }

    fn read_info(
        &self,
        id: &SessionId,
        activity: format::Activity,
    ) -> Result<Option<SessionInfo>, Error> {
        let path = self.shared.layout.data_path(id);
        Ok(
            format::read_header(&path, self.shared.layout.reads(), activity)?
                .map(|h| SessionInfo::from_header(*id, &h)),
        )
    }

    /// Like [`snapshot`](Self::snapshot) but also returns expired sessions (for admin tools:
    /// an expired session stays on disk until garbage collection).
    pub fn inspect<T: DeserializeOwned>(
        &self,
        id: &SessionId,
    ) -> Result<Option<Snapshot<T>>, Error> {
        self.read_snapshot(id, Expired::Show)
    }

    /// Whether somebody (any thread or process) holds the session right now.
    ///
    /// Answers by trying the lock and releasing it at once, so a concurrent
    /// [`try_checkout`](Self::try_checkout) may see [`Error::Busy`] for that instant; meant for
    /// admin tools, not for request paths. Missing session → `Ok(false)`.
    pub fn is_checked_out(&self, id: &SessionId) -> Result<bool, Error> {
        Locks::is_held(&self.shared.layout.lock_path(id))
    }

    /// Checks a session out: waits (up to the lock timeout) until no one else holds it, then
    /// returns the exclusive [`Checkout`](crate::Checkout) with the decoded data.
    ///
    /// Errors: [`Error::NotFound`], [`Error::Expired`], [`Error::Deleted`] (deleted while we
    /// waited), [`Error::LockTimeout`], or a decoding/corruption error.
    pub fn checkout<T: DeserializeOwned>(
        &self,
        id: &SessionId,
    ) -> Result<Checkout<T, Store>, Error> {
        Locked::checkout(self, id, Wait::UpToTimeout)
    }

    /// Like [`checkout`](Self::checkout), but returns [`Error::Busy`] at once if the session is
    /// held by someone else.
    pub fn try_checkout<T: DeserializeOwned>(
        &self,
        id: &SessionId,
    ) -> Result<Checkout<T, Store>, Error> {
        Locked::checkout(self, id, Wait::No)
    }

    /// Deletes a session, waiting for its holder first: a session is never pulled from under
    /// a check-out. Works on expired and on undecodable sessions. `Ok(false)`: there was none.
    ///
    /// Threads and processes waiting to check the session out get [`Error::Deleted`].
    pub fn delete(&self, id: &SessionId) -> Result<bool, Error> {
        match Locked::acquire(self, id, Wait::UpToTimeout) {
            Ok(locked) => locked.remove(),
            Err(e) if e.is_gone() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Gives a session a new id, keeping its data (defence against session fixation: call it
    /// when a user logs in or gains privileges). The old id stops existing at once; waiters on
    /// it get [`Error::Deleted`].
    pub fn cycle_id(&self, id: &SessionId) -> Result<SessionId, Error> {
        let mut locked = Locked::acquire(self, id, Wait::UpToTimeout)?;
        locked.require_live()?;
        locked.cycle()
    }

    /// Sliding refresh: re-applies the session's idle lifetime from now, without decoding or
    /// changing its data (only the header changes). Sessions without an idle lifetime only get
    /// a new modification time. Waits for a holder like a check-out.
    pub fn touch(&self, id: &SessionId) -> Result<SessionInfo, Error> {
        let mut locked = Locked::acquire(self, id, Wait::UpToTimeout)?;
        locked.rewrite_header(None)
    }

    /// Changes a session's expiry rule without decoding or changing its data.
    pub fn set_expiry(&self, id: &SessionId, expiry: Expiry) -> Result<SessionInfo, Error> {
        let mut locked = Locked::acquire(self, id, Wait::UpToTimeout)?;
        locked.rewrite_header(Some(expiry))
    }
}
