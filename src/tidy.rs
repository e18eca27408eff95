//! Tidying: removing what crashed writers left behind, never what a live writer is using.
//!
//! Two kinds of leftovers exist:
//!
//! * **Temporary files** `.<id>.<r>.tmp`: a writer was killed between creating its temporary
//!   file and renaming it. Every temporary file for `<id>` is written by a holder of `<id>`'s
//!   lock, for the whole life of the file. So if tidy can take that lock (or the lock file is
//!   gone), the writer is dead and the file is removed while tidy holds the lock; if the lock
//!   is held, the file may be a live writer's and is left alone.
//! * **Orphaned lock files**: a create was killed before its session file existed, or a delete
//!   between unlinking the session file and the lock file. Tidy takes the lock, checks again
//!   that there is no session file and that the lock file is still linked, and removes it.
//!   (A create in progress holds its lock, so it is skipped.)
//!
//! Tidy works one shard at a time: its memory is bounded by the size of one shard directory.

use std::collections::HashSet;
use std::fs;
use std::path::Path;

use crate::atomic;
use crate::error::Error;
use crate::id::SessionId;
use crate::layout::temp_owner;
use crate::lock;
use crate::store::Store;

/// What a tidy pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TidyReport {
    /// Temporary files of dead writers removed.
    pub temp_files_removed: u64,
    /// Lock files without a session file removed.
    pub orphan_locks_removed: u64,
    /// Leftover candidates skipped because their session was held (possibly a live writer).
    pub skipped_busy: u64,
    /// Bytes of temporary files removed.
    pub bytes_freed: u64,
}

impl Store {
    /// Removes temporary files left by crashed writers and lock files left by crashed creates
    /// and deletes. Never touches a file a live writer may be using.
    pub fn tidy(&self) -> Result<TidyReport, Error> {
        let mut report = TidyReport::default();
        for shard in 0..self.shared.layout.fan_out() {
            self.tidy_shard(shard, &mut report)?;
        }
        Ok(report)
    }

    fn tidy_shard(&self, shard: u32, report: &mut TidyReport) -> Result<(), Error> {
        let layout = &self.shared.layout;
        let durability = self.shared.config.durability;
        let session_dir = layout.session_dir(shard);
        let mut live = HashSet::new();
        let mut temps = Vec::new();
        for name in list(&session_dir)? {
            if let Some(owner) = temp_owner(&name) {
                temps.push((owner, session_dir.join(&name)));
            } else if let Ok(id) = SessionId::parse(&name) {
                live.insert(id);
            }
        }
        for (owner, temp) in temps {
            let lock_path = layout.lock_path(&owner);
            // Held for as long as the temporary file is being judged and removed.
            let _guard = match lock::open(&lock_path)? {
                None => None,
                Some(file) if lock::try_lock(&file, &lock_path)? => Some(file),
                Some(_) => {
                    report.skipped_busy += 1;
                    continue;
                }
            };
            let len = fs::symlink_metadata(&temp).map(|m| m.len()).unwrap_or(0);
            if atomic::remove(&temp, durability)? {
                report.temp_files_removed += 1;
                report.bytes_freed += len;
            }
        }
        let lock_dir = layout.lock_dir(shard);
        for name in list(&lock_dir)? {
            let Ok(id) = SessionId::parse(&name) else {
                continue;
            };
            if live.contains(&id) {
                continue;
            }
            let lock_path = lock_dir.join(&name);
            let Some(file) = lock::open(&lock_path)? else {
                continue;
            };
            if !lock::try_lock(&file, &lock_path)? {
                report.skipped_busy += 1; // a create or a holder is at work on it
                continue;
            }
            let still_orphan = lock::is_linked(&file, &lock_path)?
                && fs::symlink_metadata(layout.data_path(&id)).is_err();
            if still_orphan && atomic::remove(&lock_path, durability)? {
                report.orphan_locks_removed += 1;
            }
        }
        Ok(())
    }
}

/// Names in a directory that are valid UTF-8 (all of ours are); streaming from the OS.
fn list(dir: &Path) -> Result<Vec<String>, Error> {
    let entries = fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list", dir, e))?;
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    Ok(names)
}
