//! [`Lease`]: a Redis check-out's hold on a session, and how it is taken.
//!
//! Taking: one `ACQUIRE` script call. If the session is held, the caller subscribes to the
//! session's release channel, tries again (a release may have come before the subscription),
//! and then waits for a release message or a timeout: the shorter of the back-off delay
//! (1 ms doubling up to the poll delay), the time left on the holder's lease (a lease that
//! runs out publishes nothing) and the time left before the lock timeout. Redis keeps no
//! queue: every waiter woken by a release tries once and one of them wins.
//!
//! Holding: the lease runs out after the configured lease time unless extended; every script
//! that acts for the holder first checks the lease string, so a holder whose lease ran out gets
//! [`Error::Conflict`] and changes nothing.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use redis::{Connection, Value};

use super::scripts;
use super::{Keys, RedisStore};
use crate::backend::sealed;
use crate::error::Error;
use crate::format::{self, Header};
use crate::fs::Failure;
use crate::id::SessionId;
use crate::observer::{AcquiredBy, Acquisition};

/// Whether a check-out waits for a holder.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    No,
    UpToTimeout,
}

/// A held lease on one session. Dropping it releases the session (best effort: if the server
/// cannot be reached, the lease runs out by itself).
pub struct Lease {
    store: RedisStore,
    id: SessionId,
    keys: Keys,
    /// `"<fence>:<token>"`, the lock key's value while we hold it.
    lease: String,
    fence: u64,
    acquisition: Acquisition,
    location: PathBuf,
    released: bool,
}

/// One attempt's outcome.
enum Attempt {
    /// No such session.
    Gone,
    /// Somebody holds it; their lease has this many ms left (-1: unknown).
    Held(i64),
    /// Ours.
    Taken(Taken),
}

/// What a successful attempt returns: the fencing number and the session's frame.
struct Taken {
    fence: u64,
    frame: Option<Vec<u8>>,
}

impl Lease {
    /// Takes the lease on `id` (waiting for a holder if `wait` says so), returning it with the
    /// session's frame as stored.
    pub(crate) fn acquire(
        store: &RedisStore,
        id: &SessionId,
        wait: Wait,
    ) -> Result<(Lease, Vec<u8>), Error> {
        let inner = &*store.inner;
        let keys = Keys::new(&inner.prefix, id);
        let token = new_token()?;
        let start = Instant::now();
        match attempt(store, &keys, &token)? {
            Attempt::Gone => return Err(Error::NotFound { id: *id }),
            Attempt::Taken(taken) => {
                return store.granted(id, keys, &token, taken, AcquiredBy::Immediately, start);
            }
            Attempt::Held(_) => {}
        }
        if wait == Wait::No {
            inner.counters.busy();
            return Err(Error::Busy { id: *id });
        }
        if let Some(observer) = &inner.settings.observer {
            observer.waiting(id);
        }
        let deadline = start + inner.settings.lock_timeout;
        let mut subscriber = inner.pool.take();
        let mut events = match subscriber
            .as_mut()
            .map_err(|e| e.clone())
            .and_then(|con| subscribe(con, &keys.channel))
        {
            Ok(pubsub) => Some(pubsub),
            Err(source) => {
                if let Some(observer) = &inner.settings.observer {
                    let key = store.location(&keys.channel);
                    observer.events_unavailable(&Error::Redis {
                        op: "subscribe to",
                        key: key.display().to_string(),
                        source,
                    });
                }
                None
            }
        };
        // Whether the subscriber connection is in a known state, to go back to the pool.
        let mut reusable = events.is_some();
        let mut delay = Duration::from_millis(1);
        let mut by = AcquiredBy::Poll;
        let mut pttl;
        let outcome = loop {
            match attempt(store, &keys, &token) {
                Err(e) => break Err(e),
                Ok(Attempt::Gone) => break Err(Error::Deleted { id: *id }),
                Ok(Attempt::Taken(taken)) => break Ok(taken),
                Ok(Attempt::Held(left)) => pttl = left,
            }
            let now = Instant::now();
            if now >= deadline {
                inner.counters.timed_out();
                break Err(Error::LockTimeout {
                    id: *id,
                    waited: start.elapsed(),
                });
            }
            let mut pause = delay.min(deadline - now);
            if let Ok(left) = u64::try_from(pttl) {
                pause = pause.min(Duration::from_millis(left + 1));
            }
            let woke = match events.as_mut() {
                Some(pubsub) => wait_for_release(pubsub, pause),
                None => {
                    std::thread::sleep(pause);
                    Woke::Timeout
                }
            };
            by = match woke {
                Woke::Release => AcquiredBy::Event,
                Woke::Timeout => {
                    delay = (delay * 2).min(inner.settings.poll_delay);
                    AcquiredBy::Poll
                }
                Woke::Broken => {
                    events = None;
                    reusable = false;
                    AcquiredBy::Poll
                }
            };
        };
        if let Some(pubsub) = events.as_mut() {
            let _ = pubsub.set_read_timeout(Some(inner.pool.io_timeout()));
        }
        drop(events); // unsubscribes
        if let Ok(con) = subscriber
            && reusable
        {
            inner.pool.give_back(con, None);
        }
        store.granted(id, keys, &token, outcome?, by, start)
    }

    /// The fencing number of this check-out: larger than that of every earlier check-out of
    /// the session.
    pub fn fence(&self) -> u64 {
        self.fence
    }

    /// Extends the lease to the configured lease time from now. [`Error::Conflict`] if it had
    /// already run out and someone else took the session (or nobody holds it now).
    pub fn extend(&mut self) -> Result<(), Error> {
        let lease_ms = self.store.inner.lease_ms();
        let reply: Value = self.run("extend the lease of", |con| {
            scripts::EXTEND
                .key(&self.keys.lock)
                .key(&self.keys.data)
                .arg(&self.lease)
                .arg(lease_ms)
                .invoke(con)
        })?;
        match status(&reply) {
            Some(1) => Ok(()),
            _ => Err(self.conflict(&reply)),
        }
    }

    fn run<R>(
        &self,
        op: &'static str,
        f: impl FnOnce(&mut Connection) -> redis::RedisResult<R>,
    ) -> Result<R, Error> {
        self.store.run(op, &self.keys.data, f)
    }

    /// The error for a script that found the lease not ours: who holds the session now.
    fn conflict(&self, reply: &Value) -> Error {
        let found = match reply {
            Value::Array(items) => match (items.get(1), items.get(2)) {
                (Some(Value::BulkString(lease)), _) => fence_of(lease),
                (_, Some(fence)) => as_u64(fence),
                _ => None,
            },
            _ => None,
        };
        Error::Conflict {
            id: self.id,
            held: self.fence,
            found,
        }
    }
}

impl RedisStore {
    /// Builds the lease once an attempt took the session.
    fn granted(
        &self,
        id: &SessionId,
        keys: Keys,
        token: &str,
        Taken { fence, frame }: Taken,
        by: AcquiredBy,
        start: Instant,
    ) -> Result<(Lease, Vec<u8>), Error> {
        let inner = &*self.inner;
        let acquisition = Acquisition {
            by,
            waited: start.elapsed(),
        };
        inner.counters.acquired(by);
        if by != AcquiredBy::Immediately
            && let Some(observer) = &inner.settings.observer
        {
            observer.acquired(id, &acquisition);
        }
        let location = self.location(&keys.data);
        let lease = Lease {
            store: self.clone(),
            id: *id,
            lease: format!("{fence}:{token}"),
            fence,
            acquisition,
            location,
            keys,
            released: false,
        };
        // A hash without a frame is not one of ours (or was damaged by hand): the lease
        // is released by the drop and the session left as it is.
        let frame = frame
            .ok_or_else(|| Error::corrupt(&lease.location, crate::error::Corruption::Empty))?;
        Ok((lease, frame))
    }
}

impl sealed::Held for Lease {
    fn id(&self) -> &SessionId {
        &self.id
    }

    fn location(&self) -> &Path {
        &self.location
    }

    fn acquisition(&self) -> &Acquisition {
        &self.acquisition
    }

    fn max_payload(&self) -> u64 {
        self.store.inner.settings.max_session_size
    }

    fn mark_active(&self) -> Result<bool, Error> {
        Ok(crate::Backend::mark_active(&self.store, &self.id)?.is_some())
    }

    fn write(
        &mut self,
        bytes: &[u8],
        _previous: &Header,
        next: &Header,
        then_release: bool,
    ) -> Result<(), Failure> {
        let (mode, value) = super::expiry_args(next);
        let reply: Value = self
            .run("check in", |con| {
                scripts::CHECK_IN
                    .key(&self.keys.data)
                    .key(&self.keys.lock)
                    .arg(&self.lease)
                    .arg(self.fence)
                    .arg(bytes)
                    .arg(mode)
                    .arg(value)
                    .arg(if then_release { "1" } else { "0" })
                    .arg(&self.keys.channel)
                    .invoke(con)
            })
            .map_err(Failure::Before)?;
        match status(&reply) {
            Some(1) => {
                self.released = then_release;
                Ok(())
            }
            _ => Err(Failure::Before(self.conflict(&reply))),
        }
    }

    fn remove(mut self) -> Result<bool, Error> {
        let reply: Value = self.run("delete", |con| {
            scripts::REMOVE
                .key(&self.keys.data)
                .key(&self.keys.lock)
                .arg(&self.lease)
                .arg(&self.keys.channel)
                .invoke(con)
        })?;
        match status(&reply) {
            Some(1) => {
                self.released = true;
                Ok(item(&reply, 1).and_then(as_u64) == Some(1))
            }
            _ => Err(self.conflict(&reply)),
        }
    }

    fn cycle(&mut self) -> Result<SessionId, Error> {
        loop {
            let new_id = SessionId::generate()?;
            let new_keys = Keys::new(&self.store.inner.prefix, &new_id);
            let token = new_token()?;
            // The record the directory store leaves too (design §3.6), set by the script in
            // the step that moves the session: whoever finds the old id gone finds it.
            let record = format::encode_forward(&new_id, SystemTime::now());
            let lifetime_ms = format::duration_ms(format::FORWARD_LIFETIME);
            let reply: Value = self.run("cycle the id of", |con| {
                scripts::CYCLE
                    .key(&self.keys.data)
                    .key(&self.keys.lock)
                    .key(&new_keys.data)
                    .key(&new_keys.lock)
                    .key(&self.keys.forward)
                    .arg(&self.lease)
                    .arg(&self.keys.channel)
                    .arg(&token)
                    .arg(record.as_slice())
                    .arg(lifetime_ms)
                    .invoke(con)
            })?;
            match status(&reply) {
                Some(2) => {
                    let fence = item(&reply, 1).and_then(as_u64).unwrap_or_default();
                    self.location = self.store.location(&new_keys.data);
                    self.id = new_id;
                    self.keys = new_keys;
                    self.fence = fence;
                    self.lease = format!("{fence}:{token}");
                    return Ok(new_id);
                }
                Some(1) => continue, // the new id is taken: draw another
                Some(3) => {
                    self.released = true;
                    return Err(Error::NotFound { id: self.id });
                }
                _ => return Err(self.conflict(&reply)),
            }
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        let _ = self.store.inner.pool.run(|con| {
            scripts::RELEASE
                .key(&self.keys.lock)
                .arg(&self.lease)
                .arg(&self.keys.channel)
                .invoke::<i64>(con)
        });
    }
}

/// One `ACQUIRE` call.
fn attempt(store: &RedisStore, keys: &Keys, token: &str) -> Result<Attempt, Error> {
    let lease_ms = store.inner.lease_ms();
    let reply: Value = store.run("check out", &keys.data, |con| {
        scripts::ACQUIRE
            .key(&keys.data)
            .key(&keys.lock)
            .arg(token)
            .arg(lease_ms)
            .invoke(con)
    })?;
    match status(&reply) {
        Some(0) => Ok(Attempt::Gone),
        Some(1) => Ok(Attempt::Held(
            item(&reply, 1).and_then(as_i64).unwrap_or(-1),
        )),
        Some(2) => {
            let fence = item(&reply, 1).and_then(as_u64).unwrap_or_default();
            let frame = match item(&reply, 2) {
                Some(Value::BulkString(bytes)) => Some(bytes.clone()),
                _ => None,
            };
            Ok(Attempt::Taken(Taken { fence, frame }))
        }
        _ => Err(store.unexpected("check out", &keys.data, &reply)),
    }
}

/// Subscribes a connection to a release channel (if that fails, the waiter polls).
fn subscribe<'a>(con: &'a mut Connection, channel: &str) -> redis::RedisResult<redis::PubSub<'a>> {
    let mut pubsub = con.as_pubsub();
    pubsub.subscribe(channel)?;
    Ok(pubsub)
}

enum Woke {
    Release,
    Timeout,
    Broken,
}

/// Waits up to `pause` for a message on the subscribed release channel.
fn wait_for_release(pubsub: &mut redis::PubSub<'_>, pause: Duration) -> Woke {
    // A zero read timeout is refused by the socket: wait at least 1 ms.
    if pubsub
        .set_read_timeout(Some(pause.max(Duration::from_millis(1))))
        .is_err()
    {
        return Woke::Broken;
    }
    match pubsub.get_message() {
        Ok(_) => Woke::Release,
        Err(e) if e.is_timeout() => Woke::Timeout,
        Err(_) => Woke::Broken,
    }
}

/// 128 bits from the OS CSPRNG, hex: the holder's secret part of the lease string.
fn new_token() -> Result<String, Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| Error::Random {
        source: std::io::Error::from(e),
    })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The fencing number in a lease string `"<fence>:<token>"`.
fn fence_of(lease: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(lease).ok()?;
    text.split_once(':')?.0.parse().ok()
}

pub(crate) fn status(reply: &Value) -> Option<i64> {
    match reply {
        Value::Int(n) => Some(*n),
        Value::Array(items) => items.first().and_then(as_i64),
        _ => None,
    }
}

pub(crate) fn item(reply: &Value, i: usize) -> Option<&Value> {
    match reply {
        Value::Array(items) => items.get(i),
        _ => None,
    }
}

fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Int(n) => Some(*n),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        _ => None,
    }
}

pub(crate) fn as_u64(v: &Value) -> Option<u64> {
    as_i64(v).and_then(|n| u64::try_from(n).ok())
}
