//! Code shared by sessiondir's fuzz targets: the counting allocator, the checks, and the
//! allocation bounds of the decoder.

pub mod crash;
pub mod meter;
pub mod oracle;

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};

use sessiondir::{HEADER_LEN, Value};

use meter::Usage;
use oracle::{DecodeInput, FIRST_READ};

/// Bytes of memory a decoded value may take per payload byte, at most, in one allocation: a
/// list holds `Value`s, and every element takes at least one payload byte.
pub const VALUE_BYTES: usize = size_of::<Value>();

/// Bytes a decoded session may hold at once per payload byte, at most. The densest honest
/// payload is a chain of one-entry maps (3 bytes each: tag, length, empty key) that each take a
/// B-tree leaf of about 630 bytes: about 210 bytes per payload byte.
pub const EXPANSION: usize = 256;

/// A fixed allowance for allocations whose size does not depend on the input (a B-tree node).
pub const FIXED: usize = 1024;

/// Checks what reading `input` allocated. `payload` is the length of a payload that passed
/// every framing check (0 if none did): only such a payload is decoded.
///
/// * The file buffer is never larger than a header plus the smaller of the claimed payload
///   length and the configured maximum, plus one byte (or twice the first 4 KiB read): a
///   length field cannot make the reader allocate more than the configuration allows.
/// * Decoding allocates in proportion to the payload bytes present, never to the lengths the
///   payload claims: no single allocation above twice [`VALUE_BYTES`] per payload byte, and no
///   more than [`EXPANSION`] per payload byte held at once.
pub fn check_decode_allocations(input: &DecodeInput, payload: usize, usage: Usage) {
    let claimed = match input.file.get(48..52) {
        Some(field) if input.file.len() >= HEADER_LEN => {
            u32::from_le_bytes(field.try_into().expect("4 bytes")) as usize
        }
        _ => 0,
    };
    let max = usize::try_from(input.max_payload).unwrap_or(usize::MAX);
    // Growing the first buffer to the size the header asks for may round its capacity up to
    // twice the first buffer (`Vec::resize` grows geometrically): a constant, not the claim.
    let frame = (2 * FIRST_READ).max(HEADER_LEN + claimed.min(max) + 1);
    // A list grown element by element (its claimed length was more than the bytes left, so
    // nothing was reserved) may have up to twice the capacity it needs.
    let largest = frame.max(2 * VALUE_BYTES * payload).max(FIXED);
    assert!(
        usage.largest <= largest,
        "one allocation of {} bytes reading a {}-byte file (claimed payload {claimed}, max \
         {max}, decoded payload {payload}): bound {largest}",
        usage.largest,
        input.file.len()
    );
    let peak = frame + EXPANSION * payload + FIXED;
    assert!(
        usage.peak <= peak,
        "{} bytes held at once reading a {}-byte file (claimed payload {claimed}, max {max}, \
         decoded payload {payload}): bound {peak}",
        usage.peak,
        input.file.len()
    );
}

/// A scratch file reused for every input (no file system work per execution but a write).
pub struct Scratch(File);

impl Scratch {
    pub fn new() -> Self {
        Scratch(tempfile::tempfile().expect("create the scratch file"))
    }

    /// Replaces the file's contents with `bytes` and returns it.
    pub fn holding(&mut self, bytes: &[u8]) -> &File {
        let f = &mut self.0;
        f.set_len(0).expect("truncate the scratch file");
        f.seek(SeekFrom::Start(0)).expect("rewind the scratch file");
        f.write_all(bytes).expect("write the scratch file");
        &self.0
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}
