//! The lock protocol: one exclusive lock per session, across threads and processes, released
//! by the kernel when its holder dies.
//!
//! Everything here works on lock-file paths handed in by the caller; this wing knows nothing of
//! the store's layout, its session files or their format. [`Locks`] owns the protocol's state
//! for one store (shared by the store's clones) and is the only way in.
//!
//! A check-out ([`Locks::acquire`]):
//!
//! 1. **Local turn** ([`queue`]): threads of this process queue in memory, so at most one of
//!    them works on the session's file lock; a thread that releases hands the turn on directly.
//! 2. **Open** the lock file. Missing → the session does not exist, unless its session file
//!    does: then the lock file is recreated with `O_EXCL` (of several repairers exactly one
//!    creates it, and all lock that one).
//! 3. **Try** an exclusive `flock` without blocking ([`flock`], the only module that calls the
//!    operating system's file locks). Free → go to 5. Before trying, a process that has just
//!    re-taken a contended session several times in a row steps aside for a moment
//!    ([`barging`]), so waiters in other processes get their turn.
//! 4. **Announce and wait**: tell the observer, set the "a waiter is queued" hint on the lock
//!    file, and queue in the kernel's own `flock` queue through a helper thread
//!    ([`kernel_queue`]), so the lock timeout stays exact and the release itself wakes the
//!    waiter. If no helper can be started, poll with a back-off from 1 ms up to `poll_delay`,
//!    woken early by the release's inotify event ([`release_watch`]).
//! 5. **Verify**: the locked inode must still be linked. A holder that deleted the session
//!    unlinked the lock file before releasing it, so a waiter that wakes holding an unlinked
//!    inode has been handed a dead session; it retries from 2 and finds the path empty
//!    ([`Error::Deleted`]). Because lock files are never renamed and their paths never re-bound
//!    (see [`flock::is_linked`]), "linked" means "the file at the path": two holders can never
//!    both believe they hold the session.
//!
//! A fresh id's lock ([`Locks::create`]) is created with `O_EXCL`, locked and checked to be
//! linked in one place, for both `create` and `cycle_id`. The [`Held`] lock releases on drop:
//! first the `flock` (closing the file wakes the kernel's queue), then the local turn.

mod acquire;
mod barging;
pub(crate) mod flock;
mod held;
mod kernel_queue;
mod queue;
mod release_watch;

use std::sync::Arc;
use std::time::Duration;

use crate::error::Error;
use crate::fs::beneath::StorePath;
use crate::id::SessionId;
use crate::observer::{Counters, LockStats, Observer};

pub(crate) use acquire::Wait;
use barging::Barging;
pub(crate) use held::Held;
use held::TurnGuard;
use kernel_queue::KernelQueue;
use queue::{ThreadQueue, Turn};

/// What the protocol needs from the store's settings.
pub(crate) struct LockSettings {
    /// How long a waiting acquisition waits before [`Error::LockTimeout`].
    pub timeout: Duration,
    /// The longest sleep of the polling fallback.
    pub poll_delay: Duration,
    /// Permission bits of lock files this protocol creates.
    pub file_mode: u32,
    /// Told about waits (and how they ended).
    pub observer: Option<Arc<dyn Observer>>,
}

/// The lock protocol's state for one store: the in-process queue, the barging table, the
/// kernel-queue helpers and the statistics.
pub(crate) struct Locks {
    settings: LockSettings,
    threads: Arc<ThreadQueue>,
    barging: Arc<Barging>,
    kernel: KernelQueue,
    counters: Counters,
}

impl Locks {
    pub fn new(settings: LockSettings) -> Self {
        Locks {
            settings,
            threads: Arc::default(),
            barging: Arc::default(),
            kernel: KernelQueue::default(),
            counters: Counters::default(),
        }
    }

    /// Creates, locks and holds the lock file of a fresh id at `lock_path`. `Ok(None)`: the id
    /// is taken (something exists at the path), or tidy took the fresh lock file between its
    /// creation and the `flock` and unlinked it; either way draw another id.
    pub fn create(&self, id: &SessionId, lock_path: StorePath) -> Result<Option<Held>, Error> {
        let Some(file) = flock::create(&lock_path, self.settings.file_mode)? else {
            return Ok(None);
        };
        // Between O_EXCL and flock, tidy may take this lock, see no session file and unlink
        // it; then the id is abandoned (tidy removes what is left).
        if !flock::try_lock(&file, &lock_path)? || !flock::is_linked(&file, &lock_path)? {
            return Ok(None);
        }
        // Nobody else can know the id yet, so the local turn is free.
        match self.threads.take(id, None) {
            Turn::Taken { .. } => Ok(Some(Held {
                file,
                path: lock_path,
                turn: TurnGuard::new(&self.threads, &self.barging, id),
            })),
            Turn::Refused => Err(Error::Busy { id: *id }),
        }
    }

    /// Whether somebody (any thread or process) holds the lock at `lock_path` right now: tries
    /// it and releases it at once. A missing lock file is `Ok(false)`.
    pub fn is_held(lock_path: &StorePath) -> Result<bool, Error> {
        match flock::open(lock_path)? {
            None => Ok(false),
            Some(file) => Ok(!flock::try_lock(&file, lock_path)?),
        }
    }

    /// How acquisitions through these locks went so far.
    pub fn stats(&self) -> LockStats {
        self.counters.snapshot()
    }
}
