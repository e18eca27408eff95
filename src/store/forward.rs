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
//! name, like the spare's: the walk keeps only names that are ids, so `ids`, `ls`, `stats` and
//! watch never see one, and gc judges them apart from sessions; tidy leaves names it does not
//! know alone). 64 bytes, the same record as the Redis backend's (`crate::format::forward`
//! lays them out byte by byte): magic `SDFW`, version, flags, when the id was cycled (µs), when
//! the record expires (the cycle + [`FORWARD_LIFETIME`]), the new id, a CRC-32.
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
//! **Removed** once expired, or when damaged, by every gc pass ([`Store::gc`] and the calls
//! built on it, so `sessiondir gc`, the Python binding's gc and the axum `GcTask` alike; counted
//! in [`GcReport::forwards_removed`]), or on its own by [`Store::delete_expired_forwards`]. An
//! expired record is never followed.

use std::io::Read;
use std::time::SystemTime;

use super::handle::Store;
use crate::backend::{GcReport, Refused};
use crate::error::Error;
use crate::format::{self, FORWARD_LEN};
use crate::fs::atomic::{self, Target};
use crate::fs::beneath::StorePath;
use crate::fs::open;
use crate::id::SessionId;
use crate::info::Forward;
use crate::lock::flock;
use crate::settings::Durability;

pub use crate::format::FORWARD_LIFETIME;

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

impl Store {
    /// Where `from`'s forwarding record lives.
    fn forward_path(&self, from: &SessionId) -> StorePath {
        let layout = &self.shared.layout;
        layout.session_dir(layout.shard_of(from)).join(name(from))
    }

    /// Leaves the record `from → to`, atomically. Called by the cycle under `from`'s lock
    /// (and holding `to`'s), before the session file moves.
    pub(crate) fn write_forward(&self, from: &SessionId, to: &SessionId) -> Result<(), Error> {
        atomic::write(
            &self.forward_path(from),
            Target::Replace,
            &atomic::temp_prefix(from),
            &format::encode_forward(to, SystemTime::now()),
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
    /// returns how many. Every gc pass ([`gc`](Self::gc), [`delete_expired`](Self::delete_expired),
    /// [`delete_idle`](Self::delete_idle)) already does this and reports it
    /// ([`GcReport::forwards_removed`]); this call is the same step alone. A shard whose
    /// directories are no longer safe (design §3.8), or a lock file that is a symlink, is not
    /// gone through: the pass does every other shard, then returns the first such refusal as
    /// [`Error::UnsafePath`] (gc lists them all in [`GcReport::refused`]).
    pub fn delete_expired_forwards(&self) -> Result<u64, Error> {
        let mut report = GcReport::default();
        let first_error = self.prune_forwards(&mut report);
        match (report.refused.into_iter().next(), first_error) {
            (Some(r), _) => Err(Error::UnsafePath {
                path: r.path,
                reason: r.reason,
            }),
            (None, Some(e)) => Err(e),
            (None, None) => Ok(report.forwards_removed),
        }
    }

    /// The gc step for forwarding records: removes the expired and damaged ones into
    /// `report.forwards_removed`; a refused shard or lock file goes to `report.refused`, any
    /// other failure counts as damaged (and the first one is returned), and the pass goes on.
    ///
    /// As for sessions (3.8), a shard's directories are checked again only where something
    /// is to be removed (removal takes the old id's lock, in the lock directory the listing
    /// did not visit), or when its listing is refused (then the check names the outermost
    /// unsafe directory, once, rather than each shard beneath it).
    pub(super) fn prune_forwards(&self, report: &mut GcReport) -> Option<Error> {
        let layout = &self.shared.layout;
        let config = &self.shared.config;
        let now = SystemTime::now();
        let mut first = None;
        let mut count = |report: &mut GcReport, e: Error| {
            if let Err(e) = Refused::record(&mut report.refused, e) {
                report.damaged += 1;
                first.get_or_insert(e);
            }
        };
        for shard in 0..layout.fan_out() {
            let dir = layout.session_dir(shard);
            let names = match super::tidy::list(&dir) {
                Ok(names) => names,
                Err(e) if Refused::from_error(&e).is_some() => {
                    count(
                        report,
                        layout.recheck_shard(shard, config).err().unwrap_or(e),
                    );
                    continue;
                }
                Err(e) => {
                    count(report, e);
                    continue;
                }
            };
            let stale: Vec<SessionId> = names
                .iter()
                .filter_map(|n| owner(n))
                .filter(|from| match read(&dir.join(name(from))) {
                    Ok(Some(f)) => f.expires <= now,
                    Ok(None) => false, // removed meanwhile
                    Err(_) => true,    // damaged: never followed, only in the way
                })
                .collect();
            if stale.is_empty() {
                continue;
            }
            if let Err(e) = layout.recheck_shard(shard, config) {
                count(report, e);
                continue;
            }
            for from in stale {
                match self.remove_unheld_forward(&from, &dir.join(name(&from))) {
                    Ok(true) => report.forwards_removed += 1,
                    Ok(false) => {}
                    Err(e) => count(report, e),
                }
            }
        }
        first
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
    let mut bytes = Vec::with_capacity(FORWARD_LEN + 1);
    file.take(FORWARD_LEN as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io("read", path, e))?;
    format::decode_forward(path, &bytes).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> SessionId {
        SessionId::generate().expect("random id")
    }

    #[test]
    fn record_names_are_hidden() {
        let from = id();
        assert_eq!(owner(&name(&from)), Some(from));
        assert!(
            name(&from).starts_with('.'),
            "a listing must not take it for a session"
        );
        assert_eq!(owner(from.as_str()), None);
        assert_eq!(owner(&atomic::spare_name(&from)), None);
    }

    #[test]
    fn expired_and_damaged_records_are_removed_and_never_followed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path().join("store")).expect("open");
        let (live, expired, damaged, to) = (id(), id(), id(), id());
        store.write_forward(&live, &to).expect("write");
        std::fs::write(&*store.forward_path(&expired), format::expired_forward(&to))
            .expect("plant");
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

    #[test]
    fn gc_removes_expired_records_and_reports_a_refused_shard() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::builder(dir.path().join("store"))
            .fan_out(2)
            .open()
            .expect("open");
        let in_shard = |shard| loop {
            let id = id();
            if store.shard_of(&id) == shard {
                break id;
            }
        };
        let (expired, live, hidden, to) = (in_shard(0), in_shard(0), in_shard(1), id());
        std::fs::write(&*store.forward_path(&expired), format::expired_forward(&to))
            .expect("plant");
        store.write_forward(&live, &to).expect("write");

        // Every gc pass removes them, whatever its policy; sessions are not involved.
        let report = store
            .delete_idle(std::time::Duration::from_secs(3600))
            .expect("gc");
        assert_eq!(
            (report.forwards_removed, report.scanned, report.deleted),
            (1, 0, 0),
            "{report:?}"
        );
        assert!(report.refused.is_empty(), "{report:?}");
        assert!(!store.forward_path(&expired).exists());
        assert!(store.forward_path(&live).exists(), "a live record went");

        // Shard 1 replaced by a symlink to a directory outside the store that holds an
        // expired record: not gone through, said in `refused`, nothing removed there.
        let shard = store.shared.layout.session_dir(1).to_path_buf();
        let outside = dir.path().join("outside");
        std::fs::remove_dir(&shard).expect("remove the (empty) shard");
        std::fs::create_dir(&outside).expect("a directory outside");
        std::os::unix::fs::symlink(&outside, &shard).expect("symlink");
        let planted = outside.join(name(&hidden));
        std::fs::write(&planted, format::expired_forward(&to)).expect("plant");
        let report = store.delete_expired().expect("gc");
        assert_eq!(report.forwards_removed, 0, "{report:?}");
        assert!(
            report.refused.iter().any(|r| r.path == shard),
            "the symlinked shard is not reported: {report:?}"
        );
        assert_eq!(
            report.refused.iter().filter(|r| r.path == shard).count(),
            1,
            "once per path: {report:?}"
        );
        assert!(planted.exists(), "a record outside the store was removed");
        match store.delete_expired_forwards() {
            Err(Error::UnsafePath { path, .. }) => assert_eq!(path, shard),
            other => panic!("expected the refused shard, got {other:?}"),
        }
        assert!(planted.exists());
    }
}
