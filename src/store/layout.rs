//! Where everything lives inside a store directory, and how that directory is created safely.
//!
//! ```text
//! <root>/                          0700 (derived from the file mode)
//!   sessiondir.store               marker: layout version and shard fan-out
//!   sessions/<shard>/<id>          session files (header + payload)
//!   sessions/<shard>/.<id>.<r>.tmp temporary files of writers, renamed over <id>
//!   locks/<shard>/<id>             lock files: no content (length 1: somebody waits), flock(2)ed
//! ```
//!
//! `<shard>` is the id's shard index in lower-case hex, zero-padded to the width of the largest
//! index. Lock files live in their own tree so that the directories waiters watch for release
//! events carry lock traffic only, not every read and write of session data.
//!
//! The fan-out is fixed when the store is created and recorded in the marker: two processes
//! that computed different shards for one id would lock different files.

use std::fs::{self, DirBuilder};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::Path;
use std::sync::Arc;

use super::config::Config;
use crate::error::Error;
use crate::format::Reads;
use crate::fs::atomic::{self, Target};
use crate::fs::beneath::{Root, StorePath};
use crate::fs::netfs::{self, FileSystem};
use crate::fs::open::open_existing;
use crate::id::SessionId;

const MARKER: &str = "sessiondir.store";
const LAYOUT_VERSION: u32 = 1;
const DEFAULT_FAN_OUT: u32 = 256;
const MAX_FAN_OUT: u32 = 4096;

/// Paths of one store.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    /// The root directory, open: every request's path resolves beneath it (`crate::fs::beneath`).
    root: Arc<Root>,
    sessions: StorePath,
    locks: StorePath,
    fan_out: u32,
    width: usize,
    file_system: FileSystem,
}

impl Layout {
    /// Opens (creating if needed) the store directory at `dir` and checks everything in it
    /// that the store will walk into.
    pub fn open(dir: &Path, config: &Config) -> Result<Self, Error> {
        if let Some(n) = config.fan_out
            && !(1..=MAX_FAN_OUT).contains(&n)
        {
            return Err(Error::Config {
                path: dir.to_path_buf(),
                reason: format!("fan-out {n} is outside 1..={MAX_FAN_OUT}"),
            });
        }
        // Absolute, so that paths reported by file-change events compare equal to ours.
        let root = std::path::absolute(dir).map_err(|e| Error::io("resolve", dir, e))?;
        if !config.create_if_missing && fs::symlink_metadata(root.join(MARKER)).is_err() {
            return Err(Error::Config {
                path: root,
                reason: format!("no sessiondir store here ({MARKER} is missing)"),
            });
        }
        let dir_mode = config.dir_mode();
        make_dir(&root, dir_mode, true)?;
        check_dir(&root, config, Symlink::Follow)?;
        let file_system = netfs::file_system(&root)?;
        if file_system.shared && !config.allow_network_fs {
            return Err(Error::UnsupportedFileSystem {
                path: root,
                file_system: file_system.name,
            });
        }
        let root = Root::open(&root).map_err(|e| Error::io("open", &root, e))?;
        let fan_out = read_or_write_marker(&Root::join(&root, MARKER), config)?;
        let width = format!("{:x}", fan_out - 1).len();
        let layout = Layout {
            sessions: Root::join(&root, "sessions"),
            locks: Root::join(&root, "locks"),
            root,
            fan_out,
            width,
            file_system,
        };
        for top in [&layout.sessions, &layout.locks] {
            make_dir(top, dir_mode, false)?;
            check_dir(top, config, Symlink::Refuse)?;
        }
        for shard in 0..fan_out {
            for dir in [layout.session_dir(shard), layout.lock_dir(shard)] {
                make_dir(&dir, dir_mode, false)?;
                check_dir(&dir, config, Symlink::Refuse)?;
            }
        }
        Ok(layout)
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    pub fn file_system(&self) -> FileSystem {
        self.file_system
    }

    /// A full path inside the store (reported by file-change events) as a [`StorePath`].
    pub fn beneath(&self, full: &Path) -> Option<StorePath> {
        Root::beneath(&self.root, full)
    }

    pub fn sessions_root(&self) -> &StorePath {
        &self.sessions
    }

    pub fn fan_out(&self) -> u32 {
        self.fan_out
    }

    pub fn shard_name(&self, shard: u32) -> String {
        format!("{:0w$x}", shard, w = self.width)
    }

    pub fn session_dir(&self, shard: u32) -> StorePath {
        self.sessions.join(self.shard_name(shard))
    }

    pub fn lock_dir(&self, shard: u32) -> StorePath {
        self.locks.join(self.shard_name(shard))
    }

    pub fn shard_of(&self, id: &SessionId) -> u32 {
        id.shard(self.fan_out)
    }

    pub fn data_path(&self, id: &SessionId) -> StorePath {
        self.session_dir(self.shard_of(id)).join(id.as_str())
    }

    /// How lock-free readers of this store read: committed reads wherever a check-in may swap
    /// spares (every local file system; another handle of the directory may reuse inodes even
    /// if this one does not), plain ones on network and FUSE file systems, where none does.
    pub fn reads(&self) -> Reads {
        if self.file_system.shared {
            Reads::Plain
        } else {
            Reads::Pinned
        }
    }

    /// Where `id`'s spare file lives: next to its session file (same directory, so the two can
    /// be swapped atomically), hidden (`.<id>.spare`) so no listing takes it for a session.
    pub fn spare_path(&self, id: &SessionId) -> StorePath {
        self.session_dir(self.shard_of(id))
            .join(crate::fs::atomic::spare_name(id))
    }

    pub fn lock_path(&self, id: &SessionId) -> StorePath {
        self.lock_dir(self.shard_of(id)).join(id.as_str())
    }

    /// Checks again, as [`open`](Self::open) did, the four directories on the paths of shard
    /// `shard` (sessions/, locks/ and the two shard directories): real directories, not
    /// symlinks, not writable by others. Four `lstat`s. For the passes that walk the whole
    /// store and remove files (tidy, gc): a directory replaced by a symlink after open would
    /// lead them to remove files outside the store (tests/it/hostile/). A replacement
    /// between this check and a removal is not caught: only the owner can make one.
    pub fn recheck_shard(&self, shard: u32, config: &Config) -> Result<(), Error> {
        for dir in [
            &self.sessions,
            &self.session_dir(shard),
            &self.locks,
            &self.lock_dir(shard),
        ] {
            check_dir(dir, config, Symlink::Refuse)?;
        }
        Ok(())
    }
}

fn make_dir(path: &Path, mode: u32, recursive: bool) -> Result<(), Error> {
    match DirBuilder::new()
        .mode(mode)
        .recursive(recursive)
        .create(path)
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::io("create directory", path, e)),
    }
}

/// Whether a directory may be reached through a symlink: only the root the user named.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Symlink {
    Follow,
    Refuse,
}

/// A directory the store uses must be a real directory (not a symlink, except the root the
/// user named) that no one but its owner (and, if allowed, its group) may write to.
fn check_dir(path: &Path, config: &Config, symlink: Symlink) -> Result<(), Error> {
    let meta = fs::symlink_metadata(path).map_err(|e| Error::io("inspect", path, e))?;
    let meta = match (meta.file_type().is_symlink(), symlink) {
        (false, _) => meta,
        (true, Symlink::Follow) => fs::metadata(path).map_err(|e| Error::io("inspect", path, e))?,
        (true, Symlink::Refuse) => {
            return Err(Error::UnsafePath {
                path: path.to_path_buf(),
                reason: "a symlink inside the store (symlinks are never followed)",
            });
        }
    };
    if !meta.is_dir() {
        return Err(Error::UnsafePath {
            path: path.to_path_buf(),
            reason: "not a directory",
        });
    }
    let writable_by_others = meta.mode() & 0o002 != 0;
    let writable_by_group = meta.mode() & 0o020 != 0 && config.file_mode & 0o020 == 0;
    if (writable_by_others || writable_by_group) && !config.allow_shared_dir {
        return Err(Error::UnsafePath {
            path: path.to_path_buf(),
            reason: "other users may write to this directory and so replace or delete any \
                     session (use allow_shared_dir to accept that)",
        });
    }
    // Whatever its mode, the owner of a directory may chmod it and write to it: one owned by
    // another user is as open to them as a world-writable one. (Root may write anywhere
    // anyway, so a root-owned directory adds no risk.)
    let owner = meta.uid();
    if owner != 0 && owner != rustix::process::geteuid().as_raw() && !config.allow_shared_dir {
        return Err(Error::UnsafePath {
            path: path.to_path_buf(),
            reason: "another user owns this directory and so may replace or delete any \
                     session (use allow_shared_dir to accept that)",
        });
    }
    Ok(())
}

fn read_or_write_marker(path: &StorePath, config: &Config) -> Result<u32, Error> {
    loop {
        match read_marker(path) {
            Ok(Some(text)) => {
                let stored = parse_marker(path, &text)?;
                if let Some(asked) = config.fan_out
                    && asked != stored
                {
                    return Err(Error::Config {
                        path: path.to_path_buf(),
                        reason: format!(
                            "the store was created with fan-out {stored}; {asked} was asked for"
                        ),
                    });
                }
                return Ok(stored);
            }
            Ok(None) => {}
            Err(e) => return Err(e),
        }
        // First opener: write the marker atomically, without clobbering a concurrent opener's.
        let fan_out = config.fan_out.unwrap_or(DEFAULT_FAN_OUT);
        let text = format!("sessiondir store\nlayout {LAYOUT_VERSION}\nfan-out {fan_out}\n");
        let written = atomic::write(
            path,
            Target::MustNotExist,
            ".sessiondir.store.",
            text.as_bytes(),
            config.file_mode,
            config.durability,
            || Ok(()),
        );
        match written.map_err(atomic::Failure::into_error) {
            Ok(()) => return Ok(fan_out),
            Err(Error::Io { source, .. }) if source.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Reads the marker without following a symlink, blocking on a FIFO or reading without bound.
fn read_marker(path: &StorePath) -> Result<Option<String>, Error> {
    use std::io::Read;
    let flags = rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::NONBLOCK;
    let Some(file) = open_existing(path, flags, "open")? else {
        return Ok(None);
    };
    let mut text = String::new();
    file.take(4096)
        .read_to_string(&mut text)
        .map_err(|e| Error::io("read", path, e))?;
    Ok(Some(text))
}

fn parse_marker(path: &Path, text: &str) -> Result<u32, Error> {
    let bad = |reason: String| Error::Config {
        path: path.to_path_buf(),
        reason,
    };
    let mut lines = text.lines();
    if lines.next() != Some("sessiondir store") {
        return Err(bad("not a sessiondir store marker".into()));
    }
    let mut layout = None;
    let mut fan_out = None;
    for line in lines {
        match line.split_once(' ') {
            Some(("layout", v)) => layout = v.parse::<u32>().ok(),
            Some(("fan-out", v)) => fan_out = v.parse::<u32>().ok(),
            _ => {}
        }
    }
    match (layout, fan_out) {
        (Some(LAYOUT_VERSION), Some(n)) if (1..=MAX_FAN_OUT).contains(&n) => Ok(n),
        (Some(v), _) if v != LAYOUT_VERSION => Err(bad(format!(
            "layout version {v}; this sessiondir knows version {LAYOUT_VERSION}"
        ))),
        _ => Err(bad(
            "the marker has no valid layout and fan-out lines".into()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_mode_follows_file_mode() {
        let mut c = Config::default();
        assert_eq!(c.dir_mode(), 0o700);
        c.file_mode = 0o640;
        assert_eq!(c.dir_mode(), 0o750);
    }
}
