//! The forwarding record's 64 bytes: where a `cycle_id` moved a session, the same in both
//! backends (a file `.<old-id>.fwd` of the directory store, `src/store/forward.rs`; the value
//! of the key `P{<old-id>}:fwd` on Redis, `src/redis/scripts.rs`). All integers little-endian:
//!
//! | offset | size | field |
//! |---:|---:|---|
//! | 0 | 4 | magic `SDFW` |
//! | 4 | 2 | version `1` |
//! | 6 | 2 | flags `0` |
//! | 8 | 8 | `cycled_us`: when the id was cycled (Unix time in microseconds: a request that arrived just before the cycle must compare as earlier) |
//! | 16 | 8 | `expires_ms`: the cycle + [`FORWARD_LIFETIME`] (Unix ms) |
//! | 24 | 32 | the new id (ASCII) |
//! | 56 | 4 | reserved, zero |
//! | 60 | 4 | CRC-32 (IEEE) of bytes 0..60 |
//!
//! Decoding checks in the order of the session format (design §2) and never panics: a damaged
//! record is [`Error::Corrupt`] naming where it was read.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::header::{duration_ms, from_ms};
use crate::error::{Corruption, Error};
use crate::id::SessionId;
use crate::info::Forward;

/// How long a forwarding record is valid after its cycle: far longer than a request in flight
/// across a login takes to look its session up, short enough that the record is litter soon.
pub const FORWARD_LIFETIME: Duration = Duration::from_secs(60);

const MAGIC: &[u8; 4] = b"SDFW";
const VERSION: u16 = 1;
/// A record's length in bytes.
pub(crate) const FORWARD_LEN: usize = 64;

/// The record `→ to` for a cycle at `cycled`, valid for [`FORWARD_LIFETIME`].
pub(crate) fn encode_forward(to: &SessionId, cycled: SystemTime) -> [u8; FORWARD_LEN] {
    let cycled_us = cycled
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    let expires_ms = (cycled_us / 1000).saturating_add(duration_ms(FORWARD_LIFETIME));
    encode(to, cycled_us, expires_ms)
}

fn encode(to: &SessionId, cycled_us: u64, expires_ms: u64) -> [u8; FORWARD_LEN] {
    let mut b = [0u8; FORWARD_LEN];
    b[0..4].copy_from_slice(MAGIC);
    b[4..6].copy_from_slice(&VERSION.to_le_bytes());
    b[8..16].copy_from_slice(&cycled_us.to_le_bytes());
    b[16..24].copy_from_slice(&expires_ms.to_le_bytes());
    b[24..56].copy_from_slice(to.as_str().as_bytes());
    let crc = crc32fast::hash(&b[..60]);
    b[60..64].copy_from_slice(&crc.to_le_bytes());
    b
}

/// A record's fields, checked in the order of the session format (design §2): length, magic,
/// version, checksum, flags, then the id. `path` names where the bytes were read, for errors.
pub(crate) fn decode_forward(path: &Path, b: &[u8]) -> Result<Forward, Error> {
    let corrupt = |kind| Error::corrupt(path, kind);
    let len = b.len() as u64;
    if b.is_empty() {
        return Err(corrupt(Corruption::Empty));
    }
    if b.len() >= 4 && &b[0..4] != MAGIC {
        return Err(corrupt(Corruption::BadMagic));
    }
    let expected = FORWARD_LEN as u64;
    if b.len() < FORWARD_LEN {
        return Err(corrupt(Corruption::Truncated { len, expected }));
    }
    if b.len() > FORWARD_LEN {
        return Err(corrupt(Corruption::TrailingBytes { len, expected }));
    }
    let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
    let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let u64_at = |i: usize| {
        let mut x = [0u8; 8];
        x.copy_from_slice(&b[i..i + 8]);
        u64::from_le_bytes(x)
    };
    let version = u16_at(4);
    if version != VERSION {
        return Err(Error::UnsupportedVersion {
            path: path.to_path_buf(),
            found: version,
            supported: VERSION,
        });
    }
    let (stored, computed) = (u32_at(60), crc32fast::hash(&b[..60]));
    if stored != computed {
        return Err(corrupt(Corruption::ChecksumMismatch { stored, computed }));
    }
    if u16_at(6) != 0 {
        return Err(corrupt(Corruption::UnknownFlags(u16_at(6))));
    }
    let to = std::str::from_utf8(&b[24..56])
        .ok()
        .and_then(|s| SessionId::parse(s).ok())
        .ok_or_else(|| corrupt(Corruption::InvalidId))?;
    Ok(Forward {
        to,
        cycled: UNIX_EPOCH + Duration::from_micros(u64_at(8)),
        expires: from_ms(u64_at(16)),
    })
}

/// A record that expired long ago (a cycle at 1 ms past the epoch), for tests that plant one.
#[cfg(test)]
pub(crate) fn expired_forward(to: &SessionId) -> [u8; FORWARD_LEN] {
    encode(to, 1_000, 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> SessionId {
        SessionId::generate().expect("random id")
    }

    #[test]
    fn records_round_trip() {
        let to = id();
        let f = decode_forward(Path::new("x"), &encode(&to, 1_000, 61_000)).expect("decodes");
        assert_eq!(f.to, to);
        assert_eq!(f.cycled, UNIX_EPOCH + Duration::from_micros(1_000));
        assert_eq!(f.expires, from_ms(61_000));
        let now = SystemTime::now();
        let f = decode_forward(Path::new("x"), &encode_forward(&to, now)).expect("decodes");
        let lag = now
            .duration_since(f.cycled)
            .expect("not later than the cycle");
        assert!(lag < Duration::from_micros(1), "{lag:?}");
        let since = |t: SystemTime| t.duration_since(UNIX_EPOCH).expect("after 1970");
        assert_eq!(
            duration_ms(since(f.expires)),
            duration_ms(since(now) + FORWARD_LIFETIME)
        );
    }

    #[test]
    fn damaged_records_are_typed_errors_naming_the_file() {
        let good = encode(&id(), 1, 2);
        let path = Path::new("/store/sessions/00/.x.fwd");
        let kind = |bytes: &[u8]| match decode_forward(path, bytes) {
            Err(Error::Corrupt { path: p, kind }) => {
                assert_eq!(p, path);
                kind
            }
            other => panic!("expected Corrupt, got {other:?}"),
        };
        assert_eq!(kind(&[]), Corruption::Empty);
        assert_eq!(kind(b"SDIR and more"), Corruption::BadMagic);
        assert!(matches!(kind(&good[..63]), Corruption::Truncated { .. }));
        assert!(matches!(
            kind(&[&good[..], b"x"].concat()),
            Corruption::TrailingBytes { .. }
        ));
        for bit in 0..(60 * 8) {
            let mut flipped = good;
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(
                decode_forward(path, &flipped).is_err(),
                "bit {bit} flipped went unnoticed"
            );
        }
        let mut bad_id = good;
        bad_id[24] = b'A';
        let crc = crc32fast::hash(&bad_id[..60]);
        bad_id[60..64].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(kind(&bad_id), Corruption::InvalidId);
    }
}
