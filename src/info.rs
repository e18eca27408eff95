//! What the header of a session file says, in caller-friendly types.

use std::time::{Duration, SystemTime};

use crate::format::{self, HEADER_LEN, Header};
use crate::id::SessionId;
use crate::settings::Expiry;

/// Where [`Store::cycle_id`](crate::Store::cycle_id) moved a session: the short-lived record
/// it leaves under the old id ([`Store::forwarded`](crate::Store::forwarded), design §3.6).
///
/// Following it is safe only for a request that presented the old id *before* `cycled` (it
/// was then the session's id, and the request had the session): a request arriving later with
/// the old id may carry a stolen or planted cookie, and must be treated as having no session.
/// Even a follower must not be told the new id (in a cookie, say): the axum layer follows only
/// under both rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forward {
    /// The session's new id.
    pub to: SessionId,
    /// When the id was cycled (the clock of the machine that cycled it, to the millisecond).
    pub cycled: SystemTime,
    /// When the record stops being valid ([`FORWARD_LIFETIME`](crate::FORWARD_LIFETIME) after
    /// `cycled`).
    pub expires: SystemTime,
}

/// A session's metadata, read from the 64-byte header alone (no payload is decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The session's id.
    pub id: SessionId,
    /// When it was created.
    pub created: SystemTime,
    /// Its last check-in or touch, or for a sliding session its last recorded read
    /// ([`Store::mark_active`](crate::Store::mark_active), design §3.7), whichever is later.
    pub modified: SystemTime,
    /// When it expires; `None`: never. A sliding session's counts from [`modified`](Self::modified).
    pub expires: Option<SystemTime>,
    /// Its sliding lifetime, if it has one (re-applied on every check-in and touch).
    pub idle_ttl: Option<Duration>,
    /// Number of times the file has been written (1 after create).
    pub generation: u64,
    /// Size of the encoded data in bytes.
    pub payload_len: u32,
}

impl SessionInfo {
    pub(crate) fn from_header(id: SessionId, h: &Header) -> Self {
        SessionInfo {
            id,
            created: format::from_ms(h.created_ms),
            modified: format::from_ms(h.modified_ms),
            expires: (h.expires_ms != 0).then(|| format::from_ms(h.expires_ms)),
            idle_ttl: (h.ttl_ms != 0).then(|| Duration::from_millis(h.ttl_ms)),
            generation: h.generation,
            payload_len: h.payload_len,
        }
    }

    /// Whether the expiry time has passed at `now`.
    pub fn is_expired_at(&self, now: SystemTime) -> bool {
        self.expires.is_some_and(|t| t <= now)
    }

    /// Whether the expiry time has passed.
    pub fn is_expired(&self) -> bool {
        self.is_expired_at(SystemTime::now())
    }

    /// How long since the last check-in or touch (zero if the clock went backwards).
    pub fn idle_for(&self) -> Duration {
        SystemTime::now()
            .duration_since(self.modified)
            .unwrap_or_default()
    }

    /// The session's expiry rule.
    pub fn expiry(&self) -> Expiry {
        match (self.idle_ttl, self.expires) {
            (Some(ttl), _) => Expiry::Idle(ttl),
            (None, Some(at)) => Expiry::At(at),
            (None, None) => Expiry::Never,
        }
    }

    /// Size of the session file on disk, header included.
    pub fn file_len(&self) -> u64 {
        HEADER_LEN as u64 + u64::from(self.payload_len)
    }
}

/// A lock-free read of a session: its data and its metadata, from the same check-in.
#[derive(Debug, Clone)]
pub struct Snapshot<T> {
    /// The decoded data.
    pub data: T,
    /// The header it was read with.
    pub info: SessionInfo,
}
