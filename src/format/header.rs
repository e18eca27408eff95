//! The 64-byte header of a session (file or Redis value): its byte layout, the rules by which
//! every write derives the next header (generation, modification time, expiry), and the clock
//! those rules read. Both backends build headers only through this module.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{Corruption, Error};
use crate::settings::Expiry;

/// Length of the fixed header.
pub const HEADER_LEN: usize = 64;
/// The format version this build reads and writes.
pub const FORMAT_VERSION: u16 = 1;
const MAGIC: &[u8; 4] = b"SDIR";

/// The decoded header of a session file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub generation: u64,
    pub created_ms: u64,
    pub modified_ms: u64,
    pub expires_ms: u64,
    pub ttl_ms: u64,
    pub payload_len: u32,
    pub payload_crc: u32,
}

impl Header {
    /// The header of a new session: generation 1, created and modified at `now_ms`, the
    /// expiry rule applied (payload length and checksum are filled in by encoding).
    pub fn new(expiry: Expiry, now_ms: u64) -> Header {
        let mut header = Header {
            generation: 1,
            created_ms: now_ms,
            modified_ms: now_ms,
            expires_ms: 0,
            ttl_ms: 0,
            payload_len: 0,
            payload_crc: 0,
        };
        header.apply_expiry(expiry, now_ms);
        header
    }

    /// The header of the next write at `now_ms` (check-in, touch, set_expiry): the next
    /// generation, modified now, and either a new expiry rule or the current one re-applied
    /// (a sliding lifetime moves, a fixed time stays); the payload fields unchanged.
    pub fn next(&self, expiry: Option<Expiry>, now_ms: u64) -> Header {
        let mut header = Header {
            generation: self.generation.wrapping_add(1),
            modified_ms: now_ms,
            ..*self
        };
        match expiry {
            Some(expiry) => header.apply_expiry(expiry, now_ms),
            None if self.ttl_ms != 0 => header.expires_ms = now_ms.saturating_add(self.ttl_ms),
            None => {}
        }
        header
    }

    /// Applies an expiry rule at time `now_ms` to the expiry fields.
    pub fn apply_expiry(&mut self, expiry: Expiry, now_ms: u64) {
        (self.expires_ms, self.ttl_ms) = match expiry {
            Expiry::Never => (0, 0),
            Expiry::Idle(ttl) => {
                let ttl_ms = duration_ms(ttl).max(1);
                (now_ms.saturating_add(ttl_ms), ttl_ms)
            }
            Expiry::At(t) => (to_ms(t).max(1), 0),
        };
    }

    /// Notes a sliding session's activity recorded outside the header (the session file's
    /// modification time, design §3.7), in memory only: if `active_ms` (capped at `now_ms`) is
    /// later than the header's modification time, the session counts as modified then and
    /// expires `ttl_ms` after it. Ignored for a session without an idle lifetime.
    pub fn note_activity(&mut self, active_ms: u64, now_ms: u64) {
        let active_ms = active_ms.min(now_ms);
        if self.ttl_ms == 0 || active_ms <= self.modified_ms {
            return;
        }
        self.modified_ms = active_ms;
        self.expires_ms = self.expires_ms.max(active_ms.saturating_add(self.ttl_ms));
    }

    /// Whether a read at `now_ms` of this sliding session should record its activity: its last
    /// known activity is at least the throttle old and it has not expired.
    pub fn wants_activity(&self, now_ms: u64) -> bool {
        self.ttl_ms != 0
            && !self.is_expired(now_ms)
            && now_ms.saturating_sub(self.modified_ms) >= activity_throttle_ms(self.ttl_ms)
    }

    /// Whether the session has expired at `now_ms`.
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expires_ms != 0 && self.expires_ms <= now_ms
    }

    pub(super) fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..4].copy_from_slice(MAGIC);
        h[4..6].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        // flags (6..8) stay zero.
        h[8..16].copy_from_slice(&self.generation.to_le_bytes());
        h[16..24].copy_from_slice(&self.created_ms.to_le_bytes());
        h[24..32].copy_from_slice(&self.modified_ms.to_le_bytes());
        h[32..40].copy_from_slice(&self.expires_ms.to_le_bytes());
        h[40..48].copy_from_slice(&self.ttl_ms.to_le_bytes());
        h[48..52].copy_from_slice(&self.payload_len.to_le_bytes());
        h[52..56].copy_from_slice(&self.payload_crc.to_le_bytes());
        let crc = header_crc(&h);
        h[56..60].copy_from_slice(&crc.to_le_bytes());
        h
    }

    /// Decodes and verifies the first 64 bytes of a file (`bytes` may be shorter: truncated).
    pub fn decode(path: &Path, bytes: &[u8]) -> Result<Self, Error> {
        if bytes.is_empty() {
            return Err(Error::corrupt(path, Corruption::Empty));
        }
        if bytes.len() < MAGIC.len() || &bytes[..4] != MAGIC {
            return Err(Error::corrupt(path, Corruption::BadMagic));
        }
        let Some(h) = bytes.get(..HEADER_LEN) else {
            return Err(Error::corrupt(
                path,
                Corruption::Truncated {
                    len: bytes.len() as u64,
                    expected: HEADER_LEN as u64,
                },
            ));
        };
        let u16_at = |o: usize| u16::from_le_bytes([h[o], h[o + 1]]);
        let u32_at = |o: usize| u32::from_le_bytes([h[o], h[o + 1], h[o + 2], h[o + 3]]);
        let u64_at = |o: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&h[o..o + 8]);
            u64::from_le_bytes(b)
        };
        let version = u16_at(4);
        if version != FORMAT_VERSION {
            return Err(Error::UnsupportedVersion {
                path: path.to_path_buf(),
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let stored = u32_at(56);
        let computed = header_crc(h);
        if stored != computed {
            return Err(Error::corrupt(
                path,
                Corruption::ChecksumMismatch { stored, computed },
            ));
        }
        let flags = u16_at(6);
        if flags != 0 {
            return Err(Error::corrupt(path, Corruption::UnknownFlags(flags)));
        }
        Ok(Header {
            generation: u64_at(8),
            created_ms: u64_at(16),
            modified_ms: u64_at(24),
            expires_ms: u64_at(32),
            ttl_ms: u64_at(40),
            payload_len: u32_at(48),
            payload_crc: u32_at(52),
        })
    }
}

/// CRC-32 of the header's bytes 0..56 and 60..64 (everything but the checksum itself).
fn header_crc(h: &[u8]) -> u32 {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&h[..56]);
    crc.update(&h[60..HEADER_LEN]);
    crc.finalize()
}

// The clock of every header rule and expiry check.

/// Milliseconds since the Unix epoch, now.
/// How old a sliding session's last activity must be before a read records a new one: a
/// quarter of its idle lifetime. A burst of reads records at most one activity per quarter
/// lifetime, and a session read at time *t* lives at least three quarters of its lifetime
/// after *t*.
pub(crate) fn activity_throttle_ms(ttl_ms: u64) -> u64 {
    (ttl_ms / 4).max(1)
}

pub(crate) fn now_ms() -> u64 {
    to_ms(SystemTime::now())
}

pub(crate) fn to_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis().min(u128::from(u64::MAX)) as u64)
        .unwrap_or(0)
}

pub(crate) fn from_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

pub(crate) fn duration_ms(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}
