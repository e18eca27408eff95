//! Atomic replacement and removal of files: the only place that renames or unlinks.
//!
//! A write creates `.<id>.<random>.tmp` in the session's own shard directory (same directory,
//! so same file system, so `rename(2)` is atomic), writes the whole file with one `write`,
//! optionally `fdatasync`s it, renames it over the session file, and optionally `fsync`s the
//! directory — exactly the steps [`Durability`] lists. Readers open the path and get either the
//! old inode or the new one, complete: never a partial file. If anything fails before the
//! rename, the temporary file is removed (tempfile's drop) and the old version is untouched.
//!
//! A check-in can instead reuse inodes ([`exchange_in`]): it overwrites the session's spare
//! file `.<id>.spare` in place and swaps it with the live file by
//! `renameat2(RENAME_EXCHANGE)`, so the old version becomes the next spare and no inode is
//! created or freed. Readers and writers of spares are kept apart by pins (`super::pin`).
//!
//! `clippy.toml` forbids `std::fs::rename`, `std::fs::remove_file` and tempfile's `persist`
//! everywhere else; the store marker is written through [`write`] too.

use std::fs::{File, OpenOptions, Permissions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

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
/// temporary file named `<temp_prefix><random>.tmp` (a session's is [`temp_prefix`]).
/// `still_held` runs right before the rename; if it fails, nothing is renamed.
pub(crate) fn write(
    target: &Path,
    how: Target,
    temp_prefix: &str,
    bytes: &[u8],
    mode: u32,
    durability: Durability,
    still_held: impl FnOnce() -> Result<(), Error>,
) -> Result<(), Failure> {
    let dir = parent(target);
    let mut temp = tempfile::Builder::new()
        .prefix(temp_prefix)
        .suffix(TEMP_SUFFIX)
        .rand_bytes(8)
        .permissions(Permissions::from_mode(mode))
        .tempfile_in(dir)
        .map_err(|e| {
            Failure::Before(Error::io("create temporary file in", dir, without_path(e)))
        })?;
    // Through the file itself: tempfile's own `Write` adds the path to errors, which ours name.
    temp.as_file_mut()
        .write_all(bytes)
        .map_err(|e| Failure::Before(Error::io("write", temp.path(), e)))?;
    if durability >= Durability::FileData {
        temp.as_file()
            .sync_data()
            .map_err(|e| Failure::Before(Error::io("sync", temp.path(), e)))?;
    }
    still_held().map_err(Failure::Before)?;
    match how {
        Target::Replace => persist(temp, target),
        Target::MustNotExist => persist_noclobber(temp, target),
    }
    .map_err(|e| {
        Failure::Before(Error::io(
            "rename temporary file onto",
            target,
            without_path(e.error),
        ))
    })?;
    sync_dir_if(dir, durability).map_err(Failure::After)
}

/// tempfile's error without the "at path …" it appends (our error names the path): the same
/// kind, and the OS error's text.
fn without_path(e: std::io::Error) -> std::io::Error {
    if e.raw_os_error().is_some() {
        return e;
    }
    let text = e.to_string();
    match text.rsplit_once(" at path ") {
        Some((os, _)) => std::io::Error::new(e.kind(), os.to_owned()),
        None => e,
    }
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
    target: &Path,
    spare: &Path,
    bytes: &[u8],
    mode: u32,
    durability: Durability,
    still_held: impl FnOnce() -> Result<(), Error>,
) -> Result<Exchanged, Failure> {
    let failed = |op, e| Failure::Before(Error::io(op, spare, e));
    let mut options = OpenOptions::new();
    options
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    let (file, created) = match options.open(spare) {
        Ok(f) => (f, false),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            match options.create_new(true).mode(mode).open(spare) {
                Ok(f) => (f, true),
                Err(e) => return Err(failed("create spare file", e)),
            }
        }
        // A symlink, directory or socket planted at the spare's name: leave it alone.
        Err(e) if not_a_file(&e) => return Ok(Exchanged::SpareUnavailable),
        Err(e) => return Err(failed("open spare file", e)),
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
                let _ = remove(spare, Durability::None);
            } else {
                let _ = file.set_len(0);
            }
            return Err(failed(op, e));
        }
    }
    still_held().map_err(Failure::Before)?;
    drop(file); // unpins: a reader that opens it from here on checks it is live
    match rename_exchange(spare, target) {
        Ok(()) => {
            sync_dir_if(parent(target), durability).map_err(Failure::After)?;
            Ok(Exchanged::Swapped)
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {
            rename_spare_over(spare, target, durability).map(|()| Exchanged::Renamed)
        }
        Err(e) if exchange_unsupported(&e) => {
            rename_spare_over(spare, target, durability).map(|()| Exchanged::Unsupported)
        }
        Err(e) => Err(Failure::Before(Error::io(
            "swap spare file with",
            target,
            e,
        ))),
    }
}

/// Completes a write whose swap could not happen by renaming the filled spare over `target`.
fn rename_spare_over(spare: &Path, target: &Path, durability: Durability) -> Result<(), Failure> {
    if rename(spare, target, durability)? {
        Ok(())
    } else {
        Err(Failure::Before(Error::io(
            "rename spare file onto",
            target,
            std::io::Error::from(ErrorKind::NotFound),
        )))
    }
}

/// An open refused because the path is no regular file we may open: a symlink (`ELOOP`, we
/// never follow one), a directory (`EISDIR`, opened for writing), a socket (`ENXIO`).
fn not_a_file(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ELOOP | libc::EISDIR | libc::ENXIO)
    )
}

/// `EINVAL` (the file system does not know the flag), `ENOSYS` (no `renameat2`, or a sandbox
/// refusing it), `EOPNOTSUPP`: some FUSE and network file systems.
fn exchange_unsupported(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP)
    )
}

/// `renameat2(a, b, RENAME_EXCHANGE)`: swaps the two names atomically; both must exist.
fn rename_exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE).map_err(std::io::Error::from)
}

// tempfile's renames, allowed here only.
#[allow(clippy::disallowed_methods)]
fn persist(temp: tempfile::NamedTempFile, target: &Path) -> Result<(), tempfile::PersistError> {
    temp.persist(target).map(drop)
}

#[allow(clippy::disallowed_methods)]
fn persist_noclobber(
    temp: tempfile::NamedTempFile,
    target: &Path,
) -> Result<(), tempfile::PersistError> {
    temp.persist_noclobber(target).map(drop)
}

/// Moves `from` to `to` (same shard tree, same file system), atomically. `Ok(false)`: `from`
/// did not exist.
#[allow(clippy::disallowed_methods)] // this module is the one place allowed to rename
pub(crate) fn rename(from: &Path, to: &Path, durability: Durability) -> Result<bool, Failure> {
    match std::fs::rename(from, to) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Failure::Before(Error::io("rename", from, e))),
    }
    sync_dir_if(parent(to), durability).map_err(Failure::After)?;
    if parent(from) != parent(to) {
        sync_dir_if(parent(from), durability).map_err(Failure::After)?;
    }
    Ok(true)
}

/// Unlinks `path`. `Ok(false)`: it did not exist.
#[allow(clippy::disallowed_methods)] // this module is the one place allowed to unlink
pub(crate) fn remove(path: &Path, durability: Durability) -> Result<bool, Failure> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Failure::Before(Error::io("remove", path, e))),
    }
    sync_dir_if(parent(path), durability).map_err(Failure::After)?;
    Ok(true)
}

fn sync_dir_if(dir: &Path, durability: Durability) -> Result<(), Error> {
    if durability < Durability::FileAndDirectory {
        return Ok(());
    }
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("sync directory", dir, e))
}

fn parent(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new("."))
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
