//! Acquiring a session's lock: steps 1-5 of the protocol in [`super`].

use std::fs::File;
use std::path::Path;
use std::time::{Duration, Instant};

use super::Locks;
use super::barging::{Before, Holding, PAUSE};
use super::flock;
use super::held::{Held, TurnGuard};
use super::kernel_queue::Queued;
use super::queue::Turn;
use super::release_watch::{ReleaseWatch, Woken};
use crate::error::Error;
use crate::fs::beneath::StorePath;
use crate::id::SessionId;
use crate::observer::{AcquiredBy, Acquisition};

/// Whether a check-out waits for a holder.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Up to the store's lock timeout.
    UpToTimeout,
    /// Not at all: a held session is [`Error::Busy`].
    No,
}

impl Locks {
    /// Acquires `id`'s lock at `lock_path` (steps 1–5 of the protocol). `session_file` is the
    /// session's data file: if the lock file is missing but that file exists, the lock file is
    /// recreated (step 2).
    pub(crate) fn acquire(
        &self,
        id: &SessionId,
        lock_path: StorePath,
        session_file: &StorePath,
        wait: Wait,
    ) -> Result<(Held, Acquisition), Error> {
        let start = Instant::now();
        // A timeout too large to add to the clock means "wait for ever" (a century).
        let deadline = (wait == Wait::UpToTimeout).then(|| {
            start
                .checked_add(self.settings.timeout)
                .unwrap_or_else(|| start + Duration::from_secs(100 * 365 * 24 * 3600))
        });
        let (mut by, mut saw_deleted) = match self.threads.take(id, deadline) {
            Turn::Taken {
                waited: false,
                gone,
            } => (AcquiredBy::Immediately, gone),
            Turn::Taken { waited: true, gone } => (AcquiredBy::LocalQueue, gone),
            Turn::Refused => return Err(contended(self, id, start, deadline.is_some())),
        };
        let mut turn = TurnGuard::new(&self.threads, &self.barging, id);
        let before = self.barging.before(id);
        if before == Before::Pause {
            std::thread::sleep(PAUSE);
        }
        loop {
            let Some(mut file) = flock::open(&lock_path)? else {
                if saw_deleted {
                    return Err(Error::Deleted { id: *id });
                }
                // No lock file. Our own writers never leave a session file without one (create
                // makes the lock first, delete removes it last), but a crash before the lock
                // directory reached the disk, or a hand-deleted lock file, can. Recreate it with
                // O_EXCL: of several repairers exactly one creates it, and all then lock that one.
                if session_file.lstat().is_ok() {
                    flock::create(&lock_path, self.settings.file_mode)?;
                    continue;
                }
                return Err(Error::NotFound { id: *id });
            };
            if !flock::try_lock(&file, &lock_path)? {
                let Some(deadline) = deadline else {
                    return Err(contended(self, id, start, false));
                };
                if let Some(observer) = &self.settings.observer {
                    observer.waiting(id);
                }
                (file, by) = wait_for_release(self, id, file, &lock_path, start, deadline)?;
            }
            // Verify: the inode we hold must still be the lock file at the path.
            if !flock::is_linked(&file, &lock_path)? {
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
            self.counters.acquired(by);
            if by != AcquiredBy::Immediately
                && let Some(observer) = &self.settings.observer
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
}

fn contended(locks: &Locks, id: &SessionId, start: Instant, waited: bool) -> Error {
    if waited {
        locks.counters.timed_out();
        Error::LockTimeout {
            id: *id,
            waited: start.elapsed(),
        }
    } else {
        locks.counters.busy();
        Error::Busy { id: *id }
    }
}

/// Step 4: wait until the lock is ours or the deadline passes. Returns the descriptor that
/// holds the lock (the helper's duplicate when queued in the kernel, else `file` itself) and
/// how the wait ended.
fn wait_for_release(
    locks: &Locks,
    id: &SessionId,
    file: File,
    lock_path: &Path,
    start: Instant,
    deadline: Instant,
) -> Result<(File, AcquiredBy), Error> {
    flock::announce_waiting(&file);
    match locks.kernel.wait(&file, lock_path, deadline) {
        Queued::Granted(held) => Ok((held, AcquiredBy::Event)),
        Queued::TimedOut => Err(contended(locks, id, start, true)),
        Queued::Failed(e) => Err(Error::io("lock", lock_path, e)),
        Queued::Unavailable(e) => {
            if let Some(observer) = &locks.settings.observer {
                observer.events_unavailable(&Error::io("start a waiting thread", lock_path, e));
            }
            let by = poll_for_release(locks, id, &file, lock_path, start, deadline)?;
            Ok((file, by))
        }
    }
}

/// The fallback wait: try, sleep on the release watch or a poll tick, try again. Returns
/// whether the last sleep ended by a release event or at a poll tick.
fn poll_for_release(
    locks: &Locks,
    id: &SessionId,
    file: &File,
    lock_path: &Path,
    start: Instant,
    deadline: Instant,
) -> Result<AcquiredBy, Error> {
    let (mut watch, error) = ReleaseWatch::new(lock_path);
    if let (Some(error), Some(observer)) = (error, &locks.settings.observer) {
        observer.events_unavailable(&error);
    }
    let first_nap = Duration::from_millis(1).min(locks.settings.poll_delay);
    let mut nap = first_nap;
    let mut by = AcquiredBy::Poll;
    loop {
        // Watching since before this attempt: a release after it fails wakes us.
        if flock::try_lock(file, lock_path)? {
            return Ok(by);
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(contended(locks, id, start, true));
        }
        (nap, by) = match watch.sleep(nap.min(deadline - now)) {
            Woken::Event => (first_nap, AcquiredBy::Event),
            Woken::Timeout => ((nap * 2).min(locks.settings.poll_delay), AcquiredBy::Poll),
        };
    }
}
