//! What the fuzz targets check, shared with the regression test that replays their findings
//! (`tests/it/fuzz_regressions.rs` includes this very file), so a replayed input is judged
//! exactly as the fuzzer judged it.
//!
//! Decoding is checked against a small reference reading of the format written from
//! `docs/design.md` (not from `src/format.rs`): for every input it predicts which typed error
//! both readers must return, or that the file is well framed and the payload is either a
//! `Dict` or a `Decode` error. Ids are checked against the rule "exactly 32 characters of
//! `[a-z2-7]`" and for safety as a file-name component.
//!
//! Every check panics with a message on a violation, which is what libFuzzer reports as a crash.

use std::ffi::OsStr;
use std::path::{Component, Path};

use sessiondir::{Corruption, Dict, Error, FORMAT_VERSION, HEADER_LEN, SessionId, SessionInfo};

/// The largest payload the store accepts by default (`StoreBuilder::max_session_size`).
pub const DEFAULT_MAX: u64 = 1 << 20;

/// The first buffer the whole-file reader uses: a header and 4 KiB of payload.
pub const FIRST_READ: usize = HEADER_LEN + 4096;

/// One fuzz input for the `decode` target: a control byte, then the bytes of a session file.
///
/// The control byte picks the configured maximum and, optionally, repairs fields that random
/// mutation almost never gets right, so the fuzzer reaches the payload decoder as well as the
/// framing checks:
///
/// * bits 0-1: maximum payload: 1 MiB (the default), 4096, 100 or 0 bytes;
/// * bit 2: set the header's payload length to the real length of what follows the header;
/// * bit 3: set the header's payload CRC to the CRC of what follows the header;
/// * bit 4: set the header CRC to the CRC of the (repaired) header.
///
/// Repairs apply only to files at least a header long. An empty input is an empty file with
/// the default maximum.
#[derive(Debug, Clone)]
pub struct DecodeInput {
    /// The configured maximum payload.
    pub max_payload: u64,
    /// The session file.
    pub file: Vec<u8>,
}

impl DecodeInput {
    /// Control byte: fix the payload length.
    pub const FIX_LEN: u8 = 1 << 2;
    /// Control byte: fix the payload CRC.
    pub const FIX_PAYLOAD_CRC: u8 = 1 << 3;
    /// Control byte: fix the header CRC.
    pub const FIX_HEADER_CRC: u8 = 1 << 4;

    /// Reads a fuzz input.
    pub fn from_fuzz_bytes(data: &[u8]) -> Self {
        let Some((&control, file)) = data.split_first() else {
            return DecodeInput {
                max_payload: DEFAULT_MAX,
                file: Vec::new(),
            };
        };
        let max_payload = [DEFAULT_MAX, 4096, 100, 0][usize::from(control & 3)];
        let mut file = file.to_vec();
        if file.len() >= HEADER_LEN {
            let payload_len = (file.len() - HEADER_LEN) as u32;
            if control & Self::FIX_LEN != 0 {
                file[48..52].copy_from_slice(&payload_len.to_le_bytes());
            }
            if control & Self::FIX_PAYLOAD_CRC != 0 {
                let crc = crc32fast::hash(&file[HEADER_LEN..]);
                file[52..56].copy_from_slice(&crc.to_le_bytes());
            }
            if control & Self::FIX_HEADER_CRC != 0 {
                let crc = header_crc(&file[..HEADER_LEN]);
                file[56..60].copy_from_slice(&crc.to_le_bytes());
            }
        }
        DecodeInput { max_payload, file }
    }

    /// The fuzz input for a session file as the store wrote it: every repair bit set (they
    /// change nothing in a sound file), so the fuzzer's mutations of it keep reaching the
    /// payload decoder.
    pub fn to_fuzz_bytes_repairing(file: &[u8]) -> Vec<u8> {
        let mut out = vec![Self::FIX_LEN | Self::FIX_PAYLOAD_CRC | Self::FIX_HEADER_CRC];
        out.extend_from_slice(file);
        out
    }

    /// The fuzz input for a file taken as it is, with the default maximum.
    pub fn to_fuzz_bytes_raw(file: &[u8]) -> Vec<u8> {
        let mut out = vec![0];
        out.extend_from_slice(file);
        out
    }
}

/// CRC-32 of header bytes 0..56 and 60..64 (everything but the stored header CRC).
fn header_crc(h: &[u8]) -> u32 {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&h[..56]);
    crc.update(&h[60..HEADER_LEN]);
    crc.finalize()
}

/// What both readers returned for one file (`sessiondir::fuzzing::read_session_file`).
pub type Outcome = (
    Result<SessionInfo, Error>,
    Result<sessiondir::Snapshot<Dict>, Error>,
);

/// The header fields, as the reference reading of the format sees them.
#[derive(Debug, Clone, Copy)]
struct RefHeader {
    generation: u64,
    created_ms: u64,
    modified_ms: u64,
    expires_ms: u64,
    ttl_ms: u64,
    payload_len: u32,
    payload_crc: u32,
}

/// The reference reading of a header: the field table of docs/design.md, checked in the
/// documented order. `Err` is the error's shape as [`shape`] renders it.
fn ref_header(file: &[u8]) -> Result<RefHeader, String> {
    let u16_at = |o: usize| u16::from_le_bytes([file[o], file[o + 1]]);
    let u32_at = |o: usize| u32::from_le_bytes(file[o..o + 4].try_into().expect("4 bytes"));
    let u64_at = |o: usize| u64::from_le_bytes(file[o..o + 8].try_into().expect("8 bytes"));
    if file.is_empty() {
        return Err("Corrupt(Empty)".into());
    }
    if !file.starts_with(b"SDIR") {
        return Err("Corrupt(BadMagic)".into());
    }
    if file.len() < HEADER_LEN {
        let truncated = Corruption::Truncated {
            len: file.len() as u64,
            expected: HEADER_LEN as u64,
        };
        return Err(format!("Corrupt({truncated:?})"));
    }
    if u16_at(4) != FORMAT_VERSION {
        return Err(format!("UnsupportedVersion({})", u16_at(4)));
    }
    let (stored, computed) = (u32_at(56), header_crc(&file[..HEADER_LEN]));
    if stored != computed {
        let mismatch = Corruption::ChecksumMismatch { stored, computed };
        return Err(format!("Corrupt({mismatch:?})"));
    }
    if u16_at(6) != 0 {
        return Err(format!(
            "Corrupt({:?})",
            Corruption::UnknownFlags(u16_at(6))
        ));
    }
    Ok(RefHeader {
        generation: u64_at(8),
        created_ms: u64_at(16),
        modified_ms: u64_at(24),
        expires_ms: u64_at(32),
        ttl_ms: u64_at(40),
        payload_len: u32_at(48),
        payload_crc: u32_at(52),
    })
}

/// An error's shape without its path (the readers under test and the store name different
/// paths for the same file). Errors a decoder must never return render as `unexpected ...`.
pub fn shape(error: &Error) -> String {
    match error {
        Error::Corrupt { kind, .. } => format!("Corrupt({kind:?})"),
        Error::UnsupportedVersion { found, .. } => format!("UnsupportedVersion({found})"),
        Error::TooLarge { size, max, .. } => format!("TooLarge({size} > {max})"),
        Error::Decode { source, .. } => format!("Decode({source:?})"),
        other => format!("unexpected {other:?}"),
    }
}

/// A reader's result without the session id (the store's is real, the fuzz entry point's a
/// placeholder): the metadata fields, or the error's [`shape`].
pub fn info_shape(info: &Result<SessionInfo, Error>) -> Result<String, String> {
    match info {
        Ok(i) => Ok(format!(
            "created {:?} modified {:?} expires {:?} idle {:?} generation {} payload {}",
            i.created, i.modified, i.expires, i.idle_ttl, i.generation, i.payload_len
        )),
        Err(e) => Err(shape(e)),
    }
}

fn expected_info(h: &RefHeader) -> String {
    use std::time::{Duration, UNIX_EPOCH};
    let at = |ms: u64| UNIX_EPOCH + Duration::from_millis(ms);
    format!(
        "created {:?} modified {:?} expires {:?} idle {:?} generation {} payload {}",
        at(h.created_ms),
        at(h.modified_ms),
        (h.expires_ms != 0).then(|| at(h.expires_ms)),
        (h.ttl_ms != 0).then(|| Duration::from_millis(h.ttl_ms)),
        h.generation,
        h.payload_len
    )
}

/// Checks what both readers made of `file` with `max_payload` configured. Returns the payload
/// length of a file that passed every framing check (0 otherwise), for the allocation bounds.
pub fn check_decode(file: &[u8], max_payload: u64, outcome: &Outcome) -> usize {
    let (info, snapshot) = outcome;
    let header = ref_header(file);
    let context = || format!("file of {} bytes, max payload {max_payload}", file.len());

    // The header-only reader (Store::info, gc, the watcher).
    let expected = header.as_ref().map(expected_info).map_err(Clone::clone);
    assert_eq!(
        info_shape(info),
        expected,
        "header reader disagrees with the format ({})",
        context()
    );

    // The whole-file reader (Store::load, snapshot, inspect): framing first.
    let framing: Result<(), String> = header.as_ref().map_err(Clone::clone).and_then(|h| {
        let payload = u64::from(h.payload_len);
        let expected_len = HEADER_LEN as u64 + payload;
        let len = file.len() as u64;
        if payload > max_payload {
            Err(format!("TooLarge({payload} > {max_payload})"))
        } else if len < expected_len {
            let truncated = Corruption::Truncated {
                len,
                expected: expected_len,
            };
            Err(format!("Corrupt({truncated:?})"))
        } else if len > expected_len {
            // Checked below: the reader stops after one byte past the end it expects.
            Err("TrailingBytes".into())
        } else {
            let computed = crc32fast::hash(&file[HEADER_LEN..]);
            if computed == h.payload_crc {
                Ok(())
            } else {
                let mismatch = Corruption::ChecksumMismatch {
                    stored: h.payload_crc,
                    computed,
                };
                Err(format!("Corrupt({mismatch:?})"))
            }
        }
    });
    match (&framing, snapshot) {
        (Err(want), Err(got)) if want == "TrailingBytes" => match got {
            Error::Corrupt {
                kind: Corruption::TrailingBytes { len, expected },
                ..
            } => {
                let h = header
                    .as_ref()
                    .expect("a framing error after a sound header");
                assert_eq!(*expected, HEADER_LEN as u64 + u64::from(h.payload_len));
                assert!(
                    *expected < *len && *len <= file.len() as u64,
                    "trailing-bytes error reports {len} bytes read ({})",
                    context()
                );
            }
            other => panic!(
                "whole-file reader: expected TrailingBytes, got {} ({})",
                shape(other),
                context()
            ),
        },
        (Err(want), Err(got)) => assert_eq!(
            &shape(got),
            want,
            "whole-file reader disagrees with the format ({})",
            context()
        ),
        (Err(want), Ok(_)) => panic!(
            "whole-file reader accepted a file the format rejects with {want} ({})",
            context()
        ),
        (Ok(()), Err(got)) => assert!(
            matches!(got, Error::Decode { .. }),
            "a well-framed file failed with {} instead of a Decode error ({})",
            shape(got),
            context()
        ),
        (Ok(()), Ok(snap)) => {
            let h = header.as_ref().expect("a sound frame has a sound header");
            assert_eq!(
                info_shape(&Ok(snap.info.clone())),
                Ok(expected_info(h)),
                "snapshot metadata disagrees with the header ({})",
                context()
            );
            check_reencoding(&snap.data, h.payload_len as usize);
        }
    }
    match framing {
        Ok(()) => file.len() - HEADER_LEN,
        Err(_) => 0,
    }
}

/// A decoded session can be checked in again: its canonical encoding is no longer than what
/// was read (so never over the maximum it was read under), and decodes to the same encoding.
fn check_reencoding(data: &Dict, payload_len: usize) {
    let encoded = postcard::to_allocvec(data).expect("a decoded Dict encodes");
    assert!(
        encoded.len() <= payload_len,
        "re-encoding a {payload_len}-byte payload takes {} bytes",
        encoded.len()
    );
    let again: Dict = postcard::from_bytes(&encoded).expect("a re-encoded Dict decodes");
    let twice = postcard::to_allocvec(&again).expect("a decoded Dict encodes");
    assert_eq!(encoded, twice, "encode/decode is not stable");
}

/// Checks `SessionId::parse` on one fuzz input: valid UTF-8 as it is, anything else after
/// lossy conversion (the API takes text).
pub fn check_id(data: &[u8]) {
    check_id_text(&String::from_utf8_lossy(data));
}

/// Checks `SessionId::parse` on one text.
pub fn check_id_text(input: &str) {
    let valid = input.len() == 32
        && input
            .bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b));
    match SessionId::parse(input) {
        Ok(id) => {
            assert!(valid, "parse accepted {input:?}");
            let text = id.as_str();
            assert_eq!(text, input, "a parsed id renders as something else");
            assert_eq!(id.to_string(), text);
            let again = SessionId::parse(text).expect("a rendered id parses again");
            assert_eq!(again, id, "a rendered id parses to another id");
            let via_from_str: SessionId = text.parse().expect("FromStr agrees with parse");
            assert_eq!(via_from_str, id);
            // Safe as one file-name component: exactly one normal component, itself.
            assert!(!text.contains(['/', '\0']) && text != "." && text != "..");
            let mut parts = Path::new(text).components();
            assert_eq!(parts.next(), Some(Component::Normal(OsStr::new(text))));
            assert_eq!(
                parts.next(),
                None,
                "id {text:?} is more than one path component"
            );
        }
        Err(Error::InvalidId {
            input: quoted,
            reason,
        }) => {
            assert!(!valid, "parse refused the valid id {input:?}: {reason}");
            assert!(!reason.is_empty());
            assert!(
                quoted.chars().count() <= 80 && input.starts_with(quoted.as_str()),
                "the error quotes {quoted:?}, not a prefix of at most 80 characters of the input"
            );
            let _ = Error::InvalidId {
                input: quoted,
                reason,
            }
            .to_string();
        }
        Err(other) => panic!("parse returned {other:?} instead of InvalidId"),
    }
}
