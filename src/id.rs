//! Session ids: 160 random bits from the OS CSPRNG, rendered as 32 lowercase base32 characters.
//!
//! An id is the only thing a client sends that becomes part of a path, so it is validated
//! completely — exact length, then alphabet — before any path is built. A [`SessionId`] can only
//! be made by [`SessionId::generate`] (inside the store), by a successful
//! [`SessionId::parse`], or from 20 random bytes by [`SessionId::from_bytes`]; there is no way to build one from an unchecked string, so every path the
//! store builds from an id is `<shard>/<32 chars of [a-z2-7]>`, never `..`, `/`, NUL or a
//! non-ASCII byte.
//!
//! Why base32 and not hex or base64: 32 characters carry 160 bits (hex would carry 128), the
//! alphabet has one case only (safe on case-insensitive file systems and in any cookie), and it
//! has no `-`, `_` or `.` that a file name could start with.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// Number of characters in a rendered id.
pub const ID_LEN: usize = 32;
/// Random bytes behind an id (160 bits).
pub(crate) const ID_BYTES: usize = 20;
/// RFC 4648 base32 alphabet, lower case.
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// A validated session id: 160 bits from the operating system's CSPRNG.
///
/// Get one from [`Store::create`](crate::Store::create) or parse one from a cookie with
/// [`SessionId::parse`] (also available through [`FromStr`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId([u8; ID_LEN]);

impl SessionId {
    /// Draws a new id from the OS CSPRNG (`getrandom(2)` on Linux).
    pub(crate) fn generate() -> Result<Self, Error> {
        let mut raw = [0u8; ID_BYTES];
        getrandom::fill(&mut raw).map_err(|e| Error::Random {
            source: std::io::Error::other(e),
        })?;
        Ok(Self(encode_base32(&raw)))
    }

    /// Renders 160 bits as an id, for frameworks that issue their own session ids (see
    /// [`Store::create_with_id`](crate::Store::create_with_id)). The bits must come from a
    /// CSPRNG: an id is the only secret a session has. Any 20 bytes give a valid id, exactly
    /// as any 32 characters of `[a-z2-7]` do, so this opens no path a client could not reach
    /// through [`parse`](Self::parse).
    pub fn from_bytes(raw: [u8; ID_BYTES]) -> Self {
        Self(encode_base32(&raw))
    }

    /// Parses an id that came from outside (a cookie, a URL, a command line).
    ///
    /// Checks the exact length first and then that every byte is in `[a-z2-7]`. Anything else —
    /// empty, too short or long, `../etc/passwd`, NUL, upper case, non-ASCII — is
    /// [`Error::InvalidId`], and nothing on disk has been touched.
    pub fn parse(input: &str) -> Result<Self, Error> {
        let bytes = input.as_bytes();
        if bytes.len() != ID_LEN {
            return Err(Error::invalid_id(
                input,
                "a session id is exactly 32 ASCII characters",
            ));
        }
        let mut out = [0u8; ID_LEN];
        for (slot, &b) in out.iter_mut().zip(bytes) {
            if !matches!(b, b'a'..=b'z' | b'2'..=b'7') {
                return Err(Error::invalid_id(
                    input,
                    "a session id uses only the characters a-z and 2-7",
                ));
            }
            *slot = b;
        }
        Ok(Self(out))
    }

    /// The id as text; safe to put in a cookie, a URL or a file name.
    pub fn as_str(&self) -> &str {
        // Every byte is ASCII from `ALPHABET` (enforced by `generate` and `parse`).
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// Which of `fan_out` shard directories holds this session (uniform over the random bits).
    pub(crate) fn shard(&self, fan_out: u32) -> u32 {
        let bits = self.0[..4]
            .iter()
            .fold(0u32, |acc, &c| (acc << 5) | u32::from(base32_value(c)));
        bits % fan_out.max(1)
    }
}

fn encode_base32(raw: &[u8; ID_BYTES]) -> [u8; ID_LEN] {
    let mut out = [0u8; ID_LEN];
    // 20 bytes = 160 bits = 32 groups of 5 bits, no padding.
    for (i, slot) in out.iter_mut().enumerate() {
        let bit = i * 5;
        let (byte, shift) = (bit / 8, bit % 8);
        let window = (u16::from(raw[byte]) << 8) | u16::from(*raw.get(byte + 1).unwrap_or(&0));
        let value = (window >> (11 - shift)) & 0x1f;
        *slot = ALPHABET[usize::from(value)];
    }
    out
}

fn base32_value(c: u8) -> u8 {
    match c {
        b'a'..=b'z' => c - b'a',
        b'2'..=b'7' => c - b'2' + 26,
        _ => 0,
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", self.as_str())
    }
}

impl FromStr for SessionId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl AsRef<str> for SessionId {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_back_and_differ() {
        let a = SessionId::generate().unwrap();
        let b = SessionId::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(SessionId::parse(a.as_str()).unwrap(), a);
        assert_eq!(a.as_str().len(), ID_LEN);
    }

    #[test]
    fn encoding_uses_every_bit() {
        assert_eq!(
            encode_base32(&[0; ID_BYTES]).as_slice(),
            [b'a'; ID_LEN].as_slice()
        );
        assert_eq!(
            encode_base32(&[0xff; ID_BYTES]).as_slice(),
            [b'7'; ID_LEN].as_slice()
        );
        let mut one = [0u8; ID_BYTES];
        one[ID_BYTES - 1] = 1;
        let s = encode_base32(&one);
        assert_eq!(s[ID_LEN - 1], b'b');
        assert!(s[..ID_LEN - 1].iter().all(|&c| c == b'a'));
    }

    #[test]
    fn shard_is_in_range_and_spreads() {
        let mut seen = [0u32; 16];
        for _ in 0..4000 {
            let id = SessionId::generate().unwrap();
            seen[id.shard(16) as usize] += 1;
        }
        assert!(
            seen.iter().all(|&n| n > 150),
            "shards badly skewed: {seen:?}"
        );
    }
}
