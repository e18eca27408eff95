//! Waiting for a holder in another process to release, in the kernel's own lock queue.
//!
//! **The kernel's queue.** A thread that must wait hands a duplicate of its lock file
//! descriptor (the same open file description, so the same lock) to a small helper thread,
//! which blocks in `flock(LOCK_EX)`; the waiter sleeps on a condition variable until the helper
//! reports the lock granted or the deadline passes. The kernel wakes blocked `flock` callers in
//! the order it queued them and only as many as can get the lock, so waiters in other processes
//! are served like the blocking-`flock` floor: no wake-up storm, no poll-interval tail, no
//! starved worker. A lock timeout is still exact, because the *caller* never blocks in `flock`.
//!
//! A waiter that gives up leaves its helper queued; the helper releases the lock at once if it
//! is granted later, and the next waiter of this process for the same session adopts the
//! still-queued helper instead of starting another, so a session held for a long time costs one
//! helper thread per process, not one per timed-out attempt.
//!
//! **The fallback.** If no helper thread can be started, the waiter polls on a
//! [`ReleaseWatch`](super::release_watch::ReleaseWatch) instead (see that module).
//!
//! Nothing here touches an uncontended check-out or the holder's release.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::flock;

/// How a wait in the kernel's queue ended.
pub(crate) enum Queued {
    /// The lock is held, through this descriptor (the helper's duplicate).
    Granted(File),
    /// The deadline passed first.
    TimedOut,
    /// The helper's `flock` failed.
    Failed(std::io::Error),
    /// No helper could be started (the caller falls back to polling).
    Unavailable(std::io::Error),
}

/// One helper's state, shared with its waiter.
struct Slot {
    state: Mutex<State>,
    changed: Condvar,
}

enum State {
    /// A waiter is waiting for the helper.
    Waiting,
    /// The helper holds the lock; the waiter takes the descriptor.
    Granted(File),
    Failed(std::io::Error),
    /// The waiter gave up; the helper releases the lock if it is granted, unless a later waiter
    /// adopts it first.
    Abandoned,
}

type QueuedTable = Arc<Mutex<HashMap<PathBuf, Arc<Slot>>>>;

/// A request for a helper: queue for this lock (through this duplicate descriptor) and report
/// to this slot.
struct Job {
    file: File,
    path: PathBuf,
    slot: Arc<Slot>,
}

/// Per-store helpers: those queued in the kernel, by lock file, and the idle ones.
pub(crate) struct KernelQueue {
    queued: QueuedTable,
    jobs: Sender<Job>,
    idle_jobs: Receiver<Job>,
    /// Helpers idle on `idle_jobs` minus jobs sent to them and not yet received.
    idle: Arc<AtomicUsize>,
    /// The process that owns the helpers. A child forked from it inherits the count of idle
    /// helpers but not the threads, so it starts a helper per wait instead.
    pid: u32,
}

/// How long an idle helper waits for another job before it ends.
const HELPER_IDLE: Duration = Duration::from_secs(10);

impl Default for KernelQueue {
    fn default() -> Self {
        let (jobs, idle_jobs) = crossbeam_channel::unbounded();
        Self {
            queued: Arc::default(),
            jobs,
            idle_jobs,
            idle: Arc::default(),
            pid: std::process::id(),
        }
    }
}

fn guard<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update of these tables is a single statement: they stay consistent on a panic.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl KernelQueue {
    /// Waits until `deadline` for the exclusive lock on `file` (open on `lock_path`), queued in
    /// the kernel by a helper thread. The caller has just failed a `try_lock` on it.
    pub fn wait(&self, file: &File, lock_path: &Path, deadline: Instant) -> Queued {
        let slot = match self.join_or_start(file, lock_path) {
            Ok(slot) => slot,
            Err(e) => return Queued::Unavailable(e),
        };
        let mut state = guard(&slot.state);
        loop {
            match std::mem::replace(&mut *state, State::Waiting) {
                State::Granted(file) => return Queued::Granted(file),
                State::Failed(e) => return Queued::Failed(e),
                State::Waiting | State::Abandoned => {}
            }
            let now = Instant::now();
            if now >= deadline {
                *state = State::Abandoned;
                return Queued::TimedOut;
            }
            state = slot
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Adopts the helper an earlier waiter left queued for this lock file, or hands the wait
    /// to an idle helper, or starts a new one.
    fn join_or_start(&self, file: &File, lock_path: &Path) -> std::io::Result<Arc<Slot>> {
        let mut queued = guard(&self.queued);
        if let Some(slot) = queued.get(lock_path) {
            // A helper leaves the table before it reports, so a listed one is still queued.
            let mut state = guard(&slot.state);
            if matches!(*state, State::Abandoned) {
                *state = State::Waiting;
                return Ok(Arc::clone(slot));
            }
        }
        let slot = Arc::new(Slot {
            state: Mutex::new(State::Waiting),
            changed: Condvar::new(),
        });
        let job = Job {
            file: file.try_clone()?,
            path: lock_path.to_path_buf(),
            slot: Arc::clone(&slot),
        };
        let claimed = self.pid == std::process::id()
            && self
                .idle
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                .is_ok();
        if claimed {
            // An idle helper is counted for this job; the channel never closes while we live.
            let _ = self.jobs.send(job);
        } else {
            let helper = Helper {
                queued: Arc::clone(&self.queued),
                jobs: self.idle_jobs.clone(),
                idle: Arc::clone(&self.idle),
            };
            std::thread::Builder::new()
                .name("sessiondir-wait".into())
                .stack_size(64 * 1024)
                .spawn(move || helper.run(job))?;
        }
        queued.insert(lock_path.to_path_buf(), Arc::clone(&slot));
        Ok(slot)
    }
}

/// A helper thread: queues in the kernel for one lock after the other.
struct Helper {
    queued: QueuedTable,
    jobs: Receiver<Job>,
    idle: Arc<AtomicUsize>,
}

impl Helper {
    fn run(self, first: Job) {
        let mut job = first;
        loop {
            self.queue_in_kernel(job);
            self.idle.fetch_add(1, Ordering::AcqRel);
            job = loop {
                match self.jobs.recv_timeout(HELPER_IDLE) {
                    Ok(job) => break job,
                    Err(RecvTimeoutError::Disconnected) => return,
                    Err(RecvTimeoutError::Timeout) => {
                        // Leave only if no job has been promised to an idle helper: while the
                        // count is zero, every idle helper (this one too) has a job coming.
                        let left = self
                            .idle
                            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                            .is_ok();
                        if left {
                            return;
                        }
                    }
                }
            };
        }
    }

    /// One blocking `flock`, then hand the lock over (or release it if nobody wants it any
    /// more).
    fn queue_in_kernel(&self, job: Job) {
        let Job { file, path, slot } = job;
        let result = flock::lock_blocking(&file);
        let mut queued = guard(&self.queued);
        if queued.get(&path).is_some_and(|s| Arc::ptr_eq(s, &slot)) {
            queued.remove(&path);
        }
        let mut state = guard(&slot.state);
        match (&*state, result) {
            (State::Waiting, Ok(())) => *state = State::Granted(file),
            (State::Waiting, Err(e)) => *state = State::Failed(e),
            // Nobody waits: let go at once (dropping the duplicate alone would not release the
            // lock while the waiter's own descriptor of the same file description is open).
            (_, Ok(())) => {
                let _ = flock::unlock(&file);
            }
            (_, Err(_)) => {}
        }
        drop(state);
        drop(queued);
        slot.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;

    fn open(path: &Path) -> File {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .unwrap()
    }

    /// Polls `cond` every millisecond for up to 10 s.
    fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
        let start = Instant::now();
        while !cond() {
            assert!(start.elapsed() < Duration::from_secs(10), "never: {what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_queued_wait_is_granted_when_the_holder_releases() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let holder = open(&path);
        assert!(flock::try_lock(&holder, &path).unwrap());
        let queue = Arc::new(KernelQueue::default());
        let waiter = open(&path);
        assert!(!flock::try_lock(&waiter, &path).unwrap());
        let (q, p) = (Arc::clone(&queue), path.clone());
        let t = std::thread::spawn(move || {
            match q.wait(&waiter, &p, Instant::now() + Duration::from_secs(10)) {
                Queued::Granted(held) => held,
                _ => panic!("not granted"),
            }
        });
        eventually("the helper is queued", || {
            guard(&queue.queued).contains_key(&path)
        });
        drop(holder);
        let held = t.join().unwrap();
        let third = open(&path);
        assert!(
            !flock::try_lock(&third, &path).unwrap(),
            "the granted descriptor holds the lock"
        );
        drop(held);
        assert!(flock::try_lock(&third, &path).unwrap(), "and releases it");
    }

    #[test]
    fn timed_out_waits_adopt_one_helper_which_lets_go_when_granted_late() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let holder = open(&path);
        assert!(flock::try_lock(&holder, &path).unwrap());
        let queue = KernelQueue::default();
        let mut first_slot = None;
        // The waiters keep their descriptors open, so only an explicit unlock by the helper
        // (not its closing the duplicate) can release the lock.
        let mut waiters = Vec::new();
        for _ in 0..5 {
            let waiter = open(&path);
            let start = Instant::now();
            let outcome = queue.wait(&waiter, &path, start + Duration::from_millis(30));
            assert!(matches!(outcome, Queued::TimedOut));
            assert!(start.elapsed() >= Duration::from_millis(30));
            let table = guard(&queue.queued);
            assert_eq!(table.len(), 1);
            let slot = Arc::clone(table.get(&path).unwrap());
            // Every later wait adopted the helper the first one left queued.
            let first = first_slot.get_or_insert_with(|| Arc::clone(&slot));
            assert!(Arc::ptr_eq(first, &slot));
            waiters.push(waiter);
        }
        // Nobody waits any more: once the holder lets go, the helper is granted the lock and
        // must release it at once.
        drop(holder);
        eventually("the abandoned helper is granted", || {
            guard(&queue.queued).is_empty()
        });
        // It leaves the table only after letting go (both under the table's mutex).
        let other = open(&path);
        assert!(
            flock::try_lock(&other, &path).unwrap(),
            "the abandoned helper released the lock"
        );
    }

    #[test]
    fn idle_helpers_are_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let queue = Arc::new(KernelQueue::default());
        for round in 0..3 {
            let holder = open(&path);
            assert!(flock::try_lock(&holder, &path).unwrap());
            let waiter = open(&path);
            let (q, p) = (Arc::clone(&queue), path.clone());
            let t = std::thread::spawn(move || {
                matches!(
                    q.wait(&waiter, &p, Instant::now() + Duration::from_secs(10)),
                    Queued::Granted(_)
                )
            });
            eventually("the helper is queued", || {
                guard(&queue.queued).contains_key(&path)
            });
            if round > 0 {
                assert_eq!(
                    queue.idle.load(Ordering::Acquire),
                    0,
                    "the idle helper took the job"
                );
            }
            drop(holder);
            assert!(t.join().unwrap());
            eventually("the helper goes idle", || {
                queue.idle.load(Ordering::Acquire) == 1
            });
        }
    }
}
