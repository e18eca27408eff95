//! The session file format: a fixed 64-byte header followed by the postcard payload.
//!
//! ```text
//! offset size field
//!      0    4 magic          b"SDIR"
//!      4    2 version        u16 LE, 1
//!      6    2 flags          u16 LE, 0 (no flags defined; any set bit is refused)
//!      8    8 generation     u64 LE, 1 at creation, +1 on every write of the file
//!     16    8 created_ms     u64 LE, Unix time in milliseconds
//!     24    8 modified_ms    u64 LE, last check-in or touch
//!     32    8 expires_ms     u64 LE, 0 = never expires
//!     40    8 ttl_ms         u64 LE, sliding lifetime re-applied on every write, 0 = none
//!     48    4 payload_len    u32 LE
//!     52    4 payload_crc    u32 LE, CRC-32 (IEEE) of the payload
//!     56    4 header_crc     u32 LE, CRC-32 (IEEE) of bytes 0..56 and 60..64
//!     60    4 reserved       zero (covered by header_crc)
//!     64    n payload        postcard encoding of the session data, n = payload_len
//! ```
//!
//! The header has its own checksum so that expiry and age can be trusted from the first 64 bytes
//! alone (garbage collection and listings never read payloads). Decoding never allocates more
//! than the configured maximum session size, whatever a length field claims, and never panics.

use std::path::Path;

use crate::error::{Corruption, Error};

mod forward;
mod header;
mod read;

pub use forward::FORWARD_LIFETIME;
#[cfg(test)]
pub(crate) use forward::expired_forward;
pub(crate) use forward::{FORWARD_LEN, decode_forward, encode_forward};
pub use header::{FORMAT_VERSION, HEADER_LEN, Header};
pub(crate) use header::{duration_ms, from_ms, now_ms};
#[cfg(feature = "fuzzing")]
pub use read::read_session_file;
pub(crate) use read::{
    Activity, Reads, read_frame, read_frame_held, read_header, read_header_held, read_header_in,
    with_activity,
};

/// Serializes `data` behind a header built from `header` (payload length and checksum are
/// filled in here). Refuses payloads over `max_payload` before anything reaches the disk.
pub(crate) fn encode<T: serde::Serialize>(
    path: &Path,
    header: Header,
    data: &T,
    max_payload: u64,
) -> Result<(Vec<u8>, Header), Error> {
    let buf = Vec::with_capacity(HEADER_LEN + 256);
    let mut buf = postcard::to_extend(data, {
        let mut b = buf;
        b.resize(HEADER_LEN, 0);
        b
    })
    .map_err(|source| Error::Encode {
        path: path.to_path_buf(),
        source,
    })?;
    let len = (buf.len() - HEADER_LEN) as u64;
    if len > max_payload || len > u64::from(u32::MAX) {
        return Err(Error::TooLarge {
            path: path.to_path_buf(),
            size: len,
            max: max_payload,
        });
    }
    let header = Header {
        payload_len: len as u32,
        payload_crc: crc32fast::hash(&buf[HEADER_LEN..]),
        ..header
    };
    buf[..HEADER_LEN].copy_from_slice(&header.encode());
    Ok((buf, header))
}

/// Re-frames an existing payload under a new header without decoding it (used by touch); the
/// payload length and checksum fields of `header` must already describe `payload`.
pub(crate) fn reframe(header: Header, payload: &[u8]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(HEADER_LEN + payload.len());
    buf.extend_from_slice(&header.encode());
    buf.extend_from_slice(payload);
    buf
}

/// A whole session file read into memory and verified.
pub(crate) struct Frame {
    pub header: Header,
    bytes: Vec<u8>,
}

impl Frame {
    pub fn payload(&self) -> &[u8] {
        &self.bytes[HEADER_LEN..]
    }

    /// The whole frame as read: header and payload.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// Decodes the payload as `T`. The whole payload must be one `T`: bytes left over mean
    /// the session holds another type whose encoding merely starts like a `T` (a one-entry
    /// `Dict` reads as far as a one-element list of strings), and that is a decoding error,
    /// not a silently shortened session.
    pub fn decode<T: serde::de::DeserializeOwned>(&self, path: &Path) -> Result<T, Error> {
        let error = |source| Error::Decode {
            path: path.to_path_buf(),
            source,
        };
        match postcard::take_from_bytes(self.payload()).map_err(error)? {
            (value, []) => Ok(value),
            (_, _rest) => Err(error(postcard::Error::DeserializeBadEncoding)),
        }
    }
}

/// Verifies a whole session frame held in memory (a file's bytes, or a Redis value): header,
/// length and payload checksum. `path` names where the bytes came from, for errors.
pub(crate) fn parse_frame(path: &Path, bytes: Vec<u8>, max_payload: u64) -> Result<Frame, Error> {
    let header = Header::decode(path, &bytes)?;
    let expected = HEADER_LEN as u64 + u64::from(header.payload_len);
    if u64::from(header.payload_len) > max_payload {
        return Err(Error::TooLarge {
            path: path.to_path_buf(),
            size: u64::from(header.payload_len),
            max: max_payload,
        });
    }
    let len = bytes.len() as u64;
    if len < expected {
        return Err(Error::corrupt(
            path,
            Corruption::Truncated { len, expected },
        ));
    }
    if len > expected {
        return Err(Error::corrupt(
            path,
            Corruption::TrailingBytes { len, expected },
        ));
    }
    let computed = crc32fast::hash(&bytes[HEADER_LEN..]);
    if computed != header.payload_crc {
        return Err(Error::corrupt(
            path,
            Corruption::ChecksumMismatch {
                stored: header.payload_crc,
                computed,
            },
        ));
    }
    Ok(Frame { header, bytes })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            generation: 7,
            created_ms: 1,
            modified_ms: 2,
            expires_ms: 3,
            ttl_ms: 4,
            payload_len: 0,
            payload_crc: 0,
        }
    }

    #[test]
    fn round_trip() {
        let p = Path::new("/x");
        let (bytes, _) = encode(p, header(), &("hello", 42u32), 1024).unwrap();
        let h = Header::decode(p, &bytes).unwrap();
        assert_eq!(h.generation, 7);
        assert_eq!(h.payload_len as usize, bytes.len() - HEADER_LEN);
        assert_eq!(h.ttl_ms, 4);
    }

    #[test]
    fn every_single_bit_flip_in_the_header_is_caught() {
        let p = Path::new("/x");
        let (bytes, _) = encode(p, header(), &1u8, 1024).unwrap();
        for bit in 0..(HEADER_LEN * 8) {
            let mut b = bytes.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            assert!(Header::decode(p, &b).is_err(), "bit {bit} flip undetected");
        }
    }

    #[test]
    fn oversize_payload_is_refused_before_writing() {
        let err = encode(Path::new("/x"), header(), &vec![0u8; 100], 10).unwrap_err();
        assert!(matches!(err, Error::TooLarge { max: 10, .. }), "{err}");
    }
}
