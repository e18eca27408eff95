//! Sessions for [axum](https://docs.rs/axum) handlers, checked out for the whole request
//! (feature `axum`).
//!
//! Session middleware usually loads a session before the handler and saves it after, with no
//! lock in between. Two concurrent requests of one visitor (two tabs, a page and its XHRs, a
//! double click) both load version *n* and both save their own *n + 1*: the last writer wins
//! and the other update is lost. Neither the tower-sessions nor the actix-session store trait
//! can hold a lock across a request, so their adapters ([`crate::Store`] behind them included)
//! cannot prevent it. This module can: it holds sessiondir's exclusive check-out from the
//! moment a handler asks for the session until its response is ready.
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use sessiondir::axum::{GcTask, SessionLayer, SessionMut, SessionRef, SessionRejection};
//! use sessiondir::{Dict, Store};
//!
//! // Exclusive: checked out now, checked in when the handler returns 2xx/3xx.
//! async fn count(mut session: SessionMut<Dict>) -> String {
//!     let n = session.increment("counter", 1).unwrap_or_default();
//!     n.to_string()
//! }
//!
//! // Read-only: a lock-free snapshot, never waits for a writer.
//! async fn peek(session: SessionRef<Dict>) -> String {
//!     session.get_i64("counter").unwrap_or(0).to_string()
//! }
//!
//! // Logout: deleted under the request's check-out; the response removes the cookie.
//! async fn logout(session: SessionMut<Dict>) -> Result<&'static str, SessionRejection> {
//!     session.delete().await?;
//!     Ok("bye")
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Store::open("/var/lib/myapp/sessions")?;
//! // Expired sessions deleted every 10 minutes, no cron; stops with `_gc`.
//! let _gc = GcTask::spawn(store.clone(), std::time::Duration::from_secs(600));
//! let app = Router::new()
//!     .route("/", get(count))
//!     .route("/peek", get(peek))
//!     .route("/logout", get(logout))
//!     .layer(SessionLayer::<Dict>::new(store));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(())
//! # }
//! ```
//!
//! The layer and the extractors are generic over the [`Backend`](crate::Backend), with the
//! directory [`Store`](crate::Store) as the default: over Redis (feature `redis`) the same code
//! names the backend, `SessionLayer::<Dict, RedisStore>::new(store)`, `SessionMut<Dict,
//! RedisStore>`, `SessionRef<Dict, RedisStore>`, and the request holds the Redis lease instead
//! of the file lock.
//!
//! # How a request goes
//!
//! 1. [`SessionLayer`] reads the session cookie. A value that is not a well-formed id
//!    ([`SessionId::parse`](crate::SessionId::parse)) is never looked up. It puts a per-request
//!    *slot* into the request's extensions and calls the handler.
//! 2. [`SessionMut<T>`] checks the session out when the handler asks for it — on Tokio's
//!    blocking pool, waiting (if another request of any process holds it) up to the store's
//!    lock timeout — and derefs to `T`. If the client's id names no live session (unknown,
//!    expired, deleted), the handler gets a fresh `T::default()` instead: an id from a client
//!    is never adopted, so an attacker cannot plant a session id on a victim (fixation).
//! 3. When the handler returns, its `SessionMut` parks the check-out in the slot, and the layer
//!    looks at the response status:
//!    * **2xx or 3xx**: the session is checked in (atomically, on the blocking pool) before the
//!      response leaves, so the client's next request sees it. Redirects count as success for
//!      the POST–redirect–GET pattern: a login handler saves, then answers 303.
//!    * **anything else** (4xx, 5xx): the session is released without writing; the error
//!      response did not happen to the session.
//!    * **a panic**: the slot is dropped while the panic unwinds (or, under a catch-panic layer
//!      inside this one, the 500 it produces is an error status): released, nothing written,
//!      and never left locked.
//!    * **the check-in fails** (the data is over the store's maximum size, a disk error, a lock
//!      file removed by hand): the handler's response is replaced by a 500 carrying
//!      [`CheckinFailed`] in its extensions; the session is as last checked in.
//! 4. A fresh session is created only if the handler changed it (took `&mut`, set an expiry,
//!    cycled its id) and the status is a success: read-only visitors create no files.
//! 5. The response sets the cookie when the client needs to learn an id (a new session, or one
//!    moved by [`SessionMut::cycle_id`] — whatever the status, as the old id is gone), and on
//!    every check-in of a session that expires (so the cookie's lifetime slides with the
//!    session's). It removes the client's cookie (`Max-Age=0`) when it was not a well-formed
//!    id, or named no live session and nothing new was created.
//!
//! 6. [`SessionMut::delete`] (logout) deletes the session at once, whatever the status, and the
//!    response removes the cookie.
//!
//! # The login race
//!
//! [`SessionMut::cycle_id`] leaves a forwarding record under the old id for a minute
//! ([`Store::forwarded`](crate::Store::forwarded)). A request that arrived *before* the cycle
//! with the old cookie (a page's XHR, a second tab) follows it: it reads or checks out the
//! session under its new id, and its response sets no cookie, so it neither removes the new
//! cookie nor replaces it, and only the login's response ever tells the new id. A request
//! arriving *after* the cycle with the old id is not let in (it may carry a stolen or planted
//! cookie): [`SessionRef`] sees an empty session, [`SessionMut`] is refused with
//! [`SessionRejection::Moved`] (409), and neither touches the cookie. Over Redis no record is
//! left yet, and the race remains.
//!
//! # Expired sessions
//!
//! [`GcTask`] deletes expired sessions on an interval from a Tokio task of the application,
//! logs each pass through `tracing`, and stops with the application.
//!
//! [`SessionRef<T>`] is the read-only extractor: a lock-free snapshot of the last checked-in
//! version. It never waits, even while another request holds the session, so pages that only
//! read do not queue behind a writer (PHP's file sessions make every request wait). It sees
//! nothing a concurrent holder has not checked in yet.
//!
//! A lock timeout is answered `503 Service Unavailable` with `Retry-After` (see
//! [`SessionLayer::retry_after`]); a session that cannot be read (damaged file, data that does
//! not decode as `T`) `500`. Both are [`SessionRejection`]s; extract
//! `Result<SessionMut<T>, SessionRejection>` to handle them yourself.
//!
//! # The cookie
//!
//! It carries only the id. `HttpOnly` always (scripts cannot read it), `SameSite=Lax` by default
//! ([`SessionLayer::same_site`]), `Path=/`, no `Domain`, and `Secure` by default
//! ([`SessionLayer::secure`]; turn it off only to serve over plain HTTP, as the
//! `axum_workers` example does). `Max-Age` follows the session's expiry: its idle lifetime, or
//! the time left until a fixed expiry; a session that never expires gets a cookie that lasts
//! until the browser closes.
//!
//! # Guarantees
//!
//! * **No lost update** for handlers that use [`SessionMut`], across threads and worker
//!   processes sharing the store directory: the session is held from extraction until the
//!   check-in, so concurrent requests of one session run their read–modify–write one after the
//!   other, exactly as [`Store::checkout`](crate::Store::checkout) promises.
//! * **Reads never wait**: [`SessionRef`] takes no lock.
//! * **Nothing half-saved**: a response that is not a success, a panic, or a failed check-in
//!   leaves the session exactly as last checked in.
//! * **Never adopted**: a client's id is used only if a live session has it.
//! * **No blocking store call on an executor thread**: check-out, check-in, create, cycle and
//!   snapshot run in [`tokio::task::spawn_blocking`].
//!
//! # Not guaranteed
//!
//! * Handlers that do their own read–modify–write — read with [`SessionRef`] or
//!   [`Store::load`](crate::Store::load), then write through a separate check-out — lose
//!   updates like any lock-free store (the `web` tests show it). Take [`SessionMut`] for the
//!   whole handler.
//! * Serialisation has a price: requests of *one* session that take `SessionMut` run one at a
//!   time, each waiting on a blocking-pool thread; keep such handlers short and let pages that
//!   only read take [`SessionRef`]. Different sessions never wait for each other.
//! * A request waiting longer than the store's lock timeout gets a 503, not the session.
//! * Each waiting request occupies a thread of Tokio's blocking pool (512 by default), and
//!   check-ins use the same pool: if the waiters of one hot session fill it, the holder's
//!   check-in queues behind them until they time out. Keep the lock timeout short, or limit
//!   concurrency in front of the app (e.g. tower's `ConcurrencyLimit`).
//! * A session whose file is damaged, or whose data does not decode as `T` (the type changed
//!   in a deploy), answers 500 until it is deleted or expires: it is never silently replaced.
//! * The response is not sent until the check-in is done, and the session stays locked until
//!   then (a streamed body is streamed after the check-in, outside the lock).
//! * A `SessionMut` moved out of the request (into a spawned task) is never saved; the session
//!   stays locked until that task drops it.
//! * Two `SessionLayer`s on one cookie, or a handler checking the session out through the
//!   [`Store`](crate::Store) while holding a `SessionMut`, wait for themselves until the lock
//!   timeout.
//! * The extractors need a Tokio runtime (axum's) with its blocking pool.

mod cookie;
mod extract;
mod forward;
mod gc;
mod layer;
mod rejection;
mod slot;

pub use cookie::SameSite;
pub use extract::{SessionMut, SessionRef};
pub use gc::{GcPass, GcTask};
pub use layer::{CheckinFailed, SessionLayer, SessionService};
pub use rejection::SessionRejection;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// What a session's data must be: serializable (postcard), with a `Default` for fresh
/// sessions, and sendable to the blocking pool. [`Dict`](crate::Dict) is the ready-made
/// choice; any struct deriving `Serialize`, `Deserialize` and `Default` works too.
///
/// Implemented for every such type.
pub trait SessionData: Serialize + DeserializeOwned + Default + Send + 'static {}

impl<T: Serialize + DeserializeOwned + Default + Send + 'static> SessionData for T {}
