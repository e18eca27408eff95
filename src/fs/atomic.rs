//! Atomic replacement and removal of files: the only place that renames or unlinks.
//!
//! A write creates `.<id>.<random>.tmp` in the session's own shard directory (same directory,
//! so same file system, so `rename(2)` is atomic), writes the whole file with one `write`,
//! optionally `fdatasync`s it, renames it over the session file, and optionally `fsync`s the
//! directory — exactly the steps [`Durability`] lists. Readers open the path and get either the
//! old inode or the new one, complete: never a partial file. If anything fails before the
//! rename, the temporary file is removed (tempfile's drop) and the old version is untouched.
//!
//! `clippy.toml` forbids `std::fs::rename`, `std::fs::remove_file` and tempfile's `persist`
//! everywhere else; the store marker is written through [`write`] too.

use std::fs::{File, Permissions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::PermissionsExt;
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
        .map_err(|e| Failure::Before(Error::io("create temporary file in", dir, e)))?;
    temp.write_all(bytes)
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
    .map_err(|e| Failure::Before(Error::io("rename temporary file onto", target, e.error)))?;
    sync_dir_if(dir, durability).map_err(Failure::After)
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
    }
}
