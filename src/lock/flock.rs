//! Lock files and the only calls to the operating system's file locks.
//!
//! A session's lock file is `locks/<shard>/<id>`: empty, created with `O_EXCL` (by create and
//! cycle for a fresh id, or to repair a lost one), never renamed, unlinked only by a holder of its lock after the session file is
//! gone. Holders take an exclusive `flock(2)` on it through std's [`File::try_lock`] (stable since
//! Rust 1.89; see docs/design.md for why not `fs2` and not `fcntl` locks):
//!
//! * the lock belongs to the open file description, so it excludes other threads of this
//!   process that opened the file themselves as well as other processes;
//! * closing the descriptor releases it, and the kernel closes every descriptor of a process
//!   that dies, so a worker killed with SIGKILL never leaves a session locked;
//! * lock files are opened read-write, so the release (the `close`) raises `IN_CLOSE_WRITE`,
//!   the event that wakes waiters in other processes ([`crate::lock::kernel_queue`]).
//!
//! `clippy.toml` forbids `File::lock`/`try_lock`/`unlock` everywhere else.

use std::fs::{File, TryLockError};
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rustix::fs::OFlags;

use crate::error::Error;
use crate::fs::beneath::StorePath;

/// Opens an existing lock file read-write (so that closing it raises `IN_CLOSE_WRITE`).
/// `Ok(None)`: it does not exist.
pub(crate) fn open(path: &StorePath) -> Result<Option<File>, Error> {
    crate::fs::open::open_existing(path, OFlags::RDWR, "open lock file")
}

/// Creates a new lock file with `O_EXCL` (beneath the store's root, through no symlink).
/// `Ok(None)`: something already exists at `path`.
pub(crate) fn create(path: &StorePath, mode: u32) -> Result<Option<File>, Error> {
    match path.open(OFlags::RDWR | OFlags::CREATE | OFlags::EXCL, mode) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => Err(path.refused()),
        Err(e) => Err(Error::io("create lock file", path, e)),
    }
}

/// Tries to take the exclusive lock without blocking. `Ok(false)`: somebody holds it.
#[allow(clippy::disallowed_methods)] // this module is the one place allowed to lock
pub(crate) fn try_lock(file: &File, path: &Path) -> Result<bool, Error> {
    match file.try_lock() {
        Ok(()) => Ok(true),
        Err(TryLockError::WouldBlock) => Ok(false),
        Err(TryLockError::Error(e)) => Err(Error::io("lock", path, e)),
    }
}

/// What a holder learns from its locked lock file's metadata (one `fstat`).
pub(crate) struct LockState {
    /// Still linked into the directory tree (see [`is_linked`]).
    pub linked: bool,
    /// A waiter in another process announced itself (see [`announce_waiting`]).
    pub waiters: bool,
    /// The locked file's device and inode, to compare with what the lock path names.
    pub file_id: (u64, u64),
}

/// Tells the holder that somebody waits: lock files are empty, and a waiter sets the length of
/// the one it waits for to 1 before queueing. The holder sees it in the `fstat` it does before
/// every write anyway ([`state`]) and resets it ([`clear_waiting`]); it is a hint for bounded
/// barging ([`crate::barging`]), never part of the exclusion. Failing to set it is harmless.
pub(crate) fn announce_waiting(file: &File) {
    let _ = file.set_len(1);
}

/// Resets the waiting hint (see [`announce_waiting`]).
pub(crate) fn clear_waiting(file: &File) {
    let _ = file.set_len(0);
}

/// The locked lock file's link count and waiting hint, from one `fstat`.
pub(crate) fn state(file: &File, path: &Path) -> Result<LockState, Error> {
    let meta = file
        .metadata()
        .map_err(|e| Error::io("inspect lock file", path, e))?;
    Ok(LockState {
        linked: meta.nlink() > 0,
        waiters: meta.len() > 0,
        file_id: (meta.dev(), meta.ino()),
    })
}

/// Whether the lock path still names the locked file (`state.file_id`, from the `fstat` the
/// holder makes anyway): false if the file was renamed away or replaced, or nothing is at the
/// path. One `lstat`; only fenced check-ins pay it (design §13).
pub(crate) fn is_at_path(state: &LockState, path: &StorePath) -> Result<bool, Error> {
    match path.identity() {
        Ok(there) => Ok(there == state.file_id),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io("inspect lock file", path, e)),
    }
}

/// Whether the locked file is still linked into the directory tree.
///
/// A lock file is unlinked only by a holder of its lock, and only after the session file is
/// gone (delete, cycle, tidy of an orphan); it is never renamed and its path is never re-bound
/// (ids are never reused and lock files are created with `O_EXCL`). So "still linked" means
/// "still the file at the path": a waiter that acquires an unlinked inode has been handed the
/// lock of a session that was deleted while it waited.
pub(crate) fn is_linked(file: &File, path: &Path) -> Result<bool, Error> {
    Ok(state(file, path)?.linked)
}

/// Waits in the kernel's queue for the exclusive lock (a blocking `flock`), going on after a
/// signal interrupts it. Only the helper threads of [`crate::lock::kernel_queue`] call this: a caller's own
/// thread never blocks without a deadline.
#[allow(clippy::disallowed_methods)]
pub(crate) fn lock_blocking(file: &File) -> std::io::Result<()> {
    loop {
        match file.lock() {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Releases the lock of `file`'s open file description (a helper whose waiter gave up).
#[allow(clippy::disallowed_methods)]
pub(crate) fn unlock(file: &File) -> std::io::Result<()> {
    file.unlock()
}
