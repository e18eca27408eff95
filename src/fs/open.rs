//! Safe opens of files inside the store: beneath the store's root and never through a symlink
//! ([`StorePath::open`]), never blocking on a FIFO, and with the store's meaning of each
//! failure (missing is `None`, a symlink is [`Error::UnsafePath`], a socket is corrupt).

use std::fs::File;
use std::os::fd::BorrowedFd;
use std::path::Path;

use rustix::fs::OFlags;

use super::beneath::{SYMLINK_REFUSED, StorePath};
use crate::error::{Corruption, Error};

/// Opens an existing file inside the store with the open `flags` (access mode included),
/// beneath the store's root and through no symlink (see [`super::beneath`]). `Ok(None)`: the
/// file does not exist. `op` is the verb reported in I/O errors.
pub(crate) fn open_existing(
    path: &StorePath,
    flags: OFlags,
    op: &'static str,
) -> Result<Option<File>, Error> {
    match path.open(flags, 0) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => Err(path.refused()),
        Err(e) => open_failed(e, path, op),
    }
}

/// Opens the session file `name` in the shard directory `dir` (whose path is `path`'s parent)
/// for a lock-free read, relative to the open directory: the walks of gc and listings open a
/// million files, and resolving each full path again is most of an open's cost. The errors are
/// those of [`open_existing`].
///
/// `noatime` asks for `O_NOATIME`: a walk reading every header must not turn each read into an
/// inode write (with `relatime`, the first read after a check-in updates the access time). Only
/// the file's owner may ask; `*noatime` is cleared on `EPERM` (a shared store) and the open
/// retried without it.
pub(crate) fn open_in_dir(
    dir: BorrowedFd<'_>,
    name: &str,
    path: &Path,
    noatime: &mut bool,
) -> Result<Option<File>, Error> {
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    loop {
        let extra = if *noatime {
            OFlags::NOATIME
        } else {
            OFlags::empty()
        };
        match rustix::fs::openat(dir, name, flags | extra, Mode::empty()) {
            Ok(fd) => return Ok(Some(File::from(fd))),
            Err(rustix::io::Errno::PERM) if *noatime => *noatime = false,
            Err(e) => return open_failed(e.into(), path, "open"),
        }
    }
}

/// The common meaning of a failed open of a file inside the store.
pub(crate) fn open_failed(
    e: std::io::Error,
    path: &Path,
    op: &'static str,
) -> Result<Option<File>, Error> {
    match e.raw_os_error() {
        Some(libc::ENOENT) => Ok(None),
        Some(libc::ELOOP) => Err(Error::UnsafePath {
            path: path.to_path_buf(),
            reason: SYMLINK_REFUSED,
        }),
        // A socket cannot be opened at all; it is no session (nor lock) file.
        Some(libc::ENXIO) => Err(Error::corrupt(path, Corruption::NotAFile)),
        _ => Err(Error::io(op, path, e)),
    }
}
