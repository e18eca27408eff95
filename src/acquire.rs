//! The check-out protocol: take the local turn, try the file lock, announce, wait, verify.
//!
//! 1. **Local turn** ([`crate::local`]): threads of this process queue in memory, so at most one
//!    of them works on the session's file lock.
//! 2. **Open** `locks/<shard>/<id>`. Missing → the session does not exist (unless its session
//!    file does: then the lock file is recreated with `O_EXCL`, see below).
//! 3. **Try** an exclusive `flock` without blocking. Free → go to 5.
//! 4. **Announce and wait**: tell the observer, register for release events of this lock file
//!    *before* the next attempt (so a release in between is not missed), then loop: try again,
//!    sleep until a release event or a poll tick (1 ms doubling up to `poll_delay`), until the
//!    lock timeout. The release event comes from an inotify watch on this one lock file
//!    ([`crate::wake`]), so the kernel wakes this thread directly.
//! 5. **Verify**: the locked inode must still be linked. A holder that deleted the session
//!    unlinked the lock file before releasing it, so a waiter that wakes holding an unlinked
//!    inode has been handed a dead session; it retries from 2 and finds the path empty
//!    ([`Error::Deleted`]). Because lock files are never renamed and their paths never re-bound
//!    (see [`crate::lock::is_linked`]), "linked" means "the file at the path": two holders can
//!    never both believe they hold the session.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::courtesy::{Before, Courtesy, Holding, PAUSE};
use crate::error::Error;
use crate::id::SessionId;
use crate::local::{LocalLocks, Turn};
use crate::lock;
use crate::observer::{AcquiredBy, Acquisition};
use crate::store::Shared;
use crate::wake::{Queued, ReleaseWatch, Woken};

/// A held session lock: the locked lock file and this process's turn. Dropping it closes the
/// file (releasing the `flock` and raising the wake-up event) and then passes the turn on.
pub(crate) struct Held {
    // Field order is drop order: release the file lock before handing over the local turn.
    file: File,
    turn: TurnGuard,
    /// Where the lock file is (built once per acquisition, not per write).
    path: PathBuf,
}

struct TurnGuard {
    local: Arc<LocalLocks>,
    courtesy: Arc<Courtesy>,
    id: SessionId,
    gone: bool,
    holding: Holding,
    /// A waiter in another process announced itself while we held the lock.
    announced: AtomicBool,
}

impl Drop for TurnGuard {
    fn drop(&mut self) {
        let holding = match self.holding {
            Holding::Quiet if self.announced.load(Ordering::Relaxed) => Holding::Retaken,
            other => other,
        };
        self.courtesy.after(&self.id, holding);
        self.local.give_back(&self.id, self.gone);
    }
}

impl Held {
    /// Records that the holder deleted the session (or moved it to a new id), so that a thread
    /// of this process queued behind it reports [`Error::Deleted`].
    pub fn mark_gone(&mut self) {
        self.turn.gone = true;
    }

    /// Checks, right before a write, that the held lock file is still the one at the path. It
    /// can only be unlinked under us from outside the store's protocol (a hand-deleted lock
    /// file, a temporary-file cleaner); then a new lock file may have been created and locked
    /// by someone else, and writing would lose their update.
    ///
    /// The same `fstat` shows whether a waiter announced itself; if so the hint is cleared and
    /// this holding counts as contended for bounded barging.
    pub fn verify(&self) -> Result<(), Error> {
        self.check(false)
    }

    /// [`verify`](Self::verify), and also that the lock path still names our lock file (a
    /// lock file renamed away while held is caught too): one `lstat` more. For fenced
    /// check-ins.
    pub fn verify_at_path(&self) -> Result<(), Error> {
        self.check(true)
    }

    fn check(&self, at_path: bool) -> Result<(), Error> {
        let state = lock::state(&self.file, &self.path)?;
        if state.waiters {
            lock::clear_waiting(&self.file);
            self.turn.announced.store(true, Ordering::Relaxed);
        }
        if state.linked && (!at_path || lock::is_at_path(&state, &self.path)?) {
            Ok(())
        } else {
            Err(Error::LockLost {
                id: self.turn.id,
                path: self.path.clone(),
            })
        }
    }

    /// The held lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Wraps the freshly created and locked lock file of a new id (cycle): nobody else can know
/// the id yet, so the local turn is free.
pub(crate) fn adopt(
    shared: &Shared,
    id: &SessionId,
    file: File,
    path: PathBuf,
) -> Result<Held, Error> {
    match shared.local.take(id, None) {
        Turn::Taken { .. } => Ok(Held {
            file,
            path,
            turn: TurnGuard {
                local: Arc::clone(&shared.local),
                courtesy: Arc::clone(&shared.courtesy),
                id: *id,
                gone: false,
                holding: Holding::Quiet,
                announced: AtomicBool::new(false),
            },
        }),
        Turn::Refused => Err(Error::Busy { id: *id }),
    }
}

/// Whether a check-out waits for a holder.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Up to the store's lock timeout.
    UpToTimeout,
    /// Not at all: a held session is [`Error::Busy`].
    No,
}

/// Acquires `id`'s lock (steps 1–5 above).
pub(crate) fn acquire(
    shared: &Shared,
    id: &SessionId,
    wait: Wait,
) -> Result<(Held, Acquisition), Error> {
    let start = Instant::now();
    // A timeout too large to add to the clock means "wait for ever" (a century).
    let deadline = (wait == Wait::UpToTimeout).then(|| {
        start
            .checked_add(shared.config.lock_timeout)
            .unwrap_or_else(|| start + Duration::from_secs(100 * 365 * 24 * 3600))
    });
    let (mut by, mut saw_deleted) = match shared.local.take(id, deadline) {
        Turn::Taken {
            waited: false,
            gone,
        } => (AcquiredBy::Immediately, gone),
        Turn::Taken { waited: true, gone } => (AcquiredBy::LocalQueue, gone),
        Turn::Refused => return Err(contended(shared, id, start, deadline.is_some())),
    };
    let mut turn = TurnGuard {
        local: Arc::clone(&shared.local),
        courtesy: Arc::clone(&shared.courtesy),
        id: *id,
        gone: false,
        holding: Holding::Quiet,
        announced: AtomicBool::new(false),
    };
    let before = shared.courtesy.before(id);
    if before == Before::Pause {
        std::thread::sleep(PAUSE);
    }
    let lock_path = shared.layout.lock_path(id);
    loop {
        let Some(mut file) = lock::open(&lock_path)? else {
            if saw_deleted {
                return Err(Error::Deleted { id: *id });
            }
            // No lock file. Our own writers never leave a session file without one (create
            // makes the lock first, delete removes it last), but a crash before the lock
            // directory reached the disk, or a hand-deleted lock file, can. Recreate it with
            // O_EXCL: of several repairers exactly one creates it, and all then lock that one.
            if std::fs::symlink_metadata(shared.layout.data_path(id)).is_ok() {
                lock::create(&lock_path, shared.config.file_mode)?;
                continue;
            }
            return Err(Error::NotFound { id: *id });
        };
        if !lock::try_lock(&file, &lock_path)? {
            let Some(deadline) = deadline else {
                return Err(contended(shared, id, start, false));
            };
            if let Some(observer) = &shared.config.observer {
                observer.waiting(id);
            }
            (file, by) = wait_for_release(shared, id, file, &lock_path, start, deadline)?;
        }
        // Verify: the inode we hold must still be the lock file at the path.
        if !lock::is_linked(&file, &lock_path)? {
            // The session was deleted (or its id cycled) while we waited; its lock file was
            // unlinked before the lock was released to us. Look again: the path is empty now.
            saw_deleted = true;
            continue;
        }
        let acquisition = Acquisition {
            by,
            waited: start.elapsed(),
        };
        turn.holding = match (by, before) {
            (AcquiredBy::Immediately, Before::Retake) => Holding::Retaken,
            (AcquiredBy::Immediately, _) => Holding::Quiet,
            _ => Holding::Waited,
        };
        shared.counters.acquired(by);
        if by != AcquiredBy::Immediately
            && let Some(observer) = &shared.config.observer
        {
            observer.acquired(id, &acquisition);
        }
        return Ok((
            Held {
                file,
                turn,
                path: lock_path,
            },
            acquisition,
        ));
    }
}

fn contended(shared: &Shared, id: &SessionId, start: Instant, waited: bool) -> Error {
    if waited {
        shared.counters.timed_out();
        Error::LockTimeout {
            id: *id,
            waited: start.elapsed(),
        }
    } else {
        shared.counters.busy();
        Error::Busy { id: *id }
    }
}

/// Step 4: wait until the lock is ours or the deadline passes. Returns the descriptor that
/// holds the lock (the helper's duplicate when queued in the kernel, else `file` itself) and
/// how the wait ended.
fn wait_for_release(
    shared: &Shared,
    id: &SessionId,
    file: File,
    lock_path: &Path,
    start: Instant,
    deadline: Instant,
) -> Result<(File, AcquiredBy), Error> {
    lock::announce_waiting(&file);
    match shared.queue.wait(&file, lock_path, deadline) {
        Queued::Granted(held) => Ok((held, AcquiredBy::Event)),
        Queued::TimedOut => Err(contended(shared, id, start, true)),
        Queued::Failed(e) => Err(Error::io("lock", lock_path, e)),
        Queued::Unavailable(e) => {
            if let Some(observer) = &shared.config.observer {
                observer.events_unavailable(&Error::io("start a waiting thread", lock_path, e));
            }
            let by = poll_for_release(shared, id, &file, lock_path, start, deadline)?;
            Ok((file, by))
        }
    }
}

/// The fallback wait: try, sleep on the release watch or a poll tick, try again. Returns
/// whether the last sleep ended by a release event or at a poll tick.
fn poll_for_release(
    shared: &Shared,
    id: &SessionId,
    file: &File,
    lock_path: &Path,
    start: Instant,
    deadline: Instant,
) -> Result<AcquiredBy, Error> {
    let (mut watch, error) = ReleaseWatch::new(lock_path);
    if let (Some(error), Some(observer)) = (error, &shared.config.observer) {
        observer.events_unavailable(&error);
    }
    let first_nap = Duration::from_millis(1).min(shared.config.poll_delay);
    let mut nap = first_nap;
    let mut by = AcquiredBy::Poll;
    loop {
        // Watching since before this attempt: a release after it fails wakes us.
        if lock::try_lock(file, lock_path)? {
            return Ok(by);
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(contended(shared, id, start, true));
        }
        (nap, by) = match watch.sleep(nap.min(deadline - now)) {
            Woken::Event => (first_nap, AcquiredBy::Event),
            Woken::Timeout => ((nap * 2).min(shared.config.poll_delay), AcquiredBy::Poll),
        };
    }
}
