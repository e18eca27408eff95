//! Waking waiters in other processes: file-change events on lock directories, through `notify`.
//!
//! A holder releases a session by closing its lock file, which it opened read-write; the kernel
//! raises `IN_CLOSE_WRITE` for that file on every inotify watch of its directory. A process in
//! which some thread waits for a session in shard `s` watches `locks/<s>/`, and the watcher
//! thread that `notify` runs wakes exactly the waiters registered for the closed (or deleted)
//! lock file. Nothing is added to the holder's path: the event comes from the `close` that
//! releases the lock anyway.
//!
//! Watches are set up lazily, at the first wait in a shard, and kept until the store is closed:
//! a process that never waits never starts the watcher thread. If watching is impossible (the
//! inotify limits are reached, or the file system does not support it), waiters fall back to
//! polling, which the wait loop does anyway as a bounded fallback against lost events.
//!
//! To not lose a wake-up, a waiter registers here *before* its next `try_lock`: a release that
//! happens after that attempt failed is then guaranteed to find the registration.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crossbeam_channel::{Receiver, Sender};
use notify::event::{AccessKind, AccessMode, EventKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};

use crate::error::Error;

type Interest = HashMap<PathBuf, Vec<(u64, Sender<()>)>>;

/// Per-store registry of waiters and the lazily started watcher.
#[derive(Default)]
pub(crate) struct WakeHub {
    interest: Arc<Mutex<Interest>>,
    watcher: Mutex<WatcherState>,
    next_token: AtomicU64,
}

#[derive(Default)]
struct WatcherState {
    watcher: Option<RecommendedWatcher>,
    watched: HashSet<PathBuf>,
    /// Set once watching failed; waiters then only poll.
    failed: bool,
    /// The process that started the watcher. After `fork`, the child inherits this state but
    /// not notify's thread, and must not talk to it.
    pid: u32,
}

/// A waiter's registration; dropping it unregisters.
pub(crate) struct Registration<'a> {
    hub: &'a WakeHub,
    path: PathBuf,
    token: u64,
    rx: Receiver<()>,
}

impl Registration<'_> {
    pub fn receiver(&self) -> &Receiver<()> {
        &self.rx
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let mut interest = lock(&self.hub.interest);
        if let Some(list) = interest.get_mut(&self.path) {
            list.retain(|(t, _)| *t != self.token);
            if list.is_empty() {
                interest.remove(&self.path);
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl WakeHub {
    /// Registers interest in releases of `lock_path` and makes sure its directory is watched.
    /// Returns the registration and, if watching failed for the first time, the error (for the
    /// observer); the registration works either way (it is then woken by polling only).
    pub fn register(&self, lock_path: &Path) -> (Registration<'_>, Option<Error>) {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        lock(&self.interest)
            .entry(lock_path.to_path_buf())
            .or_default()
            .push((token, tx));
        let registration = Registration {
            hub: self,
            path: lock_path.to_path_buf(),
            token,
            rx,
        };
        let error = lock_path.parent().and_then(|dir| self.watch(dir).err());
        (registration, error)
    }

    fn watch(&self, dir: &Path) -> Result<(), Error> {
        let mut state = lock(&self.watcher);
        let pid = std::process::id();
        if state.pid != pid {
            // First use, or a forked child: a watcher inherited from the parent has no thread
            // here, and dropping or using it would wait for that thread for ever. Leak it.
            if let Some(inherited) = state.watcher.take() {
                std::mem::forget(inherited);
            }
            *state = WatcherState {
                pid,
                ..WatcherState::default()
            };
        }
        if state.failed || state.watched.contains(dir) {
            return Ok(());
        }
        if state.watcher.is_none() {
            let interest = Arc::clone(&self.interest);
            let config = notify::Config::default().with_follow_symlinks(false);
            match RecommendedWatcher::new(move |event| deliver(&interest, event), config) {
                Ok(w) => state.watcher = Some(w),
                Err(e) => {
                    state.failed = true;
                    return Err(Error::io("start watching", dir, io_error(e)));
                }
            }
        }
        let Some(watcher) = state.watcher.as_mut() else {
            return Ok(());
        };
        match watcher.watch(dir, RecursiveMode::NonRecursive) {
            Ok(()) => {
                state.watched.insert(dir.to_path_buf());
                Ok(())
            }
            Err(e) => {
                state.failed = true;
                Err(Error::io("watch", dir, io_error(e)))
            }
        }
    }

    /// Stops the watcher thread and forgets all watches (a later wait starts it again).
    pub fn shutdown(&self) {
        let mut state = lock(&self.watcher);
        if state.pid != std::process::id()
            && let Some(inherited) = state.watcher.take()
        {
            std::mem::forget(inherited); // see `watch`: not ours to stop after a fork
        }
        state.watcher = None;
        state.watched.clear();
    }
}

/// notify's error as an `io::Error`, keeping the OS error (and its kind) when there is one,
/// e.g. `ENOSPC` for the inotify watch limit.
pub(crate) fn io_error(e: notify::Error) -> std::io::Error {
    match e.kind {
        notify::ErrorKind::Io(io) => io,
        other => std::io::Error::other(format!("{other:?}")),
    }
}

/// Runs on notify's thread: wakes the waiters of every lock file that was closed after writing
/// (a release) or removed (a delete). Other events — opens by other waiters — are ignored.
/// When the kernel dropped events (queue overflow) or the backend errs, everybody is woken.
fn deliver(interest: &Mutex<Interest>, event: notify::Result<notify::Event>) {
    let interest = lock(interest);
    let wake_all = |interest: &Interest| {
        for list in interest.values() {
            for (_, tx) in list {
                let _ = tx.try_send(());
            }
        }
    };
    let event = match event {
        Ok(event) => event,
        Err(_) => return wake_all(&interest),
    };
    if event.need_rescan() {
        return wake_all(&interest);
    }
    let relevant = matches!(
        event.kind,
        EventKind::Access(AccessKind::Close(AccessMode::Write)) | EventKind::Remove(_)
    );
    if !relevant {
        return;
    }
    for path in &event.paths {
        if let Some(list) = interest.get(path) {
            for (_, tx) in list {
                // A full channel already holds a pending wake-up: nothing is lost.
                let _ = tx.try_send(());
            }
        }
    }
}
