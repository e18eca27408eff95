//! [`RedisStore`]'s session operations: the [`Backend`] implementation (on Redis the trait
//! is where the operations live; the inherent methods are its thin wrappers).

use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::lease::{Lease, Wait};
use super::{RedisIds, RedisStore, glob_escape};
use crate::backend::sealed::{self, Held as _};
use crate::backend::{Backend, Checkout, GcReport};
use crate::error::Error;
use crate::format::{self, Header};
use crate::id::SessionId;
use crate::info::{Forward, SessionInfo, Snapshot};
use crate::observer::LockStats;
use crate::settings::Expiry;

impl sealed::Sealed for RedisStore {}

/// Every operation means what it means on [`Store`](crate::Store); the module docs list where
/// Redis differs.
impl Backend for RedisStore {
    type Held = Lease;
    type Ids = RedisIds;

    /// Creates a session holding `data` with the store's default expiry, under a new id drawn
    /// from the OS CSPRNG; never overwrites (see [`Store::create`](crate::Store::create)).
    fn create<T: Serialize>(&self, data: &T) -> Result<SessionId, Error> {
        self.create_with_expiry(data, self.inner.settings.default_expiry)
    }

    /// Creates a session with an explicit expiry rule.
    fn create_with_expiry<T: Serialize>(
        &self,
        data: &T,
        expiry: Expiry,
    ) -> Result<SessionId, Error> {
        crate::backend::create_under_new_id(|id| self.create_at(id, data, expiry))
    }

    /// Creates a session under an id the caller drew; [`Error::AlreadyExists`] if the id is
    /// taken (see [`Store::create_with_id`](crate::Store::create_with_id)).
    fn create_with_id<T: Serialize>(
        &self,
        id: &SessionId,
        data: &T,
        expiry: Expiry,
    ) -> Result<(), Error> {
        crate::backend::created_or_taken(id, self.create_at(id, data, expiry)?)
    }

    /// Reads the last checked-in version of a session without taking its lease: never waits.
    /// Missing or expired → `Ok(None)`.
    fn load<T: DeserializeOwned>(&self, id: &SessionId) -> Result<Option<T>, Error> {
        Ok(self.snapshot(id)?.map(|s| s.data))
    }

    /// Like [`load`](Self::load), with the header the data was read with.
    fn snapshot<T: DeserializeOwned>(&self, id: &SessionId) -> Result<Option<Snapshot<T>>, Error> {
        // A visitor's read: keeps a sliding session alive (design §12).
        let Some((frame, header)) = self.read_frame(id, format::Activity::Record)? else {
            return Ok(None);
        };
        // Past its expiry, a session somebody holds is still in use (its lease keeps the
        // server's TTL from removing it, scripts.rs): as in the directory store.
        if header.is_expired(format::now_ms()) && !self.is_checked_out(id)? {
            return Ok(None);
        }
        Ok(Some(Snapshot {
            data: frame.decode(&self.location(&self.session_key(id)))?,
            info: SessionInfo::from_header(*id, &header),
        }))
    }

    /// Whether the session exists and has not expired (no lease taken); past its expiry, a
    /// session somebody holds exists (one `EXISTS` of its lease more).
    fn exists(&self, id: &SessionId) -> Result<bool, Error> {
        match self.info(id)? {
            None => Ok(false),
            Some(info) if !info.is_expired() => Ok(true),
            Some(_) => self.is_checked_out(id),
        }
    }

    /// A session's metadata (its header, with the recorded activity counted; an admin's read,
    /// which records none). Missing → `Ok(None)`.
    fn info(&self, id: &SessionId) -> Result<Option<SessionInfo>, Error> {
        Ok(self
            .read_header(id, format::Activity::Honour)?
            .map(|h| SessionInfo::from_header(*id, &h)))
    }

    /// A visitor's keep-alive: as [`load`](Self::load) records activity, without sending the
    /// payload (one round trip; the TTL is raised at most once per quarter lifetime).
    fn mark_active(&self, id: &SessionId) -> Result<Option<SessionInfo>, Error> {
        Ok(self
            .read_header(id, format::Activity::Record)?
            .map(|h| SessionInfo::from_header(*id, &h))
            .filter(|info| !info.is_expired()))
    }

    /// Checks a session out: waits (up to the lock timeout) for its holder, woken by the
    /// release; see [`Store::checkout`](crate::Store::checkout).
    fn checkout<T: DeserializeOwned>(&self, id: &SessionId) -> Result<Checkout<T, Self>, Error> {
        self.checkout_with(id, Wait::UpToTimeout)
    }

    /// Like [`checkout`](Self::checkout), but [`Error::Busy`] at once if someone holds it.
    fn try_checkout<T: DeserializeOwned>(
        &self,
        id: &SessionId,
    ) -> Result<Checkout<T, Self>, Error> {
        self.checkout_with(id, Wait::No)
    }

    /// Deletes a session, waiting for its holder first. `Ok(false)`: there was none.
    fn delete(&self, id: &SessionId) -> Result<bool, Error> {
        match Lease::acquire(self, id, Wait::UpToTimeout) {
            Ok((lease, _)) => lease.remove(),
            Err(e) if e.is_gone() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Gives a session a new id, keeping its data; the old id stops existing at once, and a
    /// forwarding record under it (key `P{old}:fwd`, 60 s TTL) tells where the session went,
    /// set by the same script that moves it ([`forwarded`](Self::forwarded)).
    fn cycle_id(&self, id: &SessionId) -> Result<SessionId, Error> {
        let (mut lease, _) = self.acquire_live(id, Wait::UpToTimeout)?;
        lease.cycle()
    }

    /// Where a cycle of the last minute moved session `id`: the record `cycle_id` left under
    /// the old id (key `P{id}:fwd`, the same 64 bytes as the directory store's file; see
    /// [`Store::forwarded`](crate::Store::forwarded) and [`Forward`] for who may follow it).
    /// `Ok(None)`: not cycled, or longer ago than the record lives. One `GET`.
    fn forwarded(&self, id: &SessionId) -> Result<Option<Forward>, Error> {
        self.read_forward(id)
    }

    /// Nothing to do: the server removes each forwarding record when its TTL (the record's
    /// lifetime) runs out. `Ok(0)`.
    fn delete_expired_forwards(&self) -> Result<u64, Error> {
        Ok(0)
    }

    /// Sliding refresh: re-applies the session's idle lifetime from now (header only).
    fn touch(&self, id: &SessionId) -> Result<SessionInfo, Error> {
        self.rewrite_header(id, None)
    }

    /// Changes a session's expiry rule without decoding its data.
    fn set_expiry(&self, id: &SessionId, expiry: Expiry) -> Result<SessionInfo, Error> {
        self.rewrite_header(id, Some(expiry))
    }

    /// All session ids on the server under this prefix, streaming (`SCAN`, constant memory).
    fn ids(&self) -> Self::Ids {
        RedisIds {
            store: self.clone(),
            pattern: format!("{}{{*}}", glob_escape(&self.inner.prefix)),
            cursor: 0,
            batch: Vec::new(),
            done: false,
        }
    }

    /// Nothing to do: the server removes expired sessions itself (their TTL). Returns an
    /// empty report; kept so that code written against [`Backend`] runs unchanged.
    fn delete_expired(&self) -> Result<GcReport, Error> {
        Ok(GcReport::default())
    }

    /// Deletes sessions not checked in or touched for longer than `idle`, skipping held ones
    /// (judged again under the lease before deleting, as the directory store does).
    fn delete_idle(&self, idle: Duration) -> Result<GcReport, Error> {
        let start = Instant::now();
        let idle_ms = format::duration_ms(idle);
        let mut report = GcReport::default();
        let is_idle = |h: &Header| format::now_ms().saturating_sub(h.modified_ms) > idle_ms;
        for id in self.ids() {
            let id = id?;
            report.scanned += 1;
            match self.read_frame(&id, format::Activity::Honour) {
                Ok(Some((_, header))) if is_idle(&header) => {}
                Ok(_) => continue,
                Err(e) if matches!(e, Error::Redis { .. }) => return Err(e),
                Err(_) => {
                    report.damaged += 1;
                    continue;
                }
            }
            let (lease, bytes) = match Lease::acquire(self, &id, Wait::No) {
                Ok(taken) => taken,
                Err(Error::Busy { .. }) => {
                    report.skipped_busy += 1;
                    continue;
                }
                Err(e) if e.is_gone() => continue,
                Err(e) => return Err(e),
            };
            let len = bytes.len() as u64;
            match format::parse_frame(
                lease.location(),
                bytes,
                self.inner.settings.max_session_size,
            ) {
                Ok(frame) if is_idle(&self.with_activity(&id, &frame.header)?) => {
                    if lease.remove()? {
                        report.deleted += 1;
                        report.bytes_freed += len;
                    }
                }
                Ok(_) => {}
                Err(_) => report.damaged += 1,
            }
        }
        report.elapsed = start.elapsed();
        Ok(report)
    }

    /// How check-outs through this store (and its clones) got their leases so far.
    fn lock_stats(&self) -> LockStats {
        self.inner.counters.snapshot()
    }
}
