//! [`Locked`]: the directory store's held check-out — the lock and the session file it
//! guards — and everything a holder does to that file: read under the lock, check in
//! (verified, and fenced on shared file systems), touch, delete, cycle the id.

use std::path::Path;
use std::sync::atomic::Ordering;

use serde::de::DeserializeOwned;

use super::handle::Store;
use crate::backend::Checkout;
use crate::backend::sealed;
use crate::error::Error;
use crate::format::{self, Frame, Header};
use crate::fs::atomic::{self, Exchanged, Target};
use crate::fs::beneath::StorePath;
use crate::id::SessionId;
use crate::info::SessionInfo;
use crate::lock::{Held, Wait};
use crate::observer::Acquisition;
use crate::settings::{Durability, Expiry};

/// A held session lock, before (or without) decoding the data: what delete, cycle and touch
/// need, and what [`Checkout`] is built on. (Nominally `pub`: it is the directory store's
/// `Backend::Held`; the module is private.)
pub struct Locked {
    pub(crate) store: Store,
    pub(crate) id: SessionId,
    pub(crate) data_path: StorePath,
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
        self.store.shared.config.settings.max_session_size
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

    fn mark_active(&self) -> Result<bool, Error> {
        Ok(self.store.mark_active(&self.id)?.is_some())
    }
    fn cycle(&mut self) -> Result<SessionId, Error> {
        Locked::cycle(self)
    }
}

impl Locked {
    pub(crate) fn acquire(store: &Store, id: &SessionId, wait: Wait) -> Result<Self, Error> {
        let shared = &store.shared;
        let data_path = shared.layout.data_path(id);
        let lock_path = shared.layout.lock_path(id);
        let (held, acquisition) = shared.locks.acquire(id, lock_path, &data_path, wait)?;
        Ok(Locked {
            store: store.clone(),
            id: *id,
            data_path,
            acquisition,
            held,
        })
    }

    /// A check-out of `id`: the lock, then the live session read and decoded under it.
    pub(crate) fn checkout<T: DeserializeOwned>(
        store: &Store,
        id: &SessionId,
        wait: Wait,
    ) -> Result<Checkout<T, Store>, Error> {
        let locked = Locked::acquire(store, id, wait)?;
        let frame = locked.read_live()?;
        let data = frame.decode(&locked.data_path)?;
        Ok(Checkout::from_parts(locked, frame, data))
    }

    /// Reads the session file under the lock; missing or expired is an error.
    pub(crate) fn read_live(&self) -> Result<Frame, Error> {
        let max = self.store.shared.config.settings.max_session_size;
        let Some(frame) = format::read_frame_held(&self.data_path, max)? else {
            return Err(self.vanished());
        };
        // Expired by its header and by its recorded activity (a sliding session kept alive by
        // reads, design §3.7); the frame keeps the header as written, for fencing.
        if format::with_activity(&frame.header, &self.data_path).is_expired(format::now_ms()) {
            return Err(Error::Expired { id: self.id });
        }
        Ok(frame)
    }

    /// Checks the session file exists and has not expired, reading the header only.
    pub(crate) fn require_live(&self) -> Result<(), Error> {
        match format::read_header_held(&self.data_path)? {
            None => Err(self.vanished()),
            Some(h) if format::with_activity(&h, &self.data_path).is_expired(format::now_ms()) => {
                Err(Error::Expired { id: self.id })
            }
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
        if shared.spares.load(Ordering::Relaxed) {
            let spare = shared.layout.spare_path(&self.id);
            let done = atomic::exchange_in(
                &self.data_path,
                &spare,
                bytes,
                config.file_mode,
                config.durability,
                || self.verify_lock(),
            )?;
            match done {
                Exchanged::Swapped | Exchanged::Renamed => return Ok(()),
                Exchanged::Unsupported => {
                    shared.spares.store(false, Ordering::Relaxed);
                    return Ok(());
                }
                Exchanged::SpareUnavailable => {} // a reader holds the spare: the classic way
            }
        }
        atomic::write(
            &self.data_path,
            Target::Replace,
            &atomic::temp_prefix(&self.id),
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
        let found = format::read_header_held(&self.data_path)?;
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
        let header = frame.header.next(expiry, format::now_ms());
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
        // unlink its lock file). Refuse with `LockLost` (tests/it/faults/lock_file.rs).
        self.verify_lock()?;
        let shared = &self.store.shared;
        // Its spare (if any) goes with it, through the same open directory; one left behind
        // by a failure there is tidy's.
        let spare = shared.layout.spare_path(&self.id);
        let removed = atomic::remove_with_spare(&self.data_path, &spare, shared.config.durability);
        let (existed, unsynced) = match removed {
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
        // another holder checked in meanwhile. Refuse with `LockLost` (tests/it/faults/lock_file.rs).
        self.verify_lock()?;
        let shared = &*self.store.shared;
        loop {
            let new_id = SessionId::generate()?;
            let Some(new_held) = shared
                .locks
                .create(&new_id, shared.layout.lock_path(&new_id))?
            else {
                continue; // taken, or tidy took the fresh lock file: draw another id
            };
            let new_data_path = shared.layout.data_path(&new_id);
            // The forwarding record goes first (store/forward.rs): whoever finds the old
            // session file gone finds it. Undone if the move fails.
            if let Err(e) = self.store.write_forward(&self.id, &new_id) {
                let _ = atomic::remove(new_held.path(), shared.config.durability);
                return Err(e);
            }
            let undo = |store: &Store, id: &SessionId| {
                store.remove_forward(id);
                let _ = atomic::remove(new_held.path(), shared.config.durability);
            };
            // Only a holder of new_id's lock writes new_data_path, and that is us: the rename
            // cannot clobber anything.
            let unsynced =
                match atomic::rename(&self.data_path, &new_data_path, shared.config.durability) {
                    Ok(true) => None,
                    Ok(false) => {
                        undo(&self.store, &self.id);
                        return Err(self.vanished());
                    }
                    Err(atomic::Failure::Before(e)) => {
                        undo(&self.store, &self.id);
                        return Err(e);
                    }
                    // Moved, but the directory sync failed: carry on under the new id, then report.
                    Err(atomic::Failure::After(e)) => Some(e),
                };
            // The spare (if any: `Ok(false)` is none) follows, so a steady state creates no
            // inode after a login either; if it cannot, it is removed, and the next check-in
            // makes a new one.
            let old_spare = shared.layout.spare_path(&self.id);
            let new_spare = shared.layout.spare_path(&new_id);
            if atomic::rename(&old_spare, &new_spare, Durability::None).is_err() {
                let _ = atomic::remove(&old_spare, Durability::None);
            }
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
