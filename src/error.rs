//! Errors: one enum, a variant for every condition a caller may want to match on.
//!
//! Contention ([`Error::Busy`], [`Error::LockTimeout`]), absence ([`Error::NotFound`],
//! [`Error::Expired`], [`Error::Deleted`]), bad input ([`Error::InvalidId`]) and damage on disk
//! ([`Error::Corrupt`], [`Error::UnsupportedVersion`], [`Error::TooLarge`]) are named variants,
//! never strings. Every error that concerns a file carries its path; I/O errors also carry the
//! verb that failed and keep the original [`std::io::Error`] (and so its `ErrorKind`) as their
//! source.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::id::SessionId;

/// Everything that can go wrong in a store operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A session id from outside failed validation; no path was built from it.
    #[error("invalid session id {input:?}: {reason}")]
    InvalidId {
        /// The rejected input (cut to 80 characters).
        input: String,
        /// What a valid id looks like.
        reason: &'static str,
    },
    /// No session with this id exists (never did, or was deleted or garbage-collected).
    #[error("session {id} not found")]
    NotFound {
        /// The id asked for.
        id: SessionId,
    },
    /// The session exists on disk but its expiry time has passed.
    #[error("session {id} has expired")]
    Expired {
        /// The id asked for.
        id: SessionId,
    },
    /// The session was deleted (or its id cycled) while this caller waited to check it out.
    #[error("session {id} was deleted while waiting to check it out")]
    Deleted {
        /// The id asked for.
        id: SessionId,
    },
    /// [`Store::create_with_id`](crate::Store::create_with_id): a session (or the lock file of
    /// one being created or deleted) already has this id; nothing was written.
    #[error("session {id} already exists")]
    AlreadyExists {
        /// The id asked for.
        id: SessionId,
    },
    /// [`Store::try_checkout`](crate::Store::try_checkout): somebody else holds the session.
    #[error("session {id} is checked out by another request")]
    Busy {
        /// The id asked for.
        id: SessionId,
    },
    /// [`Store::checkout`](crate::Store::checkout) waited for the configured lock timeout.
    #[error("timed out after {waited:?} waiting to check out session {id}")]
    LockTimeout {
        /// The id asked for.
        id: SessionId,
        /// How long the caller waited before giving up.
        waited: Duration,
    },
    /// The holder's lock file was removed from the store while it was held (by hand, or by a
    /// temporary-file cleaner); the write was not done, because another process may have
    /// checked the session out through a new lock file meanwhile.
    #[error("the lock file {} of session {id} was removed while held; nothing was written", path.display())]
    LockLost {
        /// The session.
        id: SessionId,
        /// Its lock file.
        path: PathBuf,
    },
    /// The check-out no longer owns the session, so nothing was written: another holder took
    /// it over (a Redis lease that ran out, or, with fencing, a session file replaced by a
    /// version this check-out did not read). Check the session out again and redo the change.
    #[error(
        "session {id} was taken over while checked out (this check-out holds {held}, the store has {}); nothing was written",
        found.map_or_else(|| "no holder".to_owned(), |f| f.to_string())
    )]
    Conflict {
        /// The session.
        id: SessionId,
        /// This check-out's fencing number (Redis) or the generation it read (directory).
        held: u64,
        /// What the store has now: the current holder's fencing number or the generation on
        /// disk; `None` when nobody holds the session any more.
        found: Option<u64>,
    },
    /// A command to the Redis or Valkey server failed (connection, timeout, or a server error).
    #[cfg(feature = "redis")]
    #[error("redis {op} of {key}: {source}")]
    Redis {
        /// The operation ("check out", "check in", "load", ...).
        op: &'static str,
        /// The key it was applied to, with the server's address.
        key: String,
        /// The client's error.
        source: redis::RedisError,
    },
    /// A session file is damaged: it is left where it is and other sessions are unaffected.
    #[error("corrupt session file {}: {kind}", path.display())]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// What is wrong with it.
        kind: Corruption,
    },
    /// A session file written by a newer sessiondir (or a newer format) than this one reads.
    #[error(
        "session file {} has format version {found}; this sessiondir reads version {supported}",
        path.display()
    )]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version found in its header.
        found: u16,
        /// The version this build reads and writes.
        supported: u16,
    },
    /// A session (on disk or about to be written) is larger than the configured maximum.
    #[error("session {} is {size} bytes, over the configured maximum of {max} bytes", path.display())]
    TooLarge {
        /// The session file.
        path: PathBuf,
        /// Its size (payload bytes).
        size: u64,
        /// The configured maximum.
        max: u64,
    },
    /// The session data could not be serialized with postcard.
    #[error("cannot encode the data for session file {}: {source}", path.display())]
    Encode {
        /// The session file it was meant for.
        path: PathBuf,
        /// The serializer's error.
        source: postcard::Error,
    },
    /// The payload passed its checksum but does not decode as the requested type.
    #[error("session file {} does not decode as the requested type: {source}", path.display())]
    Decode {
        /// The session file.
        path: PathBuf,
        /// The deserializer's error.
        source: postcard::Error,
    },
    /// A path inside the store is not what the store made: a symlink, a non-directory, or a
    /// directory others may write to.
    #[error("refusing to use {}: {reason}", path.display())]
    UnsafePath {
        /// The offending path.
        path: PathBuf,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The store directory is on a network or FUSE file system, whose locks and caches may not
    /// exclude across hosts; refused unless the builder's `allow_network_fs` opts in (see
    /// `docs/shared-filesystems.md`).
    #[error(
        "refusing {}: it is on {file_system}, a network or FUSE file system, where locks and caches may not exclude across hosts (see docs/shared-filesystems.md; opt in with allow_network_fs)",
        path.display()
    )]
    UnsupportedFileSystem {
        /// The store directory.
        path: PathBuf,
        /// The file system's name (`nfs`, `fuse`, ...).
        file_system: &'static str,
    },
    /// The store directory's settings disagree with the builder's (e.g. shard fan-out).
    #[error("store {}: {reason}", path.display())]
    Config {
        /// The store directory or its marker file.
        path: PathBuf,
        /// What disagrees.
        reason: String,
    },
    /// An operating-system call failed.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        /// The verb that failed ("open", "rename", "lock", ...).
        op: &'static str,
        /// The path it was applied to.
        path: PathBuf,
        /// The OS error; its `ErrorKind` is unchanged.
        source: io::Error,
    },
    /// The OS random number generator failed.
    #[error("cannot draw a session id from the OS random source: {source}")]
    Random {
        /// The underlying error.
        source: io::Error,
    },
}

impl Error {
    pub(crate) fn io(op: &'static str, path: &Path, source: io::Error) -> Self {
        Error::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn invalid_id(input: &str, reason: &'static str) -> Self {
        let mut input: String = input.chars().take(80).collect();
        input.shrink_to_fit();
        Error::InvalidId { input, reason }
    }

    pub(crate) fn corrupt(path: &Path, kind: Corruption) -> Self {
        Error::Corrupt {
            path: path.to_path_buf(),
            kind,
        }
    }

    /// The session id this error is about, if it is about one session.
    pub fn session_id(&self) -> Option<&SessionId> {
        match self {
            Error::NotFound { id }
            | Error::Expired { id }
            | Error::Deleted { id }
            | Error::Busy { id }
            | Error::LockTimeout { id, .. }
            | Error::LockLost { id, .. }
            | Error::Conflict { id, .. } => Some(id),
            _ => None,
        }
    }

    /// True for the "this session is not there" family: not found, expired, deleted.
    pub fn is_gone(&self) -> bool {
        matches!(
            self,
            Error::NotFound { .. } | Error::Expired { .. } | Error::Deleted { .. }
        )
    }
}

/// What is wrong with a corrupt session file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Corruption {
    /// Zero bytes long.
    Empty,
    /// Shorter than its header says.
    Truncated {
        /// Bytes present.
        len: u64,
        /// Bytes the header promises.
        expected: u64,
    },
    /// Longer than its header says.
    TrailingBytes {
        /// Bytes present (at least).
        len: u64,
        /// Bytes the header promises.
        expected: u64,
    },
    /// Does not start with the sessiondir magic: not a session file.
    BadMagic,
    /// Header flag bits this version does not define are set.
    UnknownFlags(u16),
    /// The header's or the payload's CRC-32 does not match.
    ChecksumMismatch {
        /// The checksum stored in the header.
        stored: u32,
        /// The checksum of the bytes read.
        computed: u32,
    },
    /// The path is not a regular file (a directory, a socket, ...).
    NotAFile,
    /// A forwarding record (design §3.6) whose checksum holds names no valid session id.
    InvalidId,
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Corruption::Empty => f.write_str("the file is empty"),
            Corruption::Truncated { len, expected } => {
                write!(f, "truncated: {len} bytes, header promises {expected}")
            }
            Corruption::TrailingBytes { len, expected } => {
                write!(f, "at least {len} bytes, header promises only {expected}")
            }
            Corruption::BadMagic => f.write_str("not a sessiondir session file (bad magic)"),
            Corruption::UnknownFlags(bits) => write!(f, "unknown header flags {bits:#06x}"),
            Corruption::ChecksumMismatch { stored, computed } => write!(
                f,
                "checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
            Corruption::NotAFile => f.write_str("not a regular file"),
            Corruption::InvalidId => f.write_str("the forwarding record names no valid id"),
        }
    }
}
