//! The fallback wait: a bounded poll woken early by the release's inotify event.
//!
//! If no helper thread can be started, the waiter polls: it watches the one
//! lock file it waits for with inotify (`IN_CLOSE_WRITE`, raised by the `close` that releases
//! the lock) and sleeps in `ppoll` on that watch with the poll interval as the timeout, trying
//! the lock after every wake-up. The watch is set up before the next attempt, so a release after
//! a failed attempt is never missed; without inotify it is plain polling.

use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::fs::inotify::{self, CreateFlags, WatchFlags};
use rustix::io::Errno;

use crate::error::Error;

/// How a [`ReleaseWatch::sleep`] ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Woken {
    /// The lock file was closed by a writer (a release, or another process giving up).
    Event,
    /// The timeout passed.
    Timeout,
}

/// One waiter's watch on one lock file; dropping it closes the inotify instance.
pub(crate) struct ReleaseWatch {
    /// `None`: watching failed; sleeping is plain sleeping.
    fd: Option<OwnedFd>,
}

impl ReleaseWatch {
    /// Starts watching `lock_path` for releases. If that fails, the watch still works (by
    /// sleeping only) and the error is returned for the observer. A lock file that vanished
    /// (its session is being deleted) is not an error: the next attempt finds out.
    pub fn new(lock_path: &Path) -> (Self, Option<Error>) {
        match watch(lock_path) {
            Ok(fd) => (Self { fd: Some(fd) }, None),
            Err(e) if e == Errno::NOENT => (Self { fd: None }, None),
            Err(e) => (
                Self { fd: None },
                Some(Error::io("watch lock file", lock_path, e.into())),
            ),
        }
    }

    /// Sleeps until a release event or `timeout`, whichever comes first, and consumes the
    /// queued events (several releases while awake count as one wake-up).
    pub fn sleep(&mut self, timeout: Duration) -> Woken {
        let Some(fd) = &self.fd else {
            std::thread::sleep(timeout);
            return Woken::Timeout;
        };
        let limit = Timespec::try_from(timeout).unwrap_or(Timespec {
            tv_sec: i64::MAX,
            tv_nsec: 0,
        });
        let mut fds = [PollFd::new(fd, PollFlags::IN)];
        match rustix::event::poll(&mut fds, Some(&limit)) {
            Ok(0) => Woken::Timeout,
            Ok(_) => {
                if drain(fd).is_err() {
                    // A broken instance would make every later poll return at once.
                    self.fd = None;
                }
                Woken::Event
            }
            // A signal: the caller tries the lock again and comes back.
            Err(Errno::INTR) => Woken::Timeout,
            Err(_) => {
                self.fd = None;
                Woken::Timeout
            }
        }
    }
}

fn watch(lock_path: &Path) -> Result<OwnedFd, Errno> {
    let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)?;
    inotify::add_watch(
        &fd,
        lock_path,
        WatchFlags::CLOSE_WRITE | WatchFlags::DONT_FOLLOW,
    )?;
    Ok(fd)
}

/// Reads every queued event. Only one kind of event on one file is watched, so their content
/// does not matter; a queue overflow is an event like any other (the caller tries the lock).
fn drain(fd: &OwnedFd) -> Result<(), Errno> {
    let mut buf = [MaybeUninit::<u8>::uninit(); 512];
    let mut reader = inotify::Reader::new(fd, &mut buf);
    loop {
        match reader.next() {
            Ok(_) => {}
            Err(Errno::AGAIN) => return Ok(()),
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_release_watch_wakes_on_a_release_and_times_out_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        // A write-only descriptor closing raises IN_CLOSE_WRITE as a release does.
        let holder = std::fs::File::create(&path).unwrap();
        let (mut watch, error) = ReleaseWatch::new(&path);
        assert!(error.is_none());
        assert_eq!(watch.sleep(Duration::from_millis(20)), Woken::Timeout);
        drop(holder); // a read-write descriptor closing: IN_CLOSE_WRITE
        assert_eq!(watch.sleep(Duration::from_secs(10)), Woken::Event);
        // The events were consumed: the next sleep times out again.
        assert_eq!(watch.sleep(Duration::from_millis(20)), Woken::Timeout);
    }
}
