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

use rustix::fs::{Dir, FileType, OFlags};

use super::handle::Store;
use crate::backend::Refused;
use crate::error::Error;
use crate::fs::atomic::{self, spare_owner, temp_owner};
use crate::fs::beneath::StorePath;
use crate::fs::netfs;
use crate::id::SessionId;
use crate::lock::flock;

/// What a tidy pass removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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
    /// Entries that could not be judged or removed (an unreadable directory, an I/O error);
    /// left in place, the pass went on.
    pub failed: u64,
    /// Paths the pass refused to go through or remove, each with why and what clears it: a
    /// shard directory replaced by a symlink (or opened to other users) since the store was
    /// opened, a symlink or directory planted where a lock, temporary or spare file belongs.
    /// The store never follows nor removes them; an operator must look.
    pub refused: Vec<Refused>,
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
        // files, outside the store: such a shard is refused and left alone.
        if let Err(e) = layout.recheck_shard(shard, &self.shared.config) {
            report.count(e);
            return;
        }
        let session_dir = layout.session_dir(shard);
        let mut live = HashSet::new();
        let mut temps = Vec::new();
        let mut spares = Vec::new();
        let names = match list(&session_dir) {
            Ok(names) => names,
            Err(e) => return report.count(e),
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
                Err(e) => report.count(e),
            }
        }
        for owner in spares.into_iter().filter(|owner| !live.contains(owner)) {
            match self.remove_orphan_spare(&owner) {
                Ok(Some(true)) => report.orphan_spares_removed += 1,
                Ok(Some(false)) => {} // its session came back, or the spare went meanwhile
                Ok(None) => report.skipped_busy += 1,
                Err(e) => report.count(e),
            }
        }
        let lock_dir = layout.lock_dir(shard);
        let names = match list(&lock_dir) {
            Ok(names) => names,
            Err(e) => return report.count(e),
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
                Err(e) => report.count(e),
            }
        }
    }

    /// Removes `temp` if its writer is dead.
    fn remove_dead_temp(&self, owner: &SessionId, temp: &StorePath) -> Result<Temp, Error> {
        let lock_path = self.shared.layout.lock_path(owner);
        // Held for as long as the temporary file is being judged and removed.
        let _guard = match flock::open(&lock_path)? {
            None => None,
            Some(file) if flock::try_lock(&file, &lock_path)? => Some(file),
            Some(_) => return Ok(Temp::Busy),
        };
        let meta = match temp.lstat() {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Temp::Gone),
            Err(e) => return Err(Error::io("inspect", temp, e)),
        };
        if !FileType::from_raw_mode(meta.st_mode).is_file() {
            return Err(Error::UnsafePath {
                path: temp.to_path_buf(),
                reason: "named like a temporary file but not a regular file: left alone \
                         (remove it by hand if it is not yours)",
            });
        }
        let removed = atomic::remove(temp, self.shared.config.durability)
            .map_err(atomic::Failure::into_error)?;
        Ok(if removed {
            Temp::Removed(meta.st_size as u64)
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
        if layout.data_path(id).lstat().is_ok() {
            return Ok(Some(false));
        }
        let spare = layout.spare_path(id);
        match spare.lstat() {
            Ok(meta) if FileType::from_raw_mode(meta.st_mode).is_file() => {}
            Ok(_) => {
                return Err(Error::UnsafePath {
                    path: spare.to_path_buf(),
                    reason: "named like a spare file but not a regular file: left alone \
                             (remove it by hand if it is not yours)",
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
        let still_orphan =
            flock::is_linked(&file, &lock_path)? && layout.data_path(id).lstat().is_err();
        Ok(Some(
            still_orphan
                && atomic::remove(&lock_path, self.shared.config.durability)
                    .map_err(atomic::Failure::into_error)?,
        ))
    }
}

impl TidyReport {
    /// Counts a leftover that could not be judged or removed: refused (with its path) if it
    /// is an unsafe path, failed otherwise.
    fn count(&mut self, e: Error) {
        if Refused::record(&mut self.refused, e).is_err() {
            self.failed += 1;
        }
    }
}

/// Names in a directory that are valid UTF-8 (all of ours are), the directory opened beneath
/// the store's root through no symlink.
pub(super) fn list(dir: &StorePath) -> Result<Vec<String>, Error> {
    netfs::retry_stale(|| {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW;
        let opened = match dir.open(flags, 0) {
            Ok(file) => file,
            Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)) => {
                return Err(Error::UnsafePath {
                    path: dir.to_path_buf(),
                    reason: crate::fs::beneath::SYMLINK_REFUSED,
                });
            }
            Err(e) => return Err(Error::io("list", dir, e)),
        };
        let entries = Dir::new(opened).map_err(|e| Error::io("list", dir, e.into()))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("list", dir, e.into()))?;
            if let Ok(name) = entry.file_name().to_str()
                && name != "."
                && name != ".."
            {
                names.push(name.to_owned());
            }
        }
        Ok(names)
    })
}
