//! Iterating over a store's sessions, streaming, in constant memory.
//!
//! The walk opens `sessions/` and then each shard directory relative to it, never following a
//! symlink (`O_NOFOLLOW`: `sessions/` or a shard directory replaced by a symlink after open is
//! not followed, so nothing outside the store is listed or, by gc, deleted), and reads each
//! shard with `getdents64` (rustix's `Dir`), in shard order. It yields only regular files whose
//! names parse as session ids of that shard (temporary files and anything foreign are skipped).
//! Headers are read relative to the open shard directory (`openat`, `O_NOATIME`), so no path is
//! resolved twice and a read does not write the inode's access time. Nothing is collected:
//! memory is one directory buffer, whatever the number of sessions. Sessions created or deleted
//! during the walk may or may not be seen, as with any directory listing.

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags};
use rustix::io::Errno;

use super::handle::Store;
use super::layout::Layout;
use crate::error::Error;
use crate::format::{self, Header, Reads};
use crate::fs::netfs;
use crate::id::SessionId;
use crate::info::SessionInfo;

/// Iterator over the ids of all sessions on disk (expired ones included). See [`Store::ids`].
pub struct SessionIds {
    walk: Walk,
}

impl Iterator for SessionIds {
    type Item = Result<SessionId, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        self.walk.next_id()
    }
}

/// The walk over `sessions/<shard>/` (see the module docs), for ids, listings and gc.
pub(crate) struct Walk {
    layout: Layout,
    root: Root,
    next_shard: u32,
    shard: Option<Shard>,
    /// Whether header reads still ask for `O_NOATIME` (cleared in a shared store, see
    /// [`crate::fs::open::open_in_dir`]).
    noatime: bool,
}

/// `sessions/`: opened at the first step, closed after the last shard.
enum Root {
    Unopened,
    Open(OwnedFd),
    Done,
}

/// The shard directory being read.
struct Shard {
    index: u32,
    path: PathBuf,
    dir: Dir,
}

fn open_dir(dir: impl AsFd, name: impl rustix::path::Arg) -> Result<OwnedFd, Errno> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    rustix::fs::openat(dir, name, flags, Mode::empty())
}

impl Walk {
    pub(crate) fn new(layout: &Layout) -> Self {
        Walk {
            layout: layout.clone(),
            root: Root::Unopened,
            next_shard: 0,
            shard: None,
            noatime: true,
        }
    }

    /// The next session id, or an error naming the directory that could not be listed (the
    /// walk goes on with the next shard). The walk stays in the id's shard until the next
    /// call, for [`header`](Self::header).
    pub(crate) fn next_id(&mut self) -> Option<Result<SessionId, Error>> {
        if let Root::Unopened = self.root {
            let root = self.layout.sessions_root();
            self.root = Root::Done;
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW;
            match root.open(flags, 0) {
                Ok(file) => self.root = Root::Open(file.into()),
                // Replaced by a symlink or a file since open: not followed, nothing listed,
                // and said (gc and tidy report it as refused).
                Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)) => {
                    return Some(Err(refused(root)));
                }
                Err(e) => return Some(Err(Error::io("list", root, e))),
            }
        }
        loop {
            let Some(shard) = &mut self.shard else {
                let Root::Open(root) = &self.root else {
                    return None;
                };
                if self.next_shard == self.layout.fan_out() {
                    self.root = Root::Done;
                    return None;
                }
                let index = self.next_shard;
                self.next_shard += 1;
                let path = self.layout.session_dir(index);
                let opened = open_dir(root, self.layout.shard_name(index)).and_then(Dir::new);
                match opened {
                    Ok(dir) => {
                        let path = path.to_path_buf();
                        self.shard = Some(Shard { index, path, dir });
                    }
                    // Removed: no session of ours is there.
                    Err(Errno::NOENT) => {}
                    // Replaced by a symlink or a file: not followed, and said (gc and tidy
                    // report it as refused; a listing yields the error and goes on).
                    Err(Errno::LOOP | Errno::NOTDIR) => return Some(Err(refused(&path))),
                    Err(e) => return Some(Err(Error::io("list", &path, e.into()))),
                }
                continue;
            };
            let entry = match shard.dir.read() {
                Some(Ok(entry)) => entry,
                Some(Err(e)) => {
                    let path = std::mem::take(&mut shard.path);
                    self.shard = None;
                    return Some(Err(Error::io("list", &path, e.into())));
                }
                None => {
                    self.shard = None;
                    continue;
                }
            };
            let Some(id) = entry
                .file_name()
                .to_str()
                .ok()
                .and_then(|n| SessionId::parse(n).ok())
            else {
                continue;
            };
            // A file in the wrong shard is not reachable by its id: not a session of ours.
            if self.layout.shard_of(&id) != shard.index {
                continue;
            }
            let is_file = match entry.file_type() {
                FileType::RegularFile => true,
                // Some file systems do not report types in directory entries.
                FileType::Unknown => {
                    let fd = shard.dir.fd();
                    match fd.and_then(|fd| {
                        rustix::fs::statat(fd, id.as_str(), AtFlags::SYMLINK_NOFOLLOW)
                    }) {
                        Ok(st) => FileType::from_raw_mode(st.st_mode).is_file(),
                        // Deleted since it was listed.
                        Err(Errno::NOENT) => false,
                        Err(e) => {
                            let path = shard.path.join(id.as_str());
                            return Some(Err(Error::io("stat", &path, e.into())));
                        }
                    }
                }
                _ => false,
            };
            if is_file {
                return Some(Ok(id));
            }
        }
    }

    /// The header of `id`, the id [`next_id`](Self::next_id) returned last, read relative to
    /// its shard directory: a committed read (`crate::format::read`). `Ok(None)`: the session
    /// is gone.
    pub(crate) fn header(&mut self, id: &SessionId) -> Result<Option<Header>, Error> {
        let reads = self.layout.reads();
        self.header_with(id, reads)
    }

    /// The header of `id` as a hint, for gc, which judges every candidate again under its lock
    /// before removing anything: a plain read (3 calls instead of the committed read's 6). A
    /// read that races a check-in's swap may see an older version's header, or one whose writer
    /// died before its swap: that can only make gc lock a session it then keeps, or leave an
    /// expired one to the next pass. A header that does not verify (a spare being overwritten)
    /// is read again, committed, before it counts as damaged.
    pub(crate) fn header_hint(&mut self, id: &SessionId) -> Result<Option<Header>, Error> {
        match self.header_with(id, Reads::Plain) {
            Err(_) => self.header(id),
            read => read,
        }
    }

    fn header_with(&mut self, id: &SessionId, reads: Reads) -> Result<Option<Header>, Error> {
        let path = self.layout.data_path(id);
        match &self.shard {
            Some(shard) if shard.index == self.layout.shard_of(id) => {
                let dir = shard
                    .dir
                    .fd()
                    .map_err(|e| Error::io("list", &shard.path, e.into()))?;
                match format::read_header_in(dir, id.as_str(), &path, &mut self.noatime, reads) {
                    // The shard directory's own handle may be the stale one (NFS: recreated
                    // by another host); a fresh lookup of the whole path gets past it.
                    Err(e) if netfs::is_stale(&e) => {
                        format::read_header(&path, reads, format::Activity::Honour)
                    }
                    other => other,
                }
            }
            _ => format::read_header(&path, reads, format::Activity::Honour),
        }
    }
}

/// The error for a directory of the walk that is not a real directory any more.
fn refused(path: &std::path::Path) -> Error {
    Error::UnsafePath {
        path: path.to_path_buf(),
        reason: crate::fs::beneath::SYMLINK_REFUSED,
    }
}

impl Store {
    /// All session ids on disk, expired ones included, streaming in constant memory.
    pub fn ids(&self) -> SessionIds {
        SessionIds {
            walk: Walk::new(&self.shared.layout),
        }
    }

    /// Every session's header, streaming (expired ones included; see
    /// [`SessionInfo::is_expired`]). A damaged file yields an error naming it and the walk
    /// goes on.
    pub fn sessions(&self) -> impl Iterator<Item = Result<SessionInfo, Error>> + '_ {
        let mut walk = Walk::new(&self.shared.layout);
        std::iter::from_fn(move || {
            loop {
                let id = match walk.next_id()? {
                    Ok(id) => id,
                    Err(e) => return Some(Err(e)),
                };
                match walk.header(&id) {
                    Ok(Some(h)) => return Some(Ok(SessionInfo::from_header(id, &h))),
                    // Deleted since it was listed.
                    Ok(None) => {}
                    Err(e) => return Some(Err(e)),
                }
            }
        })
    }
}
