//! Forwarding records: where [`cycle_id`](Store::cycle_id) moved a session, kept for a minute
//! for the requests that were already in flight with the old id.
//!
//! A login cycles the id while other requests of the same visitor may be under way with the old
//! cookie: a read that finds the old id gone would tell the browser to forget its cookie (and
//! the browser would then drop the new login cookie too, if that answer arrives last), and a
//! writer that waited on the old id would wake to an empty session and send a cookie of its
//! own. A forwarding record lets those requests find the session under its new id.
//!
//! **On disk.** `sessions/<shard>/.<old-id>.fwd`, next to where the session file was (a hidden
//! name, like the spare's: the walk keeps only names that are ids, so `ids`, `ls`, `stats`,
//! gc and watch never see one; tidy leaves names it does not know alone). 64 bytes, all
//! integers little-endian:
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
//! **Written** by the cycle, under the old id's lock, *before* the session file is renamed to
//! the new id (temporary file + rename, so a reader never sees half a record): whoever finds
//! the old session file gone finds the record. If the move fails, the record is removed.
//! Durability `None` whatever the store's level: after a power loss the record may be missing,
//! which only costs the in-flight requests of that one login their forwarding.
//!
//! **Who may follow it** is the caller's decision, made with `cycled`: the axum layer follows
//! only for a request that arrived *before* the cycle (it presented the old id while that was
//! the session's id), and never tells such a request the new id. A request arriving later with
//! the old id (a stolen cookie, a planted one) is not let in (design §11).
//!
//! **Removed** by [`Store::delete_expired_forwards`] once expired (the axum layer's
//! `GcTask` runs it on every pass), or when damaged; an expired record is never followed.

use std::io::Read;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::handle::Store;
use crate::error::{Corruption, Error};
use crate::format;
use crate::fs::atomic::{self, Target};
use crate::fs::beneath::StorePath;
use crate::fs::open;
use crate::id::SessionId;
use crate::info::Forward;
use crate::lock::flock;
use crate::settings::Durability;

/// How long a forwarding record is valid after its cycle: far longer than a request in flight
/// across a login takes to look its session up, short enough that the record is litter soon.
pub const FORWARD_LIFETIME: Duration = Duration::from_secs(60);

const MAGIC: &[u8; 4] = b"SDFW";
const VERSION: u16 = 1;
const LEN: usize = 64;
const SUFFIX: &str = ".fwd";

/// The record's file name for `from`: `.<from>.fwd`.
fn name(from: &SessionId) -> String {
    format!(".{from}{SUFFIX}")
}

/// The old id a record's file name is for, if `name` is one.
fn owner(name: &str) -> Option<SessionId> {
    let id = name.strip_prefix('.')?.strip_suffix(SUFFIX)?;
    SessionId::parse(id).ok()
}

fn encode(to: &SessionId, cycled_us: u64, expires_ms: u64) -> [u8; LEN] {
    let mut b = [0u8; LEN];
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
/// version, checksum, flags, then the id.
fn decode(path: &Path, b: &[u8]) -> Result<Forward, Error> {
    let corrupt = |kind| Error::corrupt(path, kind);
    let len = b.len() as u64;
    if b.is_empty() {
        return Err(corrupt(Corruption::Empty));
    }
    if b.len() >= 4 && &b[0..4] != MAGIC {
        return Err(corrupt(Corruption::BadMagic));
    }
    let expected = LEN as u64;
    if b.len() < LEN {
        return Err(corrupt(Corruption::Truncated { len, expected }));
    }
    if b.len() > LEN {
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
        expires: format::from_ms(u64_at(16)),
    })
}

impl Store {
    /// Where `from`'s forwarding record lives.
    fn forward_path(&self, from: &SessionId) -> StorePath {
        let layout = &self.shared.layout;
        layout.session_dir(layout.shard_of(from)).join(name(from))
    }

    /// Leaves the record `from → to`, atomically. Called by the cycle under `from`'s lock
    /// (and holding `to`'s), before the session file moves.
    pub(crate) fn write_forward(&self, from: &SessionId, to: &SessionId) -> Result<(), Error> {
        let now = SystemTime::now();
        let cycled_us = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        let expires = (cycled_us / 1000).saturating_add(format::duration_ms(FORWARD_LIFETIME));
        atomic::write(
            &self.forward_path(from),
            Target::Replace,
            &atomic::temp_prefix(from),
            &encode(to, cycled_us, expires),
            self.shared.config.file_mode,
            Durability::None,
            || Ok(()), // the caller holds the lock; nothing else writes this name
        )
        .map_err(atomic::Failure::into_error)
    }

    /// Removes `from`'s record (a cycle that failed after writing it).
    pub(crate) fn remove_forward(&self, from: &SessionId) {
        let _ = atomic::remove(&self.forward_path(from), Durability::None);
    }

    /// Where a [`cycle_id`](Self::cycle_id) of the last minute moved session `id`: the record
    /// the cycle left under the old id (see [`Forward`] for who may follow it). `Ok(None)`:
    /// `id` was not cycled, or longer ago than the record lives (60 s). A damaged record is
    /// [`Error::Corrupt`] naming its path. No lock; one `open` and `read`.
    pub fn forwarded(&self, id: &SessionId) -> Result<Option<Forward>, Error> {
        let path = self.forward_path(id);
        let Some(forward) = read(&path)? else {
            return Ok(None);
        };
        Ok((forward.expires > SystemTime::now()).then_some(forward))
    }

    /// Removes the forwarding records that have expired (or are damaged), shard by shard;
    /// returns how many. Run it with gc: the axum layer's `GcTask` does on every pass. A shard
    /// whose directories are no longer safe (design §3.8) is skipped.
    pub fn delete_expired_forwards(&self) -> Result<u64, Error> {
        let layout = &self.shared.layout;
        let now = SystemTime::now();
        let mut removed = 0;
        for shard in 0..layout.fan_out() {
            if layout.recheck_shard(shard, &self.shared.config).is_err() {
                continue;
            }
            let dir = layout.session_dir(shard);
            for from in super::tidy::list(&dir)?.iter().filter_map(|n| owner(n)) {
                let path = dir.join(name(&from));
                let stale = match read(&path) {
                    Ok(Some(f)) => f.expires <= now,
                    Ok(None) => false, // removed meanwhile
                    Err(_) => true,    // damaged: never followed, only in the way
                };
                if stale && self.remove_unheld_forward(&from, &path)? {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    /// Removes `from`'s record unless somebody holds `from` (its lock file is normally gone:
    /// the cycle removed it; a hand-made one being held means leave it to the next pass).
    fn remove_unheld_forward(&self, from: &SessionId, path: &StorePath) -> Result<bool, Error> {
        let lock_path = self.shared.layout.lock_path(from);
        let _guard = match flock::open(&lock_path)? {
            None => None,
            Some(file) if flock::try_lock(&file, &lock_path)? => Some(file),
            Some(_) => return Ok(false),
        };
        atomic::remove(path, Durability::None).map_err(atomic::Failure::into_error)
    }
}

/// Reads and checks a record; `Ok(None)` if there is none. Never follows a symlink and never
/// reads more than one byte past a record's length.
fn read(path: &StorePath) -> Result<Option<Forward>, Error> {
    let flags = rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::NONBLOCK;
    let Some(file) = open::open_existing(path, flags, "open")? else {
        return Ok(None);
    };
    let mut bytes = Vec::with_capacity(LEN + 1);
    file.take(LEN as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io("read", path, e))?;
    decode(path, &bytes).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> SessionId {
        SessionId::generate().expect("random id")
    }

    #[test]
    fn records_round_trip_and_names_are_hidden() {
        let (from, to) = (id(), id());
        let bytes = encode(&to, 1_000, 61_000);
        let f = decode(Path::new("x"), &bytes).expect("decodes");
        assert_eq!(f.to, to);
        assert_eq!(f.cycled, UNIX_EPOCH + Duration::from_micros(1_000));
        assert_eq!(f.expires, format::from_ms(61_000));
        assert_eq!(owner(&name(&from)), Some(from));
        assert!(
            name(&from).starts_with('.'),
            "a listing must not take it for a session"
        );
        assert_eq!(owner(from.as_str()), None);
        assert_eq!(owner(&atomic::spare_name(&from)), None);
    }

    #[test]
    fn damaged_records_are_typed_errors_naming_the_file() {
        let good = encode(&id(), 1, 2);
        let path = Path::new("/store/sessions/00/.x.fwd");
        let kind = |bytes: &[u8]| match decode(path, bytes) {
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
                decode(path, &flipped).is_err(),
                "bit {bit} flipped went unnoticed"
            );
        }
        let mut bad_id = good;
        bad_id[24] = b'A';
        let crc = crc32fast::hash(&bad_id[..60]);
        bad_id[60..64].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(kind(&bad_id), Corruption::InvalidId);
    }

    #[test]
    fn expired_and_damaged_records_are_removed_and_never_followed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path().join("store")).expect("open");
        let (live, expired, damaged, to) = (id(), id(), id(), id());
        store.write_forward(&live, &to).expect("write");
        std::fs::write(&*store.forward_path(&expired), encode(&to, 1_000, 2)).expect("plant");
        std::fs::write(&*store.forward_path(&damaged), b"SDFW garbage").expect("plant");

        assert_eq!(
            store.forwarded(&live).expect("read").map(|f| f.to),
            Some(to)
        );
        assert_eq!(store.forwarded(&expired).expect("read"), None);
        assert!(matches!(
            store.forwarded(&damaged),
            Err(Error::Corrupt { .. })
        ));
        assert_eq!(store.forwarded(&to).expect("read"), None, "no record");
        assert_eq!(store.ids().count(), 0, "a record was listed as a session");

        assert_eq!(store.delete_expired_forwards().expect("prune"), 2);
        assert!(
            store.forward_path(&live).exists(),
            "a live record was removed"
        );
        assert!(!store.forward_path(&expired).exists());
        assert!(!store.forward_path(&damaged).exists());
        assert_eq!(store.delete_expired_forwards().expect("prune"), 0);
    }
}
