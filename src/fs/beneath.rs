//! Paths that resolve beneath the store's root and never through a symlink.
//!
//! A store is opened once and then used for a long time; in between, anyone who may write to
//! its directories could replace `sessions/<shard>` or `locks/<shard>` by a symlink to a
//! directory outside the store. A path like `<root>/sessions/0a/<id>`, opened as a whole,
//! would follow it: a read would return outside data, a check-in would create, overwrite and
//! rename files out there, a delete would unlink them. So every open, create, rename and
//! unlink a request makes goes through a [`StorePath`]: the store root's directory, opened
//! once when the store opens (the one symlink that is allowed: the root the user named), and
//! the path relative to it. Opens use `openat2(2)` with `RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS` (Linux 5.6): a symlink anywhere below the root fails the open with
//! `ELOOP`, which the store reports as [`Error::UnsafePath`](crate::Error::UnsafePath).
//! Renames and unlinks act relative to the parent directory, opened that way first
//! ([`StorePath::open_parent`]), so the directory that is checked is the one that is changed.
//!
//! On kernels without `openat2` (or under a sandbox that refuses it, detected once when the
//! store opens) each component is opened in turn with `openat(O_NOFOLLOW | O_DIRECTORY)`:
//! the same guarantee, one `openat` and one `close` more per directory level.
//!
//! One call is left resolving through the root: [`StorePath::identity`], the `lstat` a
//! committed read makes to check that the inode it read (opened beneath the root) is still the
//! one at the path. It opens nothing and changes nothing; a planted symlink can only make it
//! see another inode (the read looks again, and the next open refuses the symlink) or the very
//! inode it read (which is then the store's own file).

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::ops::Deref;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// Why a path through a symlink inside the store is refused.
pub(crate) const SYMLINK_REFUSED: &str = "a symlink inside the store (symlinks are never \
     followed; if it is not the store's, remove it and look at what it pointed to)";

/// The store's root directory, open for resolving paths beneath it.
#[derive(Debug)]
pub(crate) struct Root {
    dir: OwnedFd,
    path: PathBuf,
    /// Whether `openat2` works here (probed once at open).
    openat2: bool,
}

impl Root {
    /// Opens the directory at `path` (following a symlink: the root is what the user named).
    pub(crate) fn open(path: &Path) -> io::Result<Arc<Root>> {
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let dir = rustix::fs::open(path, flags, Mode::empty())?;
        let openat2 = match rustix::fs::openat2(&dir, ".", flags, Mode::empty(), resolve()) {
            Ok(_) => true,
            // No openat2 (before Linux 5.6), or a sandbox refusing it.
            Err(Errno::NOSYS | Errno::PERM | Errno::INVAL | Errno::TOOBIG) => false,
            Err(e) => return Err(e.into()),
        };
        Ok(Arc::new(Root {
            dir,
            path: path.to_path_buf(),
            openat2,
        }))
    }

    /// Like [`open`](Self::open), resolving component by component as on a kernel without
    /// `openat2` (for the tests of that fallback).
    #[cfg(test)]
    pub(crate) fn open_without_openat2(path: &Path) -> io::Result<Arc<Root>> {
        let root = Root::open(path)?;
        let dir = root.dir.try_clone()?;
        Ok(Arc::new(Root {
            dir,
            path: root.path.clone(),
            openat2: false,
        }))
    }

    /// The root's path, as the user named it (made absolute).
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether opens use `openat2` (false: component by component).
    #[cfg(test)]
    pub(crate) fn has_openat2(&self) -> bool {
        self.openat2
    }

    /// `rel` (plain names only, no `..`) beneath `root`.
    pub(crate) fn join(root: &Arc<Root>, rel: impl AsRef<Path>) -> StorePath {
        StorePath {
            full: root.path.join(rel),
            root: Arc::clone(root),
        }
    }

    /// The full path `full` as a path beneath `root`, if it is one (paths reported by
    /// file-change events).
    pub(crate) fn beneath(root: &Arc<Root>, full: &Path) -> Option<StorePath> {
        let rel = full.strip_prefix(&root.path).ok()?;
        rel.components()
            .all(|c| matches!(c, Component::Normal(_)))
            .then(|| Root::join(root, rel))
    }

    /// Opens `rel` beneath the root with `flags`, never through a symlink.
    fn open_rel(&self, rel: &Path, flags: OFlags, mode: Mode) -> Result<OwnedFd, Errno> {
        let flags = flags | OFlags::CLOEXEC;
        let rel = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        if self.openat2 {
            // RESOLVE_NO_SYMLINKS refuses a symlink in the last component too (ELOOP); with
            // O_NOFOLLOW | O_DIRECTORY the kernel would say ENOTDIR instead.
            let flags = flags.difference(OFlags::NOFOLLOW);
            return rustix::fs::openat2(&self.dir, rel, flags, mode, resolve());
        }
        // Component by component: every directory opened O_NOFOLLOW relative to the last.
        let mut names = rel.components().peekable();
        let mut dir: Option<OwnedFd> = None;
        while let Some(name) = names.next() {
            let name = match name {
                Component::Normal(name) => name,
                Component::CurDir => OsStr::new("."),
                // Never built by the store: refuse, as openat2 would.
                _ => return Err(Errno::XDEV),
            };
            let at = dir.as_ref().map_or(self.dir.as_fd(), |d| d.as_fd());
            // O_DIRECTORY|O_NOFOLLOW on a symlink is ENOTDIR; tell it as openat2 does.
            let symlink_is_loop = |e| match e {
                Errno::NOTDIR if is_symlink(at, name) => Errno::LOOP,
                e => e,
            };
            if names.peek().is_none() {
                return rustix::fs::openat(at, name, flags | OFlags::NOFOLLOW, mode)
                    .map_err(symlink_is_loop);
            }
            // O_RDONLY, not O_PATH: O_PATH|O_NOFOLLOW would open a symlink itself.
            let step = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let opened = rustix::fs::openat(at, name, step, Mode::empty());
            dir = Some(opened.map_err(symlink_is_loop)?);
        }
        Err(Errno::NOENT) // unreachable: `rel` has at least one component
    }
}

fn is_symlink(dir: BorrowedFd<'_>, name: &OsStr) -> bool {
    rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|st| rustix::fs::FileType::from_raw_mode(st.st_mode).is_symlink())
}

fn resolve() -> ResolveFlags {
    ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS
}

/// A path inside the store: the open root and the path beneath it. Dereferences to the full
/// path, for messages (errors name the path the user knows).
#[derive(Debug, Clone)]
pub(crate) struct StorePath {
    root: Arc<Root>,
    full: PathBuf,
}

impl Deref for StorePath {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.full
    }
}

impl AsRef<Path> for StorePath {
    fn as_ref(&self) -> &Path {
        &self.full
    }
}

/// A parent directory opened beneath the root, and the last component's name in it.
pub(crate) struct Parent<'a> {
    pub dir: OwnedFd,
    pub name: &'a OsStr,
}

impl StorePath {
    /// `path` beneath its own directory, opened as the root: for files outside any store
    /// (`doctor`'s probe files), which then go through the same primitives.
    #[cfg(feature = "doctor")]
    pub(crate) fn in_own_dir(path: &Path) -> io::Result<StorePath> {
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        };
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        Ok(Root::join(&Root::open(dir)?, name))
    }

    /// The path relative to the root.
    fn rel(&self) -> &Path {
        // Built by `Root::join`/`StorePath::join` from the root's own path: always beneath it.
        self.full
            .strip_prefix(&self.root.path)
            .unwrap_or(Path::new(""))
    }

    /// `name` inside this directory.
    pub(crate) fn join(&self, name: impl AsRef<Path>) -> StorePath {
        StorePath {
            root: Arc::clone(&self.root),
            full: self.full.join(name),
        }
    }

    /// The directory this path is in (the root for a path directly beneath it).
    pub(crate) fn parent(&self) -> StorePath {
        let full = match self.full.parent() {
            Some(p) if p.starts_with(&self.root.path) => p.to_path_buf(),
            _ => self.root.path.clone(),
        };
        StorePath {
            root: Arc::clone(&self.root),
            full,
        }
    }

    /// The last component.
    pub(crate) fn name(&self) -> &OsStr {
        self.full.file_name().unwrap_or(OsStr::new("."))
    }

    /// Opens the file (or directory) with `flags` and `mode` (for `O_CREAT`), beneath the
    /// root and through no symlink: one `openat2`.
    pub(crate) fn open(&self, flags: OFlags, mode: u32) -> io::Result<File> {
        self.root
            .open_rel(self.rel(), flags, Mode::from_raw_mode(mode))
            .map(File::from)
            .map_err(io::Error::from)
    }

    /// Opens the directory this path is in (read-only, so that it can be `fsync`ed), for the
    /// `*at` calls that rename, unlink or create the last component.
    pub(crate) fn open_parent(&self) -> io::Result<Parent<'_>> {
        let parent = self.rel().parent().unwrap_or(Path::new(""));
        let dir = self
            .root
            .open_rel(
                parent,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW,
                Mode::empty(),
            )
            .map_err(io::Error::from)?;
        Ok(Parent {
            dir,
            name: self.name(),
        })
    }

    /// The error for an open of this path refused with `ELOOP` (or `ENOTDIR`): the path of
    /// the first component below the root that is a symlink or no directory (what an operator
    /// must look at), or this path itself if none is any more.
    pub(crate) fn refused(&self) -> crate::error::Error {
        let mut at = self.root.path.clone();
        let mut culprit = None;
        for name in self.rel().components() {
            at.push(name);
            match std::fs::symlink_metadata(&at) {
                Ok(m) if m.file_type().is_symlink() => {
                    culprit = Some((at.clone(), SYMLINK_REFUSED));
                    break;
                }
                Ok(m) if !m.is_dir() && at != self.full => {
                    culprit = Some((at.clone(), "not a directory"));
                    break;
                }
                _ => {}
            }
        }
        let (path, reason) = culprit.unwrap_or((self.full.clone(), SYMLINK_REFUSED));
        crate::error::Error::UnsafePath { path, reason }
    }

    /// `lstat` of the path, its directory opened beneath the root first: exact, for the passes
    /// that decide to remove something from what they see (two calls more than a plain
    /// `lstat`).
    pub(crate) fn lstat(&self) -> io::Result<rustix::fs::Stat> {
        let parent = self.open_parent()?;
        rustix::fs::statat(&parent.dir, parent.name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(io::Error::from)
    }

    /// `(st_dev, st_ino)` of what the path names, not following a symlink in the last
    /// component; intermediate ones are resolved from the root (one call: see the module docs
    /// for why a committed read's identity check may).
    pub(crate) fn identity(&self) -> io::Result<(u64, u64)> {
        let rel = self.rel();
        let rel = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        rustix::fs::statat(&self.root.dir, rel, AtFlags::SYMLINK_NOFOLLOW)
            .map(|st| (st.st_dev, st.st_ino))
            .map_err(io::Error::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn both(dir: &Path) -> [Arc<Root>; 2] {
        [
            Root::open(dir).unwrap(),
            Root::open_without_openat2(dir).unwrap(),
        ]
    }

    #[test]
    fn opens_beneath_and_refuses_every_symlink() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("sessions/0")).unwrap();
        std::fs::write(tmp.path().join("sessions/0/a"), b"inside").unwrap();
        std::fs::write(outside.path().join("a"), b"outside").unwrap();
        symlink(outside.path(), tmp.path().join("sessions/1")).unwrap();
        symlink(outside.path().join("a"), tmp.path().join("sessions/0/b")).unwrap();
        for root in both(tmp.path()) {
            let ok = Root::join(&root, "sessions/0/a");
            let text = std::io::read_to_string(ok.open(OFlags::RDONLY, 0).unwrap()).unwrap();
            assert_eq!(text, "inside");
            for through in ["sessions/1/a", "sessions/0/b"] {
                let e = Root::join(&root, through)
                    .open(OFlags::RDONLY, 0)
                    .unwrap_err();
                assert_eq!(e.raw_os_error(), Some(libc::ELOOP), "{through}");
                let e = Root::join(&root, through).open_parent().and_then(|p| {
                    rustix::fs::statat(&p.dir, p.name, AtFlags::empty()).map_err(Into::into)
                });
                if through == "sessions/1/a" {
                    assert_eq!(e.unwrap_err().raw_os_error(), Some(libc::ELOOP));
                }
            }
            let missing = Root::join(&root, "sessions/0/none").open(OFlags::RDONLY, 0);
            assert_eq!(missing.unwrap_err().raw_os_error(), Some(libc::ENOENT));
        }
    }

    #[test]
    fn the_machine_has_openat2() {
        // The fallback is tested above; this says which path the other tests exercise.
        let tmp = tempfile::tempdir().unwrap();
        assert!(Root::open(tmp.path()).unwrap().has_openat2());
    }
}
