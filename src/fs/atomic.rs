//! Atomic replacement and removal of files: the only place that renames or unlinks.
//!
//! A write creates `.<id>.<random>.tmp` in the session's own shard directory (same directory,
//! so same file system, so `rename(2)` is atomic), writes the whole file with one `write`,
//! optionally `fdatasync`s it, renames it over the session file, and optionally `fsync`s the
//! directory — exactly the steps [`Durability`] lists. Readers open the path and get either the
//! old inode or the new one, complete: never a partial file. If anything fails before the
//! rename, the temporary file is removed and the old version is untouched.
//!
//! Every call here acts relative to the directory of the file it changes, opened beneath the
//! store's root through no symlink first ([`StorePath::open_parent`], `super::beneath`): a
//! shard directory replaced by a symlink is refused, never followed out of the store. That is
//! also why the temporary file is not tempfile's: tempfile creates and renames by path.
//!
//! A check-in can instead reuse inodes ([`exchange_in`]): it overwrites the session's spare
//! file `.<id>.spare` in place and swaps it with the live file by
//! `renameat2(RENAME_EXCHANGE)`, so the old version becomes the next spare and no inode is
//! created or freed. Readers and writers of spares are kept apart by pins (`super::pin`).
//!
//! `clippy.toml` forbids `std::fs::rename`, `std::fs::remove_file` and tempfile's `persist`
//! everywhere else (rustix's `renameat`/`unlinkat` are used only here); the store marker is
//! written through [`write`] too.

// This module is the one place allowed to rename and unlink (clippy.toml).
#![allow(clippy::disallowed_methods)]

use std::fs::File;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;
use std::path::Path;

use rustix::fs::{AtFlags, Mode, OFlags, RenameFlags, renameat_with};
use rustix::io::Errno;

use super::beneath::StorePath;
use crate::error::Error;
use crate::id::SessionId;
use crate::settings::Durability;

/// Whether [`write`] may replace an existing file.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// Rename over the current version (check-in, touch).
    Replace,
    /// Fail if anything exists at the path (create): `renameat2(RENAME_NOREPLACE)`.
    MustNotExist,
}

/// A failed atomic operation: before its rename or unlink (nothing changed on disk), or after
/// it (the change is in place, but the directory sync that makes it durable failed).
#[derive(Debug)]
pub enum Failure {
    Before(Error),
    After(Error),
}

impl Failure {
    pub fn into_error(self) -> Error {
        match self {
            Failure::Before(e) | Failure::After(e) => e,
        }
    }
}

/// Writes `bytes` to `target` atomically (see the module docs for the exact steps), through a
/// temporary file named `<temp_prefix><random>.tmp` (a session's is [`temp_prefix`]) created
/// with `O_EXCL` in `target`'s directory, which is opened beneath the store's root first
/// ([`StorePath::open_parent`]): the file is created, renamed and (on failure) unlinked
/// relative to that directory. `still_held` runs right before the rename; if it fails, nothing
/// is renamed.
pub(crate) fn write(
    target: &StorePath,
    how: Target,
    temp_prefix: &str,
    bytes: &[u8],
    mode: u32,
    durability: Durability,
    still_held: impl FnOnce() -> Result<(), Error>,
) -> Result<(), Failure> {
    let parent = target.open_parent().map_err(|e| dir_failed(target, e))?;
    let temp = Temp::create(&parent.dir, target, temp_prefix, mode).map_err(Failure::Before)?;
    (&temp.file)
        .write_all(bytes)
        .map_err(|e| Failure::Before(Error::io("write", &temp.path, e)))?;
    if durability >= Durability::FileData {
        temp.file
            .sync_data()
            .map_err(|e| Failure::Before(Error::io("sync", &temp.path, e)))?;
    }
    still_held().map_err(Failure::Before)?;
    let renamed = match how {
        Target::Replace => renameat_with(
            &parent.dir,
            &temp.name,
            &parent.dir,
            parent.name,
            RenameFlags::empty(),
        ),
        Target::MustNotExist => place_new(&parent.dir, &temp.name, parent.name),
    };
    renamed.map_err(|e| {
        Failure::Before(Error::io(
            "rename temporary file onto",
            target,
            std::io::Error::from(e),
        ))
    })?;
    temp.persisted();
    sync_dir_if(&parent.dir, target, durability).map_err(Failure::After)
}

/// Puts the file `temp` at `target` (both in `dir`) only if nothing is there:
/// `renameat2(RENAME_NOREPLACE)`, or, where the file system does not know the flag (`EINVAL`,
/// `ENOSYS`, `EOPNOTSUPP`: GlusterFS, bindfs and other FUSE mounts), `linkat` (which never
/// replaces either) and `unlinkat` of the temporary name, as tempfile's `persist_noclobber`
/// does. `EEXIST`: something is at `target`.
fn place_new(dir: &OwnedFd, temp: &str, target: &std::ffi::OsStr) -> Result<(), Errno> {
    match renameat_with(dir, temp, dir, target, RenameFlags::NOREPLACE) {
        Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {
            rustix::fs::linkat(dir, temp, dir, target, AtFlags::empty())?;
            // The file is in place; a temporary name left by a failed unlink is tidy's.
            let _ = rustix::fs::unlinkat(dir, temp, AtFlags::empty());
            Ok(())
        }
        other => other,
    }
}

/// A writer's temporary file, created relative to its open directory and unlinked from it
/// again when dropped before [`persisted`](Self::persisted) (a failed write leaves nothing).
struct Temp<'a> {
    dir: &'a OwnedFd,
    name: String,
    path: std::path::PathBuf,
    file: File,
    persisted: bool,
}

impl<'a> Temp<'a> {
    fn create(
        dir: &'a OwnedFd,
        target: &StorePath,
        prefix: &str,
        mode: u32,
    ) -> Result<Temp<'a>, Error> {
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW;
        let flags = flags | OFlags::CLOEXEC;
        loop {
            let mut random = [0u8; 6];
            getrandom::fill(&mut random)
                .map_err(|e| Error::io("create temporary file in", &target.parent(), e.into()))?;
            let name: String = format!("{prefix}{}{TEMP_SUFFIX}", hex(&random));
            match rustix::fs::openat(dir, &name, flags, Mode::from_raw_mode(mode)) {
                Ok(fd) => {
                    return Ok(Temp {
                        dir,
                        path: target.parent().join(&name).to_path_buf(),
                        name,
                        file: File::from(fd),
                        persisted: false,
                    });
                }
                Err(Errno::EXIST) => continue, // 48 random bits taken: draw again
                Err(e) => {
                    return Err(Error::io(
                        "create temporary file in",
                        &target.parent(),
                        e.into(),
                    ));
                }
            }
        }
    }

    fn persisted(mut self) {
        self.persisted = true;
    }
}

impl Drop for Temp<'_> {
    fn drop(&mut self) {
        if !self.persisted {
            let _ = rustix::fs::unlinkat(self.dir, &self.name, AtFlags::empty());
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What [`exchange_in`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exchanged {
    /// The new version is live; the old one is the spare now.
    Swapped,
    /// Nothing was at the target (removed by hand while its lock was held): the new version
    /// was renamed into place, as [`write`] would, and the session has no spare now.
    Renamed,
    /// The file system refused `RENAME_EXCHANGE`; the new version was renamed over the live
    /// file instead (done, but the session has no spare now). Stop trying on this store.
    Unsupported,
    /// Nothing was changed: the spare is pinned by a reader, or something other than a
    /// regular file is at its name. Write the classic way ([`write`]).
    SpareUnavailable,
}

/// Writes `bytes` as the new version of `target` through its spare file `spare`: open it
/// (create it if missing), pin it exclusively, `pwrite` the whole file at offset 0, `ftruncate`
/// to its length, `fdatasync` if `durability` asks, unpin (close), then swap it with `target`
/// by `renameat2(RENAME_EXCHANGE)`, and `fsync` the directory if asked. `still_held` runs
/// right before the swap; if it fails, nothing is swapped. The spare then holds an unfinished
/// version, which is never read (readers check that what they read is live); after a failed
/// write it is emptied (or removed, if this call created it), so a full disk gets its space
/// back.
///
/// A process killed at any point leaves `target` as it was, or swapped in complete.
pub(crate) fn exchange_in(
    target: &StorePath,
    spare: &StorePath,
    bytes: &[u8],
    mode: u32,
    durability: Durability,
    still_held: impl FnOnce() -> Result<(), Error>,
) -> Result<Exchanged, Failure> {
    let failed = |op, e| Failure::Before(Error::io(op, spare, e));
    // The spare and the live file are in one directory: opened once, beneath the root, and
    // every later call is relative to it.
    let parent = target.open_parent().map_err(|e| dir_failed(target, e))?;
    let (dir, live) = (&parent.dir, parent.name);
    let spare_name = spare.name();
    let flags = OFlags::RDWR | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let (file, created) = match rustix::fs::openat(dir, spare_name, flags, Mode::empty()) {
        Ok(fd) => (File::from(fd), false),
        Err(Errno::NOENT) => {
            let create = flags | OFlags::CREATE | OFlags::EXCL;
            match rustix::fs::openat(dir, spare_name, create, Mode::from_raw_mode(mode)) {
                Ok(fd) => (File::from(fd), true),
                Err(e) => return Err(failed("create spare file", e.into())),
            }
        }
        // A symlink, directory or socket planted at the spare's name: leave it alone.
        Err(Errno::LOOP | Errno::ISDIR | Errno::NXIO) => return Ok(Exchanged::SpareUnavailable),
        Err(e) => return Err(failed("open spare file", e.into())),
    };
    if !super::pin::try_exclusive(&file, spare).map_err(Failure::Before)? {
        return Ok(Exchanged::SpareUnavailable); // a reader holds the old version in it
    }
    let filled = file
        .write_all_at(bytes, 0)
        .map_err(|e| ("write spare file", e))
        .and_then(|()| {
            file.set_len(bytes.len() as u64)
                .map_err(|e| ("truncate spare file", e))
        })
        .and_then(|()| {
            if durability >= Durability::FileData {
                file.sync_data().map_err(|e| ("sync spare file", e))
            } else {
                Ok(())
            }
        });
    match filled {
        Ok(()) => {}
        // A FIFO planted at the spare's name (`pwrite` cannot seek it): nothing was written.
        Err((_, e)) if e.raw_os_error() == Some(libc::ESPIPE) => {
            return Ok(Exchanged::SpareUnavailable);
        }
        Err((op, e)) => {
            // Give the space back (a full disk is the usual cause); the spare's content does
            // not matter, only that it is never live.
            if created {
                drop(file);
                let _ = rustix::fs::unlinkat(dir, spare_name, AtFlags::empty());
            } else {
                let _ = file.set_len(0);
            }
            return Err(failed(op, e));
        }
    }
    still_held().map_err(Failure::Before)?;
    drop(file); // unpins: a reader that opens it from here on checks it is live
    match renameat_with(dir, spare_name, dir, live, RenameFlags::EXCHANGE) {
        Ok(()) => {
            sync_dir_if(dir, target, durability).map_err(Failure::After)?;
            Ok(Exchanged::Swapped)
        }
        Err(Errno::NOENT) => {
            rename_spare_over(dir, spare, target, durability).map(|()| Exchanged::Renamed)
        }
        // EINVAL (the file system does not know the flag), ENOSYS (no renameat2, or a
        // sandbox refusing it), EOPNOTSUPP: some FUSE and network file systems.
        Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {
            rename_spare_over(dir, spare, target, durability).map(|()| Exchanged::Unsupported)
        }
        Err(e) => Err(Failure::Before(Error::io(
            "swap spare file with",
            target,
            e.into(),
        ))),
    }
}

/// Completes a write whose swap could not happen by renaming the filled spare over `target`
/// (both in the open directory `dir`).
fn rename_spare_over(
    dir: &OwnedFd,
    spare: &StorePath,
    target: &StorePath,
    durability: Durability,
) -> Result<(), Failure> {
    match renameat_with(dir, spare.name(), dir, target.name(), RenameFlags::empty()) {
        Ok(()) => sync_dir_if(dir, target, durability).map_err(Failure::After),
        Err(e) => Err(Failure::Before(Error::io(
            "rename spare file onto",
            target,
            e.into(),
        ))),
    }
}

/// Moves `from` to `to` (same store, same file system), atomically, each relative to its own
/// directory opened beneath the root. `Ok(false)`: `from` did not exist.
pub(crate) fn rename(
    from: &StorePath,
    to: &StorePath,
    durability: Durability,
) -> Result<bool, Failure> {
    let failed = |e: std::io::Error| Failure::Before(Error::io("rename", from, e));
    let source = from.open_parent().map_err(|e| dir_failed(from, e))?;
    let same_dir = from.parent().as_os_str() == to.parent().as_os_str();
    let dest = if same_dir {
        None
    } else {
        Some(to.open_parent().map_err(|e| dir_failed(to, e))?)
    };
    let dest_dir = dest.as_ref().map_or(&source.dir, |d| &d.dir);
    match renameat_with(
        &source.dir,
        source.name,
        dest_dir,
        to.name(),
        RenameFlags::empty(),
    ) {
        Ok(()) => {}
        Err(Errno::NOENT) => return Ok(false),
        Err(e) => return Err(failed(e.into())),
    }
    sync_dir_if(dest_dir, to, durability).map_err(Failure::After)?;
    if !same_dir {
        sync_dir_if(&source.dir, from, durability).map_err(Failure::After)?;
    }
    Ok(true)
}

/// Unlinks `path`, relative to its directory opened beneath the root. `Ok(false)`: it did not
/// exist.
pub(crate) fn remove(path: &StorePath, durability: Durability) -> Result<bool, Failure> {
    let failed = |e: std::io::Error| Failure::Before(Error::io("remove", path, e));
    let parent = path.open_parent().map_err(|e| dir_failed(path, e))?;
    match rustix::fs::unlinkat(&parent.dir, parent.name, AtFlags::empty()) {
        Ok(()) => {}
        Err(Errno::NOENT) => return Ok(false),
        Err(e) => return Err(failed(e.into())),
    }
    sync_dir_if(&parent.dir, path, durability).map_err(Failure::After)?;
    Ok(true)
}

/// A failed open of `path`'s directory: refused (naming the symlink or non-directory in the
/// way) or an I/O error. Nothing was changed.
fn dir_failed(path: &StorePath, e: std::io::Error) -> Failure {
    Failure::Before(match e.raw_os_error() {
        Some(libc::ELOOP | libc::ENOTDIR) => path.refused(),
        _ => Error::io("open directory of", path, e),
    })
}

/// Unlinks a session file and then its spare (`spare`, in the same directory), the directory
/// opened beneath the root once for both (delete and gc: two calls fewer than two
/// [`remove`]s). `Ok(false)`: the session file did not exist. The spare's unlink is best
/// effort: one left behind is tidy's (an orphan spare). The directory sync, if asked, follows
/// the session file's unlink.
pub(crate) fn remove_with_spare(
    path: &StorePath,
    spare: &StorePath,
    durability: Durability,
) -> Result<bool, Failure> {
    let failed = |e: std::io::Error| Failure::Before(Error::io("remove", path, e));
    let parent = path.open_parent().map_err(|e| dir_failed(path, e))?;
    let existed = match rustix::fs::unlinkat(&parent.dir, parent.name, AtFlags::empty()) {
        Ok(()) => true,
        Err(Errno::NOENT) => false,
        Err(e) => return Err(failed(e.into())),
    };
    let _ = rustix::fs::unlinkat(&parent.dir, spare.name(), AtFlags::empty());
    if existed {
        sync_dir_if(&parent.dir, path, durability).map_err(Failure::After)?;
    }
    Ok(existed)
}

/// `fsync`s the open directory `dir` (the one `path` is in) if `durability` asks.
fn sync_dir_if(dir: &OwnedFd, path: &Path, durability: Durability) -> Result<(), Error> {
    if durability < Durability::FileAndDirectory {
        return Ok(());
    }
    rustix::fs::fsync(dir).map_err(|e| {
        let dir = path.parent().unwrap_or(Path::new("."));
        Error::io("sync directory", dir, e.into())
    })
}

/// Prefix of a writer's temporary file for `id` (`.<id>.`; the suffix is `.tmp`).
pub(crate) fn temp_prefix(id: &SessionId) -> String {
    format!(".{id}.")
}

pub(crate) const TEMP_SUFFIX: &str = ".tmp";

/// The name of `id`'s spare file (`.<id>.spare`), next to its session file.
pub(crate) fn spare_name(id: &SessionId) -> String {
    format!(".{id}{SPARE_SUFFIX}")
}

const SPARE_SUFFIX: &str = ".spare";

/// The session id a spare file name belongs to, if it is one of ours.
pub(crate) fn spare_owner(name: &str) -> Option<SessionId> {
    let id = name.strip_prefix('.')?.strip_suffix(SPARE_SUFFIX)?;
    SessionId::parse(id).ok()
}

/// The session id a temporary file name belongs to, if it is one of ours.
pub(crate) fn temp_owner(name: &str) -> Option<SessionId> {
    let rest = name.strip_prefix('.')?.strip_suffix(TEMP_SUFFIX)?;
    let (id, random) = rest.split_once('.')?;
    if random.is_empty() || random.contains('.') {
        return None;
    }
    SessionId::parse(id).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_round_trip() {
        let id = SessionId::generate().unwrap();
        let name = format!("{}abc123{}", temp_prefix(&id), TEMP_SUFFIX);
        assert_eq!(temp_owner(&name), Some(id));
        assert_eq!(temp_owner(id.as_str()), None);
        assert_eq!(temp_owner(&format!(".{id}..tmp")), None);
        assert_eq!(temp_owner(".nope.abc.tmp"), None);
        assert_eq!(temp_owner(&spare_name(&id)), None);
    }

    #[test]
    fn spare_names_round_trip() {
        let id = SessionId::generate().unwrap();
        assert_eq!(spare_owner(&spare_name(&id)), Some(id));
        assert_eq!(spare_owner(id.as_str()), None);
        assert_eq!(
            spare_owner(&format!("{}x{}", temp_prefix(&id), TEMP_SUFFIX)),
            None
        );
        assert!(SessionId::parse(&spare_name(&id)).is_err());
    }
}
