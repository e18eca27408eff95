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

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::fd::BorrowedFd;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{Corruption, Error};

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
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expires_ms != 0 && self.expires_ms <= now_ms
    }

    fn encode(&self) -> [u8; HEADER_LEN] {
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

/// Opens a session file for reading: no symlink is followed and a FIFO cannot block the
/// reader (`O_NONBLOCK`). `Ok(None)`: the file does not exist.
pub(crate) fn open_for_read(path: &Path) -> Result<Option<File>, Error> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    crate::layout::open_existing(&mut options, libc::O_NONBLOCK, path, "open")
}

/// Refines a decoding error for a file that is not a regular file (a FIFO reads as empty).
/// Only called on the error path, so the common read costs no `fstat`.
fn not_a_file_or(file: &File, path: &Path, error: Error) -> Error {
    match file.metadata() {
        Ok(m) if !m.is_file() => Error::corrupt(path, Corruption::NotAFile),
        _ => error,
    }
}

/// Reads and verifies a whole session file. `Ok(None)`: the file does not exist.
///
/// Reads at most `HEADER_LEN + max_payload + 1` bytes, so a huge or lying file cannot make it
/// allocate more than the configured maximum.
pub(crate) fn read_frame(path: &Path, max_payload: u64) -> Result<Option<Frame>, Error> {
    // On NFS-like file systems a check-in elsewhere can turn our handle stale mid-read.
    crate::netfs::retry_stale(|| {
        let Some(file) = open_for_read(path)? else {
            return Ok(None);
        };
        read_frame_from(&file, path, max_payload).map(Some)
    })
}

pub(crate) fn read_frame_from(file: &File, path: &Path, max_payload: u64) -> Result<Frame, Error> {
    // One read covers small sessions (plus one more to see the end of the file).
    let mut bytes = vec![0u8; HEADER_LEN + 4096];
    let mut filled = read_full(file, path, &mut bytes)?;
    if filled == bytes.len() {
        // Larger than the first buffer: size it from the header, exactly, plus one byte to
        // notice trailing data. Never more than the configured maximum allows.
        let payload = Header::decode(path, &bytes[..HEADER_LEN]).map_or(0, |h| h.payload_len);
        let want = HEADER_LEN as u64 + u64::from(payload).min(max_payload) + 1;
        if let Ok(want) = usize::try_from(want)
            && want > bytes.len()
        {
            bytes.resize(want, 0);
            filled += read_full(file, path, &mut bytes[filled..])?;
        }
    }
    bytes.truncate(filled);
    parse_frame(path, bytes, max_payload).map_err(|e| match e {
        Error::Corrupt { .. } => not_a_file_or(file, path, e),
        e => e,
    })
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

/// Reads until `buf` is full or the file ends; returns the bytes read.
fn read_full(mut file: &File, path: &Path, buf: &mut [u8]) -> Result<usize, Error> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.raw_os_error() == Some(libc::EISDIR) => {
                return Err(Error::corrupt(path, Corruption::NotAFile));
            }
            Err(e) => return Err(Error::io("read", path, e)),
        }
    }
    Ok(filled)
}

/// Reads and verifies only the header. `Ok(None)`: the file does not exist.
pub(crate) fn read_header(path: &Path) -> Result<Option<Header>, Error> {
    crate::netfs::retry_stale(|| {
        let Some(file) = open_for_read(path)? else {
            return Ok(None);
        };
        read_header_from(&file, path).map(Some)
    })
}

/// [`read_header`] of the session file `name` in the open shard directory `dir`, opened
/// relative to it (see [`crate::layout::open_in_dir`]); `path` names it in errors.
pub(crate) fn read_header_in(
    dir: BorrowedFd<'_>,
    name: &str,
    path: &Path,
    noatime: &mut bool,
) -> Result<Option<Header>, Error> {
    crate::netfs::retry_stale(|| {
        let Some(file) = crate::layout::open_in_dir(dir, name, path, noatime)? else {
            return Ok(None);
        };
        read_header_from(&file, path).map(Some)
    })
}

/// Reads and verifies the header of an open file, from its current offset.
fn read_header_from(file: &File, path: &Path) -> Result<Header, Error> {
    let mut buf = [0u8; HEADER_LEN];
    let filled = read_full(file, path, &mut buf)?;
    Header::decode(path, &buf[..filled]).map_err(|e| not_a_file_or(file, path, e))
}

/// Both lock-free readers run on one open file, for the fuzz targets in `fuzz/` and their
/// regression test; see [`crate::fuzzing`]. Not a stable API.
///
/// The first result is what [`Store::info`](crate::Store::info) (and gc, and the watcher) makes
/// of the file: its header alone. The second is what [`Store::inspect`](crate::Store::inspect)
/// makes of it: the whole file, verified, then the payload decoded as a [`Dict`](crate::Dict).
/// Both read from offset 0, through the same functions the store calls once it has opened the
/// file; the id in the results is a fixed placeholder.
#[cfg(feature = "fuzzing")]
pub fn read_session_file(
    file: &File,
    max_payload: u64,
) -> (
    Result<crate::SessionInfo, Error>,
    Result<crate::Snapshot<crate::Dict>, Error>,
) {
    use std::io::{Seek, SeekFrom};

    use crate::{Dict, SessionId, SessionInfo, Snapshot};

    // Each reader starts at offset 0, as on a freshly opened file.
    fn rewind(mut file: &File, path: &Path) -> Result<(), Error> {
        file.seek(SeekFrom::Start(0))
            .map(drop)
            .map_err(|e| Error::io("seek", path, e))
    }
    // The results carry a fixed id: the file is not at any session's path.
    let placeholder = SessionId::from_bytes([0; 20]);
    let info = |path: &Path| -> Result<SessionInfo, Error> {
        rewind(file, path)?;
        let header = read_header_from(file, path)?;
        Ok(SessionInfo::from_header(placeholder, &header))
    };
    let snapshot = |path: &Path| -> Result<Snapshot<Dict>, Error> {
        rewind(file, path)?;
        let frame = read_frame_from(file, path, max_payload)?;
        Ok(Snapshot {
            data: frame.decode(path)?,
            info: SessionInfo::from_header(placeholder, &frame.header),
        })
    };

    let path = Path::new("fuzz-input");
    (info(path), snapshot(path))
}

/// Milliseconds since the Unix epoch, now.
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
