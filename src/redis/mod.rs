//! [`RedisStore`]: the same sessions on a Redis or Valkey server (feature `redis`).
//!
//! For applications that outgrow one machine: every [`Backend`](crate::Backend) operation means the same as on
//! a session directory, so switching is one constructor ([`Store::open`](crate::Store::open)
//! → [`RedisStore::open`]) in code written against `B: Backend`.
//!
//! ```no_run
//! use sessiondir::redis::RedisStore;
//! use sessiondir::{Backend, Dict};
//!
//! fn visit<B: Backend>(store: &B) -> Result<i64, Box<dyn std::error::Error>> {
//!     let id = store.create(&Dict::new())?;
//!     let mut session = store.checkout::<Dict>(&id)?;
//!     let n = session.data_mut().increment("visits", 1)?;
//!     session.check_in()?;
//!     Ok(n)
//! }
//!
//! let store = RedisStore::open("redis://127.0.0.1:6379/0")?;
//! visit(&store)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! **How it holds a session.** A check-out takes a *lease*: a lock key holding
//! `"<fence>:<token>"` with a time to live ([`RedisBuilder::lease`], 30 s by default). The
//! token is 128 random bits of the holder's; the fencing number grows with every check-out of
//! the session. Check-in, release, lease extension, delete and id cycling are each one
//! server-side script that first compares the lease (and, for check-in, the fence stored with
//! the data) and changes nothing if they differ: a holder stalled past its lease (a stopped
//! process, a long pause) gets [`Error::Conflict`] and its write never lands, whatever the
//! next holder did meanwhile. Data and lease live in one hash slot (`{id}` hash tag).
//! Waiters subscribe to the session's release channel and are woken by the release itself,
//! polling as a fallback (a lease that runs out publishes nothing).
//!
//! **Differences from the directory store.** Expiry is the server's own TTL: an expired session
//! is removed by the server, so check-out reports [`Error::NotFound`] rather than
//! [`Error::Expired`] (a held session is never removed under its holder: a lease keeps the
//! data's TTL at least as long as itself, design §3.6), and [`RedisStore::delete_expired`](crate::Backend::delete_expired) has nothing to do. Waiters are not
//! queued (every waiter woken by a release tries once; one wins). A holder must finish (or
//! [`Checkout::extend_lease`](crate::Checkout#method.extend_lease)) within its lease. [`RedisStore::cycle_id`](crate::Backend::cycle_id) moves the session
//! between two hash slots, so it needs a standalone (or Sentinel-managed) server, not Redis
//! Cluster; it leaves the same forwarding record as the directory store
//! ([`forwarded`](crate::Backend::forwarded)), as a key with a 60 s TTL, so
//! [`delete_expired_forwards`](crate::Backend::delete_expired_forwards) has nothing to do either.
//!
//! **What failover can lose.** Redis replicates asynchronously. If the primary fails and a
//! replica that had not yet received the latest writes is promoted, the latest check-ins (and
//! leases) are lost: a session can go back to an earlier version, and a session held at the
//! moment of failover may be checked out a second time. Fencing still holds on the new
//! primary: the old holder's check-in names a lease the new primary either never saw or has
//! handed on, so it is refused rather than merged. What failover cannot do is produce a torn
//! session, mix two check-ins, or let a check-in land twice. No Redlock: one server (or one
//! primary) is the authority, as its own documentation recommends for correctness-critical
//! locks that need fencing. With `appendfsync always` and `min-replicas-to-write`, the loss
//! window narrows; see `docs/design.md`.

mod backend;
mod builder;
mod lease;
mod pool;
mod scripts;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use redis::{Connection, Value};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::backend::Checkout;
use crate::backend::sealed::Held as _;
use crate::error::Error;
use crate::format::{self, Header};
use crate::id::SessionId;
use crate::info::SessionInfo;
use crate::observer::Counters;
use crate::settings::{Expiry, Settings};

pub use builder::RedisBuilder;
pub use lease::Lease;
use lease::Wait;
use pool::Pool;

/// Sessions on a Redis or Valkey server, with the [`Backend`](crate::Backend) API. Cheap to clone (one
/// `Arc`), `Send + Sync`; clones share a connection pool and lock statistics.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    server: String,
    prefix: String,
    settings: Settings,
    lease: Duration,
    counters: Counters,
}

impl Inner {
    fn lease_ms(&self) -> u64 {
        format::duration_ms(self.lease).max(1)
    }
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("server", &self.inner.server)
            .field("prefix", &self.inner.prefix)
            .finish_non_exhaustive()
    }
}

/// The keys of one session (see the `scripts` module for what each holds).
pub(crate) struct Keys {
    data: String,
    lock: String,
    channel: String,
    /// The forwarding record a cycle of this id leaves (`scripts.rs`).
    forward: String,
}

impl Keys {
    fn new(prefix: &str, id: &SessionId) -> Self {
        let data = format!("{prefix}{{{id}}}");
        Keys {
            lock: format!("{data}:lock"),
            channel: format!("{data}:released"),
            forward: format!("{data}:fwd"),
            data,
        }
    }
}

/// How a header's expiry becomes a server TTL: a sliding lifetime is relative (so clock
/// differences between hosts do not matter), a fixed time is absolute.
fn expiry_args(h: &Header) -> (&'static str, u64) {
    if h.ttl_ms != 0 {
        ("px", h.ttl_ms)
    } else if h.expires_ms != 0 {
        ("pxat", h.expires_ms)
    } else {
        ("persist", 0)
    }
}

impl RedisStore {
    /// The server, as `redis://host:port/db`.
    pub fn server(&self) -> &str {
        &self.inner.server
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// The key holding session `id` (a hash: `frame` and `fence`).
    pub fn session_key(&self, id: &SessionId) -> String {
        Keys::new(&self.inner.prefix, id).data
    }

    /// Where a key lives, for errors: `redis://host:port/db/key`.
    fn location(&self, key: &str) -> PathBuf {
        PathBuf::from(format!("{}/{key}", self.inner.server))
    }

    /// Runs commands on a pooled connection, naming the operation and key on failure.
    fn run<R>(
        &self,
        op: &'static str,
        key: &str,
        f: impl FnOnce(&mut Connection) -> redis::RedisResult<R>,
    ) -> Result<R, Error> {
        self.inner.pool.run(f).map_err(|source| Error::Redis {
            op,
            key: self.location(key).display().to_string(),
            source,
        })
    }

    /// A reply no script of ours gives (a foreign script under the same name, or a proxy).
    fn unexpected(&self, op: &'static str, key: &str, reply: &Value) -> Error {
        Error::Redis {
            op,
            key: self.location(key).display().to_string(),
            source: redis::RedisError::from(std::io::Error::other(format!(
                "unexpected reply {reply:?}"
            ))),
        }
    }

    fn create_at<T: Serialize>(
        &self,
        id: &SessionId,
        data: &T,
        expiry: Expiry,
    ) -> Result<bool, Error> {
        let keys = Keys::new(&self.inner.prefix, id);
        let header = Header::new(expiry, format::now_ms());
        let location = self.location(&keys.data);
        let (bytes, header) = format::encode(
            &location,
            header,
            data,
            self.inner.settings.max_session_size,
        )?;
        let (mode, value) = expiry_args(&header);
        let created: i64 = self.run("create", &keys.data, |con| {
            scripts::CREATE
                .key(&keys.data)
                .key(&keys.lock)
                .arg(bytes.as_slice())
                .arg(mode)
                .arg(value)
                .invoke(con)
        })?;
        Ok(created == 1)
    }

    /// The session's frame as stored, without a lock, and its header with the recorded
    /// activity noted (`scripts::READ`; with [`format::Activity::Record`] this read is
    /// recorded when due). `Ok(None)`: no such session.
    fn read_frame(
        &self,
        id: &SessionId,
        activity: format::Activity,
    ) -> Result<Option<(format::Frame, Header)>, Error> {
        let key = self.session_key(id);
        let Some((bytes, active)) = self.read(&key, activity, "f")? else {
            return Ok(None);
        };
        let frame = format::parse_frame(
            &self.location(&key),
            bytes,
            self.inner.settings.max_session_size,
        )?;
        let mut header = frame.header;
        header.note_activity(active, format::now_ms());
        Ok(Some((frame, header)))
    }

    /// The session's header alone, with its recorded activity noted, as
    /// [`read_frame`](Self::read_frame) (the payload stays on the server).
    fn read_header(
        &self,
        id: &SessionId,
        activity: format::Activity,
    ) -> Result<Option<Header>, Error> {
        let key = self.session_key(id);
        let Some((bytes, active)) = self.read(&key, activity, "h")? else {
            return Ok(None);
        };
        let mut header = Header::decode(&self.location(&key), &bytes)?;
        header.note_activity(active, format::now_ms());
        Ok(Some(header))
    }

    /// One `scripts::READ` of `key`: the bytes (`what`: "f" frame, "h" header) and the
    /// recorded activity.
    fn read(
        &self,
        key: &str,
        activity: format::Activity,
        what: &str,
    ) -> Result<Option<(Vec<u8>, u64)>, Error> {
        let record = match activity {
            format::Activity::Record => "1",
            format::Activity::Honour => "0",
        };
        let reply: Value = self.run("load", key, |con| {
            scripts::READ
                .key(key)
                .arg(format::now_ms())
                .arg(record)
                .arg(what)
                .invoke(con)
        })?;
        match &reply {
            Value::Array(v) if matches!(v.as_slice(), [Value::Int(0)]) => Ok(None),
            Value::Array(v) => match v.as_slice() {
                [Value::Int(1), Value::BulkString(bytes), Value::Int(active)] => {
                    Ok(Some((bytes.clone(), u64::try_from(*active).unwrap_or(0))))
                }
                _ => Err(self.unexpected("load", key, &reply)),
            },
            _ => Err(self.unexpected("load", key, &reply)),
        }
    }

    /// `header` (as read under a lease) with the session's recorded activity noted: one
    /// `HGET` more, asked only when the header alone says the session is a quarter lifetime
    /// old (a fresher one could gain nothing from it).
    fn with_activity(&self, id: &SessionId, header: &Header) -> Result<Header, Error> {
        let mut noted = *header;
        let now = format::now_ms();
        if header.ttl_ms == 0 || !header.wants_activity(now) && !header.is_expired(now) {
            return Ok(noted);
        }
        let key = self.session_key(id);
        let active: Option<u64> = self.run("load", &key, |con| {
            redis::cmd("HGET").arg(&key).arg("active").query(con)
        })?;
        if let Some(active) = active {
            noted.note_activity(active, now);
        }
        Ok(noted)
    }

    /// The forwarding record a cycle of `id` left, if it is still there and unexpired (the
    /// server removes it after its minute; the record's own expiry is checked too, as the
    /// directory store does). A value that is not a record is [`Error::Corrupt`] naming the key.
    fn read_forward(&self, id: &SessionId) -> Result<Option<crate::info::Forward>, Error> {
        let key = Keys::new(&self.inner.prefix, id).forward;
        let bytes: Option<Vec<u8>> = self.run("read the forwarding record of", &key, |con| {
            redis::cmd("GET").arg(&key).query(con)
        })?;
        let Some(bytes) = bytes else {
            return Ok(None);
        };
        let forward = format::decode_forward(&self.location(&key), &bytes)?;
        Ok((forward.expires > std::time::SystemTime::now()).then_some(forward))
    }

    /// Whether somebody holds a lease on the session right now (no lease taken).
    pub fn is_checked_out(&self, id: &SessionId) -> Result<bool, Error> {
        let lock = Keys::new(&self.inner.prefix, id).lock;
        let n: i64 = self.run("look up the lease of", &lock, |con| {
            redis::cmd("EXISTS").arg(&lock).query(con)
        })?;
        Ok(n == 1)
    }

    fn checkout_with<T: DeserializeOwned>(
        &self,
        id: &SessionId,
        wait: Wait,
    ) -> Result<Checkout<T, RedisStore>, Error> {
        let (lease, frame) = self.acquire_live(id, wait)?;
        let data = frame.decode(lease.location())?;
        Ok(Checkout::from_parts(lease, frame, data))
    }

    /// Takes the lease and verifies the frame; expired (by the header and the recorded
    /// activity) is an error.
    fn acquire_live(&self, id: &SessionId, wait: Wait) -> Result<(Lease, format::Frame), Error> {
        let (lease, bytes) = Lease::acquire(self, id, wait)?;
        let frame = format::parse_frame(
            lease.location(),
            bytes,
            self.inner.settings.max_session_size,
        )?;
        // Expired by its header and by its recorded activity (reads keep a sliding session
        // alive, design §12); the frame keeps the header as written.
        if self
            .with_activity(id, &frame.header)?
            .is_expired(format::now_ms())
        {
            return Err(Error::Expired { id: *id });
        }
        Ok((lease, frame))
    }

    fn rewrite_header(&self, id: &SessionId, expiry: Option<Expiry>) -> Result<SessionInfo, Error> {
        let (mut lease, frame) = self.acquire_live(id, Wait::UpToTimeout)?;
        let header = frame.header.next(expiry, format::now_ms());
        let bytes = format::reframe(header, frame.payload());
        lease
            .write(&bytes, &frame.header, &header, true)
            .map_err(crate::fs::Failure::into_error)?;
        Ok(SessionInfo::from_header(*id, &header))
    }
}

impl<T> Checkout<T, RedisStore> {
    /// This check-out's fencing number: larger than that of every earlier check-out of the
    /// session. A check-in is refused unless the session still carries it.
    pub fn fence(&self) -> u64 {
        self.held().fence()
    }

    /// Extends the lease to the configured lease time from now, for requests that run long.
    /// [`Error::Conflict`] if it had already run out and someone else took the session.
    pub fn extend_lease(&mut self) -> Result<(), Error> {
        self.held_mut().extend()
    }
}

/// Iterator over the ids of a [`RedisStore`] (see [`RedisStore::ids`](crate::Backend::ids)).
pub struct RedisIds {
    store: RedisStore,
    pattern: String,
    cursor: u64,
    batch: Vec<Vec<u8>>,
    done: bool,
}

impl Iterator for RedisIds {
    type Item = Result<SessionId, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            while let Some(key) = self.batch.pop() {
                if let Some(id) = id_of_key(&key, &self.store.inner.prefix) {
                    return Some(Ok(id));
                }
            }
            if self.done {
                return None;
            }
            let scanned: Result<(u64, Vec<Vec<u8>>), Error> =
                self.store.run("list", &self.pattern, |con| {
                    redis::cmd("SCAN")
                        .arg(self.cursor)
                        .arg("MATCH")
                        .arg(&self.pattern)
                        .arg("COUNT")
                        .arg(1000)
                        .arg("TYPE")
                        .arg("hash")
                        .query(con)
                });
            match scanned {
                Ok((cursor, keys)) => {
                    self.cursor = cursor;
                    self.done = cursor == 0;
                    self.batch = keys;
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

/// The session id in a key `<prefix>{<id>}`, if it is one.
fn id_of_key(key: &[u8], prefix: &str) -> Option<SessionId> {
    let rest = key.strip_prefix(prefix.as_bytes())?;
    let inner = rest.strip_prefix(b"{")?.strip_suffix(b"}")?;
    SessionId::parse(std::str::from_utf8(inner).ok()?).ok()
}

/// Escapes a literal for a `SCAN MATCH` glob.
fn glob_escape(literal: &str) -> String {
    let mut out = String::with_capacity(literal.len());
    for c in literal.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_one_hash_slot_tag() {
        let id = SessionId::from_bytes([7; 20]);
        let keys = Keys::new("app:", &id);
        let tag = format!("{{{id}}}");
        for key in [&keys.data, &keys.lock, &keys.channel, &keys.forward] {
            assert!(key.starts_with("app:") && key.contains(&tag), "{key}");
        }
        assert_eq!(id_of_key(keys.data.as_bytes(), "app:"), Some(id));
        assert_eq!(id_of_key(keys.lock.as_bytes(), "app:"), None);
        assert_eq!(id_of_key(keys.forward.as_bytes(), "app:"), None);
        assert_eq!(id_of_key(b"app:{not-an-id}", "app:"), None);
    }

    #[test]
    fn scan_patterns_match_the_prefix_literally() {
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }
}
