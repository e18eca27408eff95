//! [`Held`]: a session lock held by this process, and what its release does.

use std::fs::File;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::barging::{Barging, Holding};
use super::flock;
use super::queue::ThreadQueue;
use crate::error::Error;
use crate::fs::beneath::StorePath;
use crate::id::SessionId;

/// A held session lock: the locked lock file and this process's turn. Dropping it closes the
/// file (releasing the `flock` and raising the wake-up event) and then passes the turn on.
pub(crate) struct Held {
    // Field order is drop order: release the file lock before handing over the local turn.
    pub(super) file: File,
    pub(super) turn: TurnGuard,
    /// Where the lock file is (built once per acquisition, not per write).
    pub(super) path: StorePath,
}

pub(super) struct TurnGuard {
    threads: Arc<ThreadQueue>,
    barging: Arc<Barging>,
    id: SessionId,
    gone: bool,
    pub(super) holding: Holding,
    /// A waiter in another process announced itself while we held the lock.
    announced: AtomicBool,
}

impl TurnGuard {
    /// The turn of `id` in this process, just taken from `threads`.
    pub(super) fn new(threads: &Arc<ThreadQueue>, barging: &Arc<Barging>, id: &SessionId) -> Self {
        TurnGuard {
            threads: Arc::clone(threads),
            barging: Arc::clone(barging),
            id: *id,
            gone: false,
            holding: Holding::Quiet,
            announced: AtomicBool::new(false),
        }
    }
}

impl Drop for TurnGuard {
    fn drop(&mut self) {
        let holding = match self.holding {
            Holding::Quiet if self.announced.load(Ordering::Relaxed) => Holding::Retaken,
            other => other,
        };
        self.barging.after(&self.id, holding);
        self.threads.give_back(&self.id, self.gone);
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
        let state = flock::state(&self.file, &self.path)?;
        if state.waiters {
            flock::clear_waiting(&self.file);
            self.turn.announced.store(true, Ordering::Relaxed);
        }
        if state.linked && (!at_path || flock::is_at_path(&state, &self.path)?) {
            Ok(())
        } else {
            Err(Error::LockLost {
                id: self.turn.id,
                path: self.path.to_path_buf(),
            })
        }
    }

    /// The held lock file's path.
    pub fn path(&self) -> &StorePath {
        &self.path
    }
}
