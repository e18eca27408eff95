//! The application under test, served by in-process servers and by worker processes alike.
//!
//! Every route works on the session's integer `counter` (a `Dict`), so that a test can tell
//! exactly what was written: `/count` increments it under the exclusive check-out, `/lww` does
//! the same the way lock-free stores do (read, work, write), the others end in each of the
//! outcomes the layer distinguishes (error status, redirect, panic, failed check-in, cycled id).

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::{FromRequestParts, Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::{Next, from_fn};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use sessiondir::axum::{SessionLayer, SessionMut, SessionRef, SessionRejection};
use sessiondir::{Dict, Store};

/// Simulated request work while the session data is in hand (the same in `/count` and
/// `/lww`, so the two differ only in holding the check-out or not).
pub const WORK: Duration = Duration::from_millis(2);

/// The app with the default layer over `store`.
pub fn app(store: Store) -> Router {
    app_with(SessionLayer::new(store.clone()), store)
}

/// The app with a configured layer.
pub fn app_with(layer: SessionLayer<Dict>, store: Store) -> Router {
    routes().layer(layer).with_state(store)
}

/// The app with a panic catcher *inside* the session layer: a panicking handler becomes a 500
/// response, which the layer then sees.
pub fn app_catching_panics(store: Store) -> Router {
    routes()
        .layer(from_fn(catch_panic))
        .layer(SessionLayer::<Dict>::new(store.clone()))
        .with_state(store)
}

/// The routes without any session layer (the extractors must refuse to work).
pub fn without_layer(store: Store) -> Router {
    routes().with_state(store)
}

fn routes() -> Router<Store> {
    Router::new()
        .route("/start", get(start))
        .route("/count", get(count))
        .route("/peek", get(peek))
        .route("/lww", get(last_writer_wins))
        .route("/noop", get(noop))
        .route("/same", get(same))
        .route("/fail/{status}", get(fail))
        .route("/redirect", get(redirect))
        .route("/panic", get(panic))
        .route("/big", get(big))
        .route("/login", get(login))
        .route("/login-then-fail", get(login_then_fail))
        .route("/logout", get(logout))
        .route("/logout-then-fail", get(logout_then_fail))
        .route("/logout-then-count", get(logout_then_count))
        .route(
            "/twice",
            get(twice).route_layer(from_fn(count_in_middleware)),
        )
        .route("/two-at-once", get(two_at_once))
}

fn bump(session: &mut SessionMut) -> i64 {
    session
        .increment("counter", 1)
        .expect("the counter is an integer")
}

/// Sets the counter to 0 (creating the session for a new visitor).
async fn start(mut session: SessionMut) -> String {
    session.insert("counter", 0i64);
    "0".to_owned()
}

/// Increments the counter under the check-out and answers its new value.
async fn count(mut session: SessionMut) -> String {
    let n = bump(&mut session);
    tokio::time::sleep(WORK).await;
    n.to_string()
}

/// Answers the counter from a lock-free snapshot.
async fn peek(session: SessionRef) -> String {
    session.get_i64("counter").unwrap_or(0).to_string()
}

/// The lost-update pattern of lock-free session stores: read a snapshot, work, then check out
/// only to write back `read + 1`. Concurrent requests overwrite each other.
async fn last_writer_wins(
    State(store): State<Store>,
    session: SessionRef,
) -> Result<String, StatusCode> {
    let id = session.id().ok_or(StatusCode::BAD_REQUEST)?;
    let n = session.get_i64("counter").unwrap_or(0) + 1;
    tokio::time::sleep(WORK).await;
    tokio::task::spawn_blocking(move || {
        let mut checkout = store.checkout::<Dict>(&id).expect("check out to write");
        checkout.data_mut().insert("counter", n);
        checkout.check_in().expect("check in");
    })
    .await
    .expect("blocking write");
    Ok(n.to_string())
}

/// Takes the session and changes nothing.
async fn noop(session: SessionMut) -> &'static str {
    let _ = session.id();
    "ok"
}

/// Takes the session mutably and writes the counter's own value back: a change that changes
/// nothing.
async fn same(mut session: SessionMut) -> String {
    let n = session.get_i64("counter").unwrap_or(0);
    session.insert("counter", n);
    n.to_string()
}

/// Increments, then answers with the status from the path: the increment must not be saved
/// unless the status is a success.
async fn fail(mut session: SessionMut, Path(status): Path<u16>) -> Response {
    let n = bump(&mut session);
    let status = StatusCode::from_u16(status).expect("a status code");
    (status, n.to_string()).into_response()
}

/// Increments, then redirects (POST-redirect-GET): saved.
async fn redirect(mut session: SessionMut) -> Redirect {
    bump(&mut session);
    Redirect::to("/peek")
}

/// Increments, then panics while holding the check-out.
async fn panic(mut session: SessionMut) -> String {
    let n = bump(&mut session);
    panic!("handler panics holding the session (counter would be {n})");
}

/// Increments and stores 8 KiB: over a small store's maximum, so the check-in fails.
async fn big(mut session: SessionMut) -> &'static str {
    bump(&mut session);
    session.insert("blob", "x".repeat(8192));
    "stored"
}

/// Privilege change: new id, then marks the session as logged in.
async fn login(mut session: SessionMut) -> Result<String, SessionRejection> {
    let id = session.cycle_id().await?;
    session.insert("user", "alice");
    Ok(id.to_string())
}

/// Cycles the id, marks the session, then fails: the mark is not saved, the move is.
async fn login_then_fail(mut session: SessionMut) -> Result<StatusCode, SessionRejection> {
    session.cycle_id().await?;
    session.insert("user", "mallory");
    Ok(StatusCode::INTERNAL_SERVER_ERROR)
}

/// Logout: deletes the session; answers whether there was one.
async fn logout(session: SessionMut) -> Result<String, SessionRejection> {
    Ok(session.delete().await?.to_string())
}

/// Deletes the session, then answers an error: the deletion stands all the same.
async fn logout_then_fail(session: SessionMut) -> Result<StatusCode, SessionRejection> {
    session.delete().await?;
    Ok(StatusCode::INTERNAL_SERVER_ERROR)
}

/// Deletes the session, then counts in a fresh one (taken again in the same request).
async fn logout_then_count(
    session: SessionMut,
    request: Request,
) -> Result<String, SessionRejection> {
    session.delete().await?;
    let (mut parts, _) = request.into_parts();
    let mut fresh = SessionMut::<Dict>::from_request_parts(&mut parts, &()).await?;
    Ok(bump(&mut fresh).to_string())
}

/// A middleware and its handler both take the session: one check-out serves both.
async fn count_in_middleware(mut session: SessionMut, request: Request, next: Next) -> Response {
    session
        .increment("middleware", 1)
        .expect("an integer counter");
    drop(session);
    next.run(request).await
}

async fn twice(mut session: SessionMut) -> String {
    bump(&mut session).to_string()
}

/// Asks for the session twice at once: the second extraction is refused (waiting would wait
/// for the first), so the handler never runs.
async fn two_at_once(mut first: SessionMut, mut second: SessionMut) -> String {
    bump(&mut first);
    bump(&mut second).to_string()
}

/// Turns a panic of the inner service into a 500 response (a hand-written catch-panic layer).
async fn catch_panic(request: Request, next: Next) -> Response {
    match (CatchUnwind {
        inner: Box::pin(next.run(request)),
    })
    .await
    {
        Some(response) => response,
        None => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// Polls `inner`, answering `None` if a poll panics.
struct CatchUnwind<F> {
    inner: Pin<Box<F>>,
}

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Option<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.inner.as_mut();
        match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Ready(out)) => Poll::Ready(Some(out)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(None),
        }
    }
}
