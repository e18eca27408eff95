//! The extractors: [`SessionMut`] (exclusive, checked out until the response) and
//! [`SessionRef`] (a lock-free snapshot).

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use ::axum::extract::FromRequestParts;
use http::request::Parts;

use crate::{Backend, Checkout, Dict, Error, Expiry, SessionId, SessionInfo, Store};

use super::SessionData;
use super::cookie::{Presented, max_age};
use super::forward::{Gone, MAX_HOPS, gone};
use super::rejection::SessionRejection;
use super::slot::{Entry, Fresh, Slot, blocking};

const LOST: &str = "SessionMut used after its session was lost: a cycle_id() call was cancelled \
                    or its blocking task failed";

/// The request's session, checked out exclusively: no other request, in this process or any
/// other, can check it out until this request's response is ready.
///
/// Extracting it checks the session out (on Tokio's blocking pool; it waits for another
/// holder up to the store's lock timeout). It derefs to the session data; change it in place.
/// When the handler has returned, [`SessionLayer`](super::SessionLayer) checks the session in
/// if the response status is 2xx or 3xx, and releases it without writing otherwise (or if the
/// handler panicked). The check-in writes only if something changed
/// ([`Checkout::check_in_if_changed`]): the data encode to other bytes than were read, or
/// [`set_expiry`](Self::set_expiry) or [`cycle_id`](Self::cycle_id) was called. A request
/// that changed nothing leaves the session's file and generation as they were; a sliding
/// session ([`Expiry::Idle`]) is then kept alive as a [`SessionRef`]'s read keeps it (its
/// activity recorded lock-free, at most once per quarter lifetime).
///
/// A client without a valid, live session gets a fresh one: `T::default()`, created on disk
/// at check-in only if the handler changed it (took `&mut` through [`DerefMut`], or called
/// [`set_expiry`](Self::set_expiry)) and the response is a success;
/// [`cycle_id`](Self::cycle_id) creates it at once.
///
/// Rejections: [`SessionRejection::Unavailable`] (503, `Retry-After`) when the lock timeout
/// passes, [`SessionRejection::Store`] (500) when the session cannot be read.
///
/// Extracting it again in the same request (in a middleware and then in the handler, say)
/// hands over the same check-out; two `SessionMut`s alive at once in one request are refused
/// with [`SessionRejection::AlreadyCheckedOut`]. Moving it out of the request (into a spawned
/// task) is allowed but its changes are then never saved.
pub struct SessionMut<T = Dict, B: Backend = Store> {
    slot: Arc<Slot<T, B>>,
    /// `Some` from extraction until drop (see [`LOST`] for the one exception).
    entry: Option<Entry<T, B>>,
}

impl<T, B: Backend> SessionMut<T, B> {
    fn entry(&self) -> &Entry<T, B> {
        self.entry.as_ref().expect(LOST)
    }

    fn entry_mut(&mut self) -> &mut Entry<T, B> {
        self.entry.as_mut().expect(LOST)
    }

    /// The session's id; `None` for a fresh session not yet on disk.
    pub fn id(&self) -> Option<SessionId> {
        match self.entry() {
            Entry::CheckedOut(c) => Some(*c.id()),
            Entry::Fresh(_) => None,
        }
    }

    /// Whether this is a fresh session (the client had none, or an unknown, invalid or expired
    /// one) that is not on disk yet.
    pub fn is_new(&self) -> bool {
        matches!(self.entry(), Entry::Fresh(_))
    }

    /// The session's header as of check-out; `None` for a fresh session.
    pub fn info(&self) -> Option<SessionInfo> {
        match self.entry() {
            Entry::CheckedOut(c) => Some(c.info()),
            Entry::Fresh(_) => None,
        }
    }

    /// Changes the session's expiry rule, written at check-in (for a fresh session: the rule
    /// it is created with; this counts as a change, so the session will be created).
    pub fn set_expiry(&mut self, expiry: Expiry) {
        match self.entry_mut() {
            Entry::CheckedOut(c) => c.set_expiry(expiry),
            Entry::Fresh(f) => {
                f.expiry = Some(expiry);
                f.written = true;
            }
        }
    }

    /// Releases the session now without writing, whatever the response will be. A fresh
    /// session is forgotten.
    pub fn release(mut self) {
        drop(self.entry.take());
    }
}

impl<T: Send + 'static, B: Backend> SessionMut<T, B> {
    /// Deletes the session now, under the lock this request holds (logout), whatever the
    /// response will be: the response removes the cookie (`Max-Age=0`), and requests of any
    /// process waiting for the session get a fresh one. `Ok(false)`: the session was fresh
    /// (nothing on disk, nothing deleted).
    ///
    /// A later `SessionMut` in the same request gets a fresh session; if the handler writes to
    /// it, the response sets its cookie instead of removing the old one.
    ///
    /// Errors as [`Checkout::delete`]'s: a lock file removed from the store by hand while held
    /// ([`Error::LockLost`], nothing deleted), an I/O error; the session is then released.
    /// If this future is dropped before it completes, the deletion still happens, but the
    /// response may not remove the cookie (the next request with it then does).
    pub async fn delete(mut self) -> Result<bool, SessionRejection> {
        let Entry::CheckedOut(c) = self.entry.take().expect(LOST) else {
            return Ok(false);
        };
        match blocking(move || c.delete()).await? {
            Ok(()) => {
                let mut state = self.slot.state();
                state.deleted = true;
                state.presented_dead = true;
                state.cycled = None;
                Ok(true)
            }
            Err(e) => Err(SessionRejection::from_store(e, &self.slot)),
        }
    }
}

impl<T: SessionData, B: Backend> SessionMut<T, B> {
    /// Gives the session a new id, keeping its data and the check-out (call it when the user
    /// logs in or gains privileges: defence against session fixation). The old id stops
    /// existing at once; the response carries a cookie with the new id whatever its status.
    /// Unsaved changes stay unsaved until check-in.
    ///
    /// A fresh session is created on disk now (with its current data) and checked out.
    ///
    /// Not cancel-safe: if this future is dropped before it completes, the session is released
    /// without writing and using this `SessionMut` afterwards panics.
    ///
    /// The old id leaves a forwarding record for a minute ([`Store::forwarded`]): requests of
    /// this visitor already in flight with the old cookie follow it to the session and answer
    /// without touching the cookie, so none of them undoes the login in the browser; requests
    /// arriving later with the old id are not let in. A request that reached its session
    /// that way cannot cycle it: [`SessionRejection::Moved`].
    pub async fn cycle_id(&mut self) -> Result<SessionId, SessionRejection> {
        if self.slot.state().follows && matches!(self.entry(), Entry::CheckedOut(_)) {
            // Reached through a forwarding record: this response may not tell an id.
            return Err(SessionRejection::Moved);
        }
        let entry = self.entry.take().expect(LOST);
        let store = self.slot.store.clone();
        let (entry, result) = blocking(move || match entry {
            Entry::CheckedOut(mut c) => {
                let result = c.cycle_id();
                (Entry::CheckedOut(c), result)
            }
            Entry::Fresh(f) => match create_checked_out(&store, &f) {
                Ok(c) => {
                    let id = *c.id();
                    (Entry::CheckedOut(c), Ok(id))
                }
                Err(e) => (Entry::Fresh(f), Err(e)),
            },
        })
        .await?;
        if let Entry::CheckedOut(c) = &entry {
            // Even when the call failed after the move (directory sync), the session now
            // lives under the guard's id: the client must learn it.
            self.slot.state().cycled = Some((*c.id(), max_age(&c.info())));
        }
        self.entry = Some(entry);
        result.map_err(|e| SessionRejection::from_store(e, &self.slot))
    }
}

/// Creates a session holding `fresh`'s data and checks it out (nobody else knows the id yet,
/// so the check-out does not wait).
fn create_checked_out<T: SessionData, B: Backend>(
    store: &B,
    fresh: &Fresh<T>,
) -> Result<Checkout<T, B>, Error> {
    let id = match fresh.expiry {
        Some(expiry) => store.create_with_expiry(&fresh.data, expiry)?,
        None => store.create(&fresh.data)?,
    };
    store.checkout(&id)
}

impl<T, B: Backend> Deref for SessionMut<T, B> {
    type Target = T;

    fn deref(&self) -> &T {
        match self.entry() {
            Entry::CheckedOut(c) => c.data(),
            Entry::Fresh(f) => &f.data,
        }
    }
}

impl<T, B: Backend> DerefMut for SessionMut<T, B> {
    fn deref_mut(&mut self) -> &mut T {
        match self.entry_mut() {
            Entry::CheckedOut(c) => c.data_mut(),
            Entry::Fresh(f) => {
                f.written = true;
                &mut f.data
            }
        }
    }
}

impl<T, B: Backend> Drop for SessionMut<T, B> {
    /// Parks the session back in the request's slot for the layer (or a later extractor).
    fn drop(&mut self) {
        let mut state = self.slot.state();
        if let Some(entry) = self.entry.take() {
            state.parked = Some(entry);
        }
        state.lent = false;
    }
}

impl<T, B: Backend> fmt::Debug for SessionMut<T, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = match &self.entry {
            Some(Entry::CheckedOut(c)) => Some(*c.id()),
            _ => None,
        };
        f.debug_struct("SessionMut")
            .field("id", &id)
            .finish_non_exhaustive()
    }
}

impl<S, T, B> FromRequestParts<S> for SessionMut<T, B>
where
    S: Send + Sync,
    T: SessionData,
    B: Backend,
{
    type Rejection = SessionRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let slot = slot_of::<T, B>(parts)?;
        let (parked, known_dead) = {
            let mut state = slot.state();
            if state.lent {
                return Err(SessionRejection::AlreadyCheckedOut);
            }
            state.lent = true;
            (state.parked.take(), state.presented_dead)
        };
        // From here on the session is lent to `session`, whose drop gives it back (and clears
        // `lent`) whether extraction succeeds, fails or is abandoned.
        let mut session = SessionMut { slot, entry: None };
        let entry = match (parked, session.slot.presented) {
            (Some(entry), _) => entry,
            (None, Presented::Valid(id)) if !known_dead => check_out(&session.slot, id).await?,
            (None, _) => Entry::Fresh(Fresh::new()),
        };
        session.entry = Some(entry);
        Ok(session)
    }
}

/// The first check-out of the request: the presented id's session, or, if a login moved it
/// while this request was in flight, the session under its new id (`super::forward`), or a
/// fresh one if there is no such live session.
async fn check_out<T: SessionData, B: Backend>(
    slot: &Slot<T, B>,
    presented: SessionId,
) -> Result<Entry<T, B>, SessionRejection> {
    let mut id = presented;
    for hops in 0..=MAX_HOPS {
        let store = slot.store.clone();
        match blocking(move || store.checkout::<T>(&id)).await? {
            Ok(c) => {
                slot.state().follows = hops > 0;
                return Ok(Entry::CheckedOut(c));
            }
            Err(e) if e.is_gone() => {}
            Err(e) => return Err(SessionRejection::from_store(e, slot)),
        }
        match gone(slot, id).await? {
            Gone::Follow(to) => id = to,
            Gone::Moved if hops == 0 => {
                slot.state().moved = true;
                return Err(SessionRejection::Moved);
            }
            // Dead (or, at the end of a chain, a session deleted or expired since).
            Gone::Moved | Gone::Dead => break,
        }
    }
    slot.state().presented_dead = true;
    Ok(Entry::Fresh(Fresh::new()))
}

/// A lock-free snapshot of the request's session: the last checked-in version, read without
/// waiting, even while another request (in any process) holds the session checked out.
///
/// Use it for pages that only read the session, so they never queue behind a writer. It derefs
/// to the data; there is nothing to save. A client without a valid, live session gets
/// `T::default()` and nothing is created on disk. A session checked out by a
/// [`SessionMut`] of the same request is read as last checked in, without that request's
/// unsaved changes.
pub struct SessionRef<T = Dict, B: Backend = Store> {
    data: T,
    info: Option<SessionInfo>,
    /// Which layer's sessions (the backend picks the request's slot).
    _backend: PhantomData<fn() -> B>,
}

impl<T: fmt::Debug, B: Backend> fmt::Debug for SessionRef<T, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionRef")
            .field("data", &self.data)
            .field("info", &self.info)
            .finish()
    }
}

impl<T, B: Backend> SessionRef<T, B> {
    /// The session's id; `None` if the client has no live session.
    pub fn id(&self) -> Option<SessionId> {
        self.info.as_ref().map(|i| i.id)
    }

    /// Whether the client has no live session (the data is `T::default()`).
    pub fn is_new(&self) -> bool {
        self.info.is_none()
    }

    /// The header the data was read with; `None` if the client has no live session.
    pub fn info(&self) -> Option<&SessionInfo> {
        self.info.as_ref()
    }

    /// The data.
    pub fn into_inner(self) -> T {
        self.data
    }
}

impl<T, B: Backend> Deref for SessionRef<T, B> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.data
    }
}

impl<S, T, B> FromRequestParts<S> for SessionRef<T, B>
where
    S: Send + Sync,
    T: SessionData,
    B: Backend,
{
    type Rejection = SessionRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let slot = slot_of::<T, B>(parts)?;
        let fresh = SessionRef {
            data: T::default(),
            info: None,
            _backend: PhantomData,
        };
        let Presented::Valid(id) = slot.presented else {
            return Ok(fresh);
        };
        if slot.state().presented_dead {
            return Ok(fresh);
        }
        let mut id = id;
        for hops in 0..=MAX_HOPS {
            let store = slot.store.clone();
            // A session can be up to the store's maximum size: decode it off the executor.
            match blocking(move || store.snapshot::<T>(&id)).await? {
                Ok(Some(s)) => {
                    return Ok(SessionRef {
                        data: s.data,
                        info: Some(s.info),
                        _backend: PhantomData,
                    });
                }
                Ok(None) => {}
                Err(e) => return Err(SessionRejection::from_store(e, &slot)),
            }
            // Gone: moved by a login while this request was in flight (follow it), before
            // it arrived (no session, and the client's newer cookie stays), or dead.
            match gone(&slot, id).await? {
                Gone::Follow(to) => id = to,
                Gone::Moved if hops == 0 => {
                    slot.state().moved = true;
                    return Ok(fresh);
                }
                Gone::Moved | Gone::Dead => break,
            }
        }
        slot.state().presented_dead = true;
        Ok(fresh)
    }
}

fn slot_of<T: SessionData, B: Backend>(parts: &Parts) -> Result<Arc<Slot<T, B>>, SessionRejection> {
    parts
        .extensions
        .get::<Arc<Slot<T, B>>>()
        .cloned()
        .ok_or(SessionRejection::MissingLayer)
}
