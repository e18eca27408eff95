//! The login race, over real HTTP: a request of the visitor that is in flight while a login
//! cycles the session id must neither clear the browser's new cookie nor fall into a fresh
//! anonymous session; a request arriving after the login with the old cookie (stolen, or
//! planted before the login: fixation) must not get the session.
//!
//! In-flight requests are held at a gate inside their handler (the test sees them arrive), the
//! login runs, then the gate opens. Every test runs over both backends (`dir`, and `redis`
//! against a real `redis-server` of its own): the forwarding record is the same in both.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::routing::get;
use sessiondir::axum::{SessionLayer, SessionMut, SessionRef, SessionRejection};
use sessiondir::{Backend, Dict, Observer, SessionId, Store};
use tokio::sync::watch;

use crate::common::{Server, TestStore, Waits, wait_until};

/// A store of one backend for a test, with what the test looks at in it.
struct Fixture<B> {
    store: B,
    /// Another handle on the same sessions, as a second worker process has, with an observer.
    reopen: Box<dyn Fn(Arc<dyn Observer>) -> B>,
    /// Keeps the directory or the redis-server alive for the test.
    _keep: Box<dyn std::any::Any>,
}

impl<B: Backend> Fixture<B> {
    /// The `counter` of session `id`, read without a lock (`None`: no live session).
    fn counter(&self, id: &SessionId) -> Option<i64> {
        let data: Option<Dict> = self.store.load(id).expect("load session");
        data.map(|d| d.get_i64("counter").unwrap_or(0))
    }

    /// How many sessions the store holds.
    fn sessions(&self) -> usize {
        let ids: Result<Vec<SessionId>, _> = self.store.ids().collect();
        ids.expect("list").len()
    }
}

fn dir_fixture() -> Fixture<Store> {
    let t = TestStore::new();
    let dir = t.dir.clone();
    Fixture {
        store: t.store.clone(),
        reopen: Box::new(move |observer| {
            Store::builder(&dir)
                .observer(observer)
                .open()
                .expect("open again")
        }),
        _keep: Box::new(t),
    }
}

#[cfg(feature = "redis")]
fn redis_fixture() -> Fixture<sessiondir::redis::RedisStore> {
    let redis = Arc::new(crate::common::RedisServer::start());
    let server = redis.clone();
    Fixture {
        store: redis.store(),
        reopen: Box::new(move |observer| {
            server
                .builder()
                .observer(observer)
                .open()
                .expect("open again")
        }),
        _keep: Box::new(redis),
    }
}

/// Each scenario, as a test over each backend.
macro_rules! over_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod dir {
            $(
                #[test]
                fn $scenario() {
                    super::$scenario(super::dir_fixture());
                }
            )*
        }

        #[cfg(feature = "redis")]
        mod redis {
            $(
                #[test]
                fn $scenario() {
                    // Without a redis-server: one message for the binary, and a skip (CI fails).
                    if !crate::support::redis::redis_available() {
                        return;
                    }
                    super::$scenario(super::redis_fixture());
                }
            )*
        }
    };
}

over_both_backends!(
    a_read_in_flight_across_a_login_follows_it_and_keeps_the_new_cookie,
    a_writer_waiting_across_a_login_follows_it_without_a_cookie_of_its_own,
    a_request_arriving_after_the_login_with_the_old_cookie_is_not_let_in,
);

const WAIT: Duration = Duration::from_secs(10);

/// Holds handlers until the test opens it, counting those that reached it.
#[derive(Clone)]
struct Gate {
    reached: Arc<AtomicUsize>,
    open: watch::Sender<bool>,
}

impl Gate {
    fn new() -> Gate {
        Gate {
            reached: Arc::new(AtomicUsize::new(0)),
            open: watch::Sender::new(false),
        }
    }

    async fn pass(&self) {
        self.reached.fetch_add(1, Ordering::SeqCst);
        let mut open = self.open.subscribe();
        open.wait_for(|o| *o).await.expect("the gate lives");
    }

    fn wait_reached(&self, n: usize) {
        wait_until(WAIT, "requests to reach the gate", || {
            self.reached.load(Ordering::SeqCst) >= n
        });
    }

    fn open(&self) {
        self.open.send_replace(true);
    }
}

fn app<B: Backend>(store: B, gate: Gate) -> Router {
    Router::new()
        .route("/count", get(count::<B>))
        .route("/peek", get(peek::<B>))
        .route("/login", get(login::<B>))
        .route("/gated-peek", get(gated_peek::<B>))
        .route("/gated-login", get(gated_login::<B>))
        .layer(SessionLayer::<Dict, B>::new(store))
        .with_state(gate)
}

/// "counter user" as the request saw them.
fn show(data: &Dict) -> String {
    let user = data.get_str("user").unwrap_or("-");
    format!("{} {user}", data.get_i64("counter").unwrap_or(0))
}

async fn count<B: Backend>(mut session: SessionMut<Dict, B>) -> String {
    session.increment("counter", 1).expect("integer");
    show(&session)
}

async fn peek<B: Backend>(session: SessionRef<Dict, B>) -> String {
    show(&session)
}

async fn login<B: Backend>(mut session: SessionMut<Dict, B>) -> Result<String, SessionRejection> {
    session.cycle_id().await?;
    session.insert("user", "alice");
    Ok(show(&session))
}

/// A read that arrived before the login and looks at its session only after it.
async fn gated_peek<B: Backend>(
    State(gate): State<Gate>,
    request: Request,
) -> Result<String, SessionRejection> {
    gate.pass().await;
    let (mut parts, _) = request.into_parts();
    let session = SessionRef::<Dict, B>::from_request_parts(&mut parts, &()).await?;
    Ok(show(&session))
}

/// A login that holds the session at the gate before cycling it.
async fn gated_login<B: Backend>(
    State(gate): State<Gate>,
    mut session: SessionMut<Dict, B>,
) -> Result<String, SessionRejection> {
    gate.pass().await;
    session.cycle_id().await?;
    session.insert("user", "alice");
    Ok(show(&session))
}

fn a_read_in_flight_across_a_login_follows_it_and_keeps_the_new_cookie<B: Backend>(t: Fixture<B>) {
    let gate = Gate::new();
    let server = Server::start(app(t.store.clone(), gate.clone()));
    let client = server.client();
    let old = client.get("/count", None).new_id();

    std::thread::scope(|scope| {
        let reader = scope.spawn(|| server.client().get_as("/gated-peek", &old));
        gate.wait_reached(1);
        let login = client.get_as("/login", &old);
        assert_eq!(
            (login.status, login.body.as_str()),
            (200, "1 alice"),
            "{login:?}"
        );
        let new = login.new_id();
        gate.open();
        let read = reader.join().expect("reader thread");
        // Without the forwarding record this answer removed the cookie (`sid=; Max-Age=0`),
        // and a browser receiving it after the login's answer dropped the new cookie.
        assert_eq!(
            (read.status, read.body.as_str()),
            (200, "1 alice"),
            "{read:?}"
        );
        assert!(
            read.cookies.is_empty(),
            "the in-flight read touched the cookie: {read:?}"
        );
        assert_eq!(t.counter(&new), Some(1));
    });
}

fn a_writer_waiting_across_a_login_follows_it_without_a_cookie_of_its_own<B: Backend>(
    t: Fixture<B>,
) {
    let gate = Gate::new();
    // Two workers on one directory, each with its own store handle, as two processes would
    // be: the writer's worker waits on the file lock and tells its observer.
    let login_worker = Server::start(app(t.store.clone(), gate.clone()));
    let waits = Arc::new(Waits::default());
    let observer: Arc<dyn Observer> = waits.clone();
    let other = (t.reopen)(observer);
    let writer_worker = Server::start(app(other, gate.clone()));
    let old = login_worker.client().get("/count", None).new_id();

    std::thread::scope(|scope| {
        let login = scope.spawn(|| login_worker.client().get_as("/gated-login", &old));
        gate.wait_reached(1); // the login holds the session
        let writer = scope.spawn(|| writer_worker.client().get_as("/count", &old));
        wait_until(WAIT, "the writer to wait for the session", || {
            waits.count() > 0 || writer.is_finished()
        });
        gate.open();
        let login = login.join().expect("login thread");
        assert_eq!(
            (login.status, login.body.as_str()),
            (200, "1 alice"),
            "{login:?}"
        );
        let new = login.new_id();
        let wrote = writer.join().expect("writer thread");
        // Without the record the writer woke to `Deleted`, counted in a fresh anonymous
        // session ("1 -") and sent its cookie, which replaced the login's in the browser.
        assert_eq!(
            (wrote.status, wrote.body.as_str()),
            (200, "2 alice"),
            "{wrote:?}"
        );
        assert!(
            wrote.cookies.is_empty(),
            "the follower told an id: {wrote:?}"
        );
        assert_eq!(
            t.counter(&new),
            Some(2),
            "the increment landed in the logged-in session"
        );
        assert_eq!(t.sessions(), 1, "a fresh session was created");
    });
}

fn a_request_arriving_after_the_login_with_the_old_cookie_is_not_let_in<B: Backend>(t: Fixture<B>) {
    let server = Server::start(app(t.store.clone(), Gate::new()));
    let client = server.client();
    let old = client.get("/count", None).new_id();
    let new = client.get_as("/login", &old).new_id();
    let forward = t
        .store
        .forwarded(&old)
        .expect("read")
        .expect("a forwarding record");
    assert_eq!(forward.to, new);

    // A read sees no session (not the logged-in one) and leaves the cookie alone: the
    // browser may be racing its own login, and then holds the new cookie.
    let read = client.get_as("/peek", &old);
    assert_eq!((read.status, read.body.as_str()), (200, "0 -"), "{read:?}");
    assert!(read.cookies.is_empty(), "{read:?}");
    // A writer is refused rather than given a fresh session whose cookie would replace the
    // login's; nothing is created, the logged-in session is untouched.
    let write = client.get_as("/count", &old);
    assert_eq!(write.status, 409, "{write:?}");
    assert!(write.cookies.is_empty(), "{write:?}");
    assert_eq!(t.sessions(), 1);
    assert_eq!(t.counter(&new), Some(1));
    assert_eq!(client.get_as("/peek", &new).body, "1 alice");
}
