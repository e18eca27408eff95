//! Tidying: removing what crashed writers left behind, never what a live writer is using.
//!
//! Three kinds of leftovers exist:
//!
//! * **Temporary files** `.<id>.<r>.tmp`: a writer was killed between creating its temporary
//!   file and renaming it. Every temporary file for `<id>` is written by a holder of `<id>`'s
//!   lock, for the whole life of the file. So if tidy can take that lock (or the lock file is
//!   gone), the writer is dead and the file is removed while tidy holds the lock; if the lock
//!   is held, the file may be a live writer's and is left alone; if it is gone by the time
//!   tidy holds the lock, its writer renamed it into place after the listing: no failure.
//! * **Orphaned lock files**: a create was killed before its session file existed, or a delete
//!   between unlinking the session file and the lock file. Tidy takes the lock, checks again
//!   that there is no session file and that the lock file is still linked, and removes it.
//!   (A create in progress holds its lock, so it is skipped.)
//! * **Orphaned spare files** `.<id>.spare`: a `cycle_id` was killed between moving the
//!   session file and moving its spare, or a delete could not unlink the spare. A spare whose session file exists is part of the session (its next
//!   check-in overwrites it) and is never touched; one without is removed under `<id>`'s lock,
//!   after checking again that the session file is still missing.
//!
//! Tidy works one shard at a time: its memory is bounded by the size of one shard directory.

use std::collections::HashSet;
use std::fs;
use std::path::Path;

use super::handle::Store;
use crate::error::Error;
use crate::fs::atomic::{self, spare_owner, temp_owner};
use crate::fs::netfs;
use crate::id::SessionId;
use crate::lock::flock;

/// What a tidy pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TidyReport {
    /// Temporary files of dead writers removed.
    pub temp_files_removed: u64,
    /// Lock files without a session file removed.
    pub orphan_locks_removed: u64,
    /// Spare files without a session file removed.
    pub orphan_spares_removed: u64,
    /// Leftover candidates skipped because their session was held (possibly a live writer).
    pub skipped_busy: u64,
    /// Bytes of temporary files removed.
    pub bytes_freed: u64,
    /// Entries that could not be judged or removed (unreadable directory, a directory named
    /// like a temporary file, a shard whose directories were replaced by a symlink or opened
    /// to other users since the store was opened, ...); left in place, the pass went on.
    pub failed: u64,
}

/// What became of a temporary file tidy listed.
enum Temp {
    /// Its writer was dead: removed, with this many bytes.
    Removed(u64),
    /// Its session is held (maybe by its writer): left alone.
    Busy,
    /// Already gone: its writer renamed it into place after the listing.
    Gone,
}

impl Store {
    /// Closes the store: removes the temporary files crashed writers left behind (see
    /// [`tidy`](Self::tidy)), and drops this handle. The store keeps no background thread or
    /// descriptor of its own, so nothing else needs stopping.
    ///
    /// Other clones of this handle keep working.
    pub fn close(self) -> Result<TidyReport, Error> {
        self.tidy()
    }

    /// Removes temporary files left by crashed writers and lock files left by crashed creates
    /// and deletes. Never touches a file a live writer may be using.
    pub fn tidy(&self) -> Result<TidyReport, Error> {
        let mut report = TidyReport::default();
        for shard in 0..self.shared.layout.fan_out() {
            self.tidy_shard(shard, &mut report);
        }
        Ok(report)
    }

    fn tidy_shard(&self, shard: u32, report: &mut TidyReport) {
        let layout = &self.shared.layout;
        // A directory replaced by a symlink since open would lead this pass, which removes
        // files, outside the store: such a shard is counted as failed and left alone.
        if layout.recheck_shard(shard, &self.shared.config).is_err() {
            report.failed += 1;
            return;
        }
        let session_dir = layout.session_dir(shard);
        let mut live = HashSet::new();
        let mut temps = Vec::new();
        let mut spares = Vec::new();
        let Ok(names) = list(&session_dir) else {
            report.failed += 1;
            return;
        };
        for name in names {
            if netfs::is_placeholder_name(&name) {
                continue; // NFS's or FUSE's stand-in for a file deleted while open: not ours
            }
            if let Some(owner) = temp_owner(&name) {
                temps.push((owner, session_dir.join(&name)));
            } else if let Some(owner) = spare_owner(&name) {
                spares.push(owner);
            } else if let Ok(id) = SessionId::parse(&name) {
                live.insert(id);
            }
        }
        // Each leftover is judged on its own: one that cannot be removed is counted, and the
        // pass goes on.
        for (owner, temp) in temps {
            match self.remove_dead_temp(&owner, &temp) {
                Ok(Temp::Removed(len)) => {
                    report.temp_files_removed += 1;
                    report.bytes_freed += len;
                }
                Ok(Temp::Busy) => report.skipped_busy += 1,
                // Its writer renamed it into place (or removed it) after the listing.
                Ok(Temp::Gone) => {}
                Err(_) => report.failed += 1,
            }
        }
        for owner in spares.into_iter().filter(|owner| !live.contains(owner)) {
            match self.remove_orphan_spare(&owner) {
                Ok(Some(true)) => report.orphan_spares_removed += 1,
                Ok(Some(false)) => {} // its session came back, or the spare went meanwhile
                Ok(None) => report.skipped_busy += 1,
                Err(_) => report.failed += 1,
            }
        }
        let lock_dir = layout.lock_dir(shard);
        let Ok(names) = list(&lock_dir) else {
            report.failed += 1;
            return;
        };
        for name in names {
            let Ok(id) = SessionId::parse(&name) else {
                continue;
            };
            if live.contains(&id) {
                continue;
            }
            match self.remove_orphan_lock(&id) {
                Ok(Some(true)) => report.orphan_locks_removed += 1,
                Ok(Some(false)) => {}
                Ok(None) => report.skipped_busy += 1, // a create or a holder is at work on it
                Err(_) => report.failed += 1,
            }
        }
    }

    /// Removes `temp` if its writer is dead.
    fn remove_dead_temp(&self, owner: &SessionId, temp: &Path) -> Result<Temp, Error> {
        let lock_path = self.shared.layout.lock_path(owner);
        // Held for as long as the temporary file is being judged and removed.
        let _guard = match flock::open(&lock_path)? {
            None => None,
            Some(file) if flock::try_lock(&file, &lock_path)? => Some(file),
            Some(_) => return Ok(Temp::Busy),
        };
        let meta = match fs::symlink_metadata(temp) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Temp::Gone),
            Err(e) => return Err(Error::io("inspect", temp, e)),
        };
        if !meta.is_file() {
            return Err(Error::UnsafePath {
                path: temp.to_path_buf(),
                reason: "named like a temporary file but not a regular file; left alone",
            });
        }
        let removed = atomic::remove(temp, self.shared.config.durability)
            .map_err(atomic::Failure::into_error)?;
        Ok(if removed {
            Temp::Removed(meta.len())
        } else {
            Temp::Gone
        })
    }

    /// Removes `id`'s spare file if `id` has no session file. `Ok(None)`: `id` is held (a
    /// create or a check-in may be at work); `Ok(Some(removed))` otherwise.
    fn remove_orphan_spare(&self, id: &SessionId) -> Result<Option<bool>, Error> {
        let layout = &self.shared.layout;
        let lock_path = layout.lock_path(id);
        // Held for as long as the spare is judged and removed (no lock file: nobody can hold
        // the session, and a create makes its lock file before its session file).
        let _guard = match flock::open(&lock_path)? {
            None => None,
            Some(file) if flock::try_lock(&file, &lock_path)? => Some(file),
            Some(_) => return Ok(None),
        };
        if fs::symlink_metadata(layout.data_path(id)).is_ok() {
            return Ok(Some(false));
        }
        let spare = layout.spare_path(id);
        match fs::symlink_metadata(&spare) {
            Ok(meta) if meta.is_file() => {}
            Ok(_) => {
                return Err(Error::UnsafePath {
                    path: spare,
                    reason: "named like a spare file but not a regular file; left alone",
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Some(false)),
            Err(e) => return Err(Error::io("inspect", &spare, e)),
        }
        atomic::remove(&spare, self.shared.config.durability)
            .map_err(atomic::Failure::into_error)
            .map(Some)
    }

    /// Removes `id`'s lock file if it has no session file. `Ok(None)`: it is held;
    /// `Ok(Some(removed))` otherwise.
    fn remove_orphan_lock(&self, id: &SessionId) -> Result<Option<bool>, Error> {
        let layout = &self.shared.layout;
        let lock_path = layout.lock_path(id);
        let Some(file) = flock::open(&lock_path)? else {
            return Ok(Some(false));
        };
        if !flock::try_lock(&file, &lock_path)? {
            return Ok(None);
        }
        let still_orphan = flock::is_linked(&file, &lock_path)?
            && fs::symlink_metadata(layout.data_path(id)).is_err();
        Ok(Some(
            still_orphan
                && atomic::remove(&lock_path, self.shared.config.durability)
                    .map_err(atomic::Failure::into_error)?,
        ))
    }
}

/// Names in a directory that are valid UTF-8 (all of ours are); streaming from the OS.
pub(super) fn list(dir: &Path) -> Result<Vec<String>, Error> {
    netfs::retry_stale(|| {
        let entries = fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("list", dir, e))?;
            if let Ok(name) = entry.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    })
}
