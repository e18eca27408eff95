//! The per-request slot: where a request's session lives between the moment a handler asks
//! for it and the moment the layer checks it in or lets it go.
//!
//! [`SessionLayer`](super::SessionLayer) makes one [`Slot`] per request and puts an `Arc` of it
//! into the request's extensions; the extractors find it there. A [`SessionMut`](super::SessionMut)
//! takes the session out of the slot (or checks it out, the first time) and puts it back when
//! it is dropped — at the latest when the handler returns, or while a panic unwinds it. After
//! the handler, the layer takes what is parked and checks it in or drops it. If the request is
//! abandoned (client gone, panic without a catch), the slot itself is dropped, and with it the
//! check-out: released without writing.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use crate::{Backend, Checkout, Expiry, SessionId, Store};

use super::cookie::Presented;
use super::layer::Settings;
use super::rejection::SessionRejection;

/// One request's session state, shared by the layer and the extractors.
pub(crate) struct Slot<T, B: Backend = Store> {
    pub store: B,
    pub settings: Arc<Settings>,
    /// What the request's cookie said.
    pub presented: Presented,
    /// When the layer received the request: only a request that arrived before a cycle of its
    /// id may follow that cycle's forwarding record (see `super::forward`).
    pub arrived: SystemTime,
    state: Mutex<State<T, B>>,
}

/// The mutable part of a [`Slot`].
pub(crate) struct State<T, B: Backend = Store> {
    /// The request's session while no [`SessionMut`](super::SessionMut) holds it.
    pub parked: Option<Entry<T, B>>,
    /// A `SessionMut` holds the session now (or is checking it out).
    pub lent: bool,
    /// An extractor looked the presented id up and found no live session: the client's
    /// cookie must be replaced or removed.
    pub presented_dead: bool,
    /// The id (and cookie lifetime) a [`SessionMut::cycle_id`](super::SessionMut::cycle_id)
    /// moved the session to, kept here in case the check-out is released before the end.
    pub cycled: Option<(SessionId, Option<Duration>)>,
    /// The checked-out session was reached through a forwarding record (the presented id was
    /// cycled while this request was in flight): the response must not tell its id.
    pub follows: bool,
    /// The presented id was cycled away before this request arrived: the response must not
    /// remove the cookie (the client's newer cookie would go with it).
    pub moved: bool,
    /// [`SessionMut::delete`](super::SessionMut::delete) deleted the session: the response
    /// removes the cookie.
    pub deleted: bool,
}

/// The request's exclusive session: checked out, or fresh (no file yet).
pub(crate) enum Entry<T, B: Backend = Store> {
    /// An existing session, locked until this is checked in or dropped.
    CheckedOut(Checkout<T, B>),
    /// A new session, created on the disk only if the handler wrote to it.
    Fresh(Fresh<T>),
}

/// A session that does not exist yet. Nobody else can know it, so it needs no lock.
pub(crate) struct Fresh<T> {
    pub data: T,
    /// Set by a mutable access: only then is a session file created.
    pub written: bool,
    /// An expiry rule set by the handler (else the store's default).
    pub expiry: Option<Expiry>,
}

impl<T: Default> Fresh<T> {
    pub fn new() -> Self {
        Fresh {
            data: T::default(),
            written: false,
            expiry: None,
        }
    }
}

impl<T, B: Backend> Slot<T, B> {
    pub fn new(store: B, settings: Arc<Settings>, presented: Presented) -> Self {
        Slot {
            store,
            settings,
            presented,
            arrived: SystemTime::now(),
            state: Mutex::new(State {
                parked: None,
                lent: false,
                presented_dead: false,
                cycled: None,
                follows: false,
                moved: false,
                deleted: false,
            }),
        }
    }

    /// The state. Nothing panics while holding this lock, but a poisoned lock is recovered
    /// anyway: the state stays consistent under every early exit.
    pub fn state(&self) -> MutexGuard<'_, State<T, B>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Runs a blocking store call on Tokio's blocking pool, never on an executor thread. If the
/// awaiting future is dropped, the call still finishes, and what it returns (a check-out, say)
/// is dropped with its result: released, nothing written.
pub(crate) async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> R + Send + 'static,
) -> Result<R, SessionRejection> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| SessionRejection::TaskFailed)
}
