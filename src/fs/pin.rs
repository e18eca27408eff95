//! Pins: the shared `flock` a lock-free reader holds on the session file it reads, and the
//! exclusive one a check-in needs on a session's spare file before it overwrites it.
//!
//! A check-in that reuses inodes (see [`crate::fs::atomic::exchange_in`]) writes the new
//! version into the session's *spare* file in place and then swaps spare and live with
//! `renameat2(RENAME_EXCHANGE)`; the old version becomes the next spare. A reader that opened
//! the live file just before a swap holds what is now the spare, which the next check-in
//! overwrites. The pins keep the two apart, without anyone waiting:
//!
//! * a writer overwrites a spare only while it holds an exclusive pin on it, taken without
//!   waiting (`LOCK_EX | LOCK_NB`) and dropped before the swap; if a reader holds it, the
//!   writer leaves that spare alone and checks in by renaming a new file instead;
//! * a reader reads only while it holds a shared pin (`LOCK_SH | LOCK_NB`); if a writer holds
//!   the file, it is a spare being overwritten, and the reader opens the path again.
//!
//! These are advisory locks on the *session* files; the session locks are on the separate
//! lock files (`crate::lock`), so the two protocols never meet. Closing the file drops a pin.

use std::fs::{File, TryLockError};
use std::path::Path;

use crate::error::Error;

/// Takes a shared pin on `file` without waiting. `Ok(false)`: a writer holds it exclusively.
#[allow(clippy::disallowed_methods)] // pins are the data files' locks; session locks are in lock/
pub(crate) fn try_shared(file: &File, path: &Path) -> Result<bool, Error> {
    match file.try_lock_shared() {
        Ok(()) => Ok(true),
        Err(TryLockError::WouldBlock) => Ok(false),
        Err(TryLockError::Error(e)) => Err(Error::io("pin (flock LOCK_SH) for reading", path, e)),
    }
}

/// Takes an exclusive pin on `file` without waiting. `Ok(false)`: a reader holds it.
#[allow(clippy::disallowed_methods)] // pins are the data files' locks; session locks are in lock/
pub(crate) fn try_exclusive(file: &File, path: &Path) -> Result<bool, Error> {
    match file.try_lock() {
        Ok(()) => Ok(true),
        Err(TryLockError::WouldBlock) => Ok(false),
        Err(TryLockError::Error(e)) => Err(Error::io("pin (flock LOCK_EX) for writing", path, e)),
    }
}
