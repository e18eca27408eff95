//! The probe's files: written the way a check-in writes, read the way the store reads.

use std::io::ErrorKind;
use std::path::Path;

use crate::error::Error;
use crate::fs::atomic::{self, Target};
use crate::fs::beneath::StorePath;
use crate::fs::netfs;
use crate::id::SessionId;
use crate::settings::Durability;

/// Writes `content` to `path` the way a check-in does: temporary file, rename.
pub(super) fn replace(path: &Path, content: &[u8]) -> Result<(), Error> {
    // The temporary file's name carries an id; any fixed one will do here.
    let owner = SessionId::from_bytes([7; crate::id::ID_BYTES]);
    let path = StorePath::in_own_dir(path).map_err(|e| Error::io("open", path, e))?;
    atomic::write(
        &path,
        Target::Replace,
        &atomic::temp_prefix(&owner),
        content,
        0o600,
        Durability::None,
        || Ok(()),
    )
    .map_err(atomic::Failure::into_error)
}

/// What reading a probe file gave.
pub(super) enum Seen {
    Content(Vec<u8>),
    Missing,
}

/// Reads a probe file whole, retrying `ESTALE` as the store does (counted in `stale`).
pub(super) fn read_probe(path: &Path, stale: &mut u64) -> Result<Seen, Error> {
    netfs::retry_stale_counted(
        || match std::fs::read(path) {
            Ok(bytes) => Ok(Seen::Content(bytes)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(Seen::Missing),
            Err(e) => Err(Error::io("read", path, e)),
        },
        stale,
    )
}
