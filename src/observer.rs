//! Watching the lock protocol from outside: the [`Observer`] hook and [`LockStats`] counters.
//!
//! The library never prints. A contended check-out first tells the observer that it waits
//! ("try, announce, then wait"), and every acquisition is counted by how it happened, so a CLI or
//! a benchmark can show what locking costs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::Error;
use crate::id::SessionId;

/// Receives lock-protocol notifications. All methods have empty defaults.
pub trait Observer: Send + Sync {
    /// A check-out found the session held and is about to wait for it.
    fn waiting(&self, _id: &SessionId) {}
    /// A check-out that had to wait got the session.
    fn acquired(&self, _id: &SessionId, _acquisition: &Acquisition) {}
    /// The usual wait could not be set up: no helper thread could be started to queue in the
    /// kernel's lock queue, or (then) no inotify watch for release events (e.g. the inotify
    /// limits). The waiter falls back to polling every
    /// [`poll_delay`](crate::StoreBuilder::poll_delay) at most.
    fn events_unavailable(&self, _error: &Error) {}
}

/// How a check-out got its lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AcquiredBy {
    /// At the first attempt, without waiting.
    Immediately,
    /// After waiting behind another thread of this process, then at the first attempt.
    LocalQueue,
    /// On a release in another process: granted in the kernel's lock queue, or (fallback)
    /// woken by the release's file event.
    Event,
    /// At a poll, without an event.
    Poll,
}

/// The story of one acquisition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acquisition {
    /// How the lock was finally obtained.
    pub by: AcquiredBy,
    /// Time from the start of the check-out to holding the lock.
    pub waited: Duration,
}

/// Counters of acquisitions by kind, since the store was opened (shared by its clones).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LockStats {
    /// Acquired at the first attempt.
    pub immediate: u64,
    /// Acquired after queueing behind a thread of this process.
    pub local_queue: u64,
    /// Acquired after a release event.
    pub event: u64,
    /// Acquired at a poll.
    pub poll: u64,
    /// Check-outs that gave up with [`Error::LockTimeout`].
    pub timeouts: u64,
    /// Try-check-outs that found the session held ([`Error::Busy`]).
    pub busy: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    immediate: AtomicU64,
    local_queue: AtomicU64,
    event: AtomicU64,
    poll: AtomicU64,
    timeouts: AtomicU64,
    busy: AtomicU64,
}

impl Counters {
    pub fn acquired(&self, by: AcquiredBy) {
        let c = match by {
            AcquiredBy::Immediately => &self.immediate,
            AcquiredBy::LocalQueue => &self.local_queue,
            AcquiredBy::Event => &self.event,
            AcquiredBy::Poll => &self.poll,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub fn timed_out(&self) {
        self.timeouts.fetch_add(1, Ordering::Relaxed);
    }

    pub fn busy(&self) {
        self.busy.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> LockStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        LockStats {
            immediate: get(&self.immediate),
            local_queue: get(&self.local_queue),
            event: get(&self.event),
            poll: get(&self.poll),
            timeouts: get(&self.timeouts),
            busy: get(&self.busy),
        }
    }
}
