//! Sliding idle expiry kept alive by reads alone (issue 18, point 2): over HTTP, a visitor who
//! only reads keeps a session with a 2 s idle lifetime alive, nothing rewrites it (its
//! generation stays 1), every expiry decision agrees (exists, info, gc, check-out), and once the
//! reads stop it expires. Reads are throttled: a burst records one activity at most.

use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use sessiondir::actix::ActixStore;
use sessiondir::{Dict, SessionId, Store};

use crate::common::{http_get, serve};
use crate::support::store::TestStore;
use crate::support::wait::wait_until;

const TTL: Duration = Duration::from_secs(2);
/// The visitor's pace: three reads per lifetime.
const PACE: Duration = Duration::from_millis(700);
/// Six reads: the last lands 4.2 s after the write, past the 2 s the header alone promises.
const READS: u32 = 6;

/// A store whose sessions expire after 2 s without activity.
fn sliding_store() -> TestStore {
    TestStore::with(|b| b.idle_expiry(TTL).lock_timeout(Duration::from_secs(20)))
}

/// The session file's modification time, in nanoseconds.
fn mtime_ns(store: &Store, id: &SessionId) -> i128 {
    let meta = std::fs::metadata(store.session_path(id)).expect("stat the session file");
    i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec())
}

/// An axum server whose `/peek/<id>` answers the session's counter from a lock-free
/// `Store::load` (what `SessionRef` does), or 404 when it is missing or expired.
async fn serve_peek(store: Store) -> String {
    use axum::extract::{Path, State};
    use axum::http::StatusCode;
    use axum::routing::get;

    async fn peek(
        State(store): State<Store>,
        Path(sid): Path<String>,
    ) -> Result<String, StatusCode> {
        let id = SessionId::parse(&sid).map_err(|_| StatusCode::BAD_REQUEST)?;
        let loaded = tokio::task::spawn_blocking(move || store.load::<Dict>(&id))
            .await
            .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?
            .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
        match loaded {
            Some(dict) => Ok(dict.get_i64("counter").unwrap_or(0).to_string()),
            None => Err(StatusCode::NOT_FOUND),
        }
    }

    serve(
        axum::Router::new()
            .route("/peek/{sid}", get(peek))
            .with_state(store),
    )
    .await
}

/// GET `url`: the status and the body.
async fn get(url: String) -> (u16, String) {
    let reply = http_get(url, None).await;
    (reply.status, reply.body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_who_only_reads_keeps_the_session_alive_without_a_rewrite() {
    let ts = sliding_store();
    let store = ts.store.clone();
    let mut dict = Dict::new();
    dict.insert("counter", 7i64);
    let id = store.create(&dict).expect("create");
    let base = serve_peek(store.clone()).await;
    let url = format!("{base}/peek/{id}");

    let start = Instant::now();
    for n in 1..=READS {
        // Pacing the visitor, not an assertion: each read is judged by its answer.
        tokio::time::sleep(PACE).await;
        let (status, body) = get(url.clone()).await;
        assert_eq!(
            (status, body.as_str()),
            (200, "7"),
            "read {n}, {:?} after the write",
            start.elapsed()
        );
    }
    assert!(
        start.elapsed() > TTL * 2,
        "the reads outlived the header's own expiry"
    );

    // Every expiry decision sees the reads, and nothing was rewritten.
    let info = store.info(&id).expect("info").expect("the session file");
    assert_eq!(info.generation, 1, "reads rewrote the session");
    assert!(!info.is_expired(), "info: {info:?}");
    assert!(store.exists(&id).expect("exists"));
    let report = store.delete_expired().expect("gc");
    assert_eq!(
        report.deleted, 0,
        "gc deleted a session kept alive by reads"
    );
    let checkout = store
        .try_checkout::<Dict>(&id)
        .expect("a session kept alive by reads checks out");
    assert_eq!(checkout.data().get_i64("counter"), Some(7));
    checkout.release();

    // The reads stop: it expires a lifetime after the last one.
    wait_until(Duration::from_secs(10), "the session to expire", || {
        !store.exists(&id).expect("exists")
    });
    let (status, _) = get(url).await;
    assert_eq!(status, 404);
    assert_eq!(store.delete_expired().expect("gc").deleted, 1);
}

/// actix-session's `TtlExtensionPolicy::OnEveryRequest` calls `update_ttl` on every request that
/// leaves the state unchanged: it keeps the session alive without waiting for the lock and
/// without rewriting the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actix_on_every_request_extends_without_a_rewrite() {
    use actix_session::config::{PersistentSession, TtlExtensionPolicy};
    use actix_session::{Session, SessionMiddleware};
    use actix_web::cookie::{Cookie, Key};
    use actix_web::{App, HttpResponse, test, web};

    async fn write(session: Session) -> actix_web::Result<HttpResponse> {
        session.insert("n", 7)?;
        Ok(HttpResponse::Ok().finish())
    }
    async fn read(session: Session) -> actix_web::Result<HttpResponse> {
        let n = session.get::<i64>("n")?.unwrap_or(0);
        Ok(HttpResponse::Ok().body(n.to_string()))
    }

    let ts = sliding_store();
    let store = ActixStore::new(ts.store.clone());
    let ttl = actix_web::cookie::time::Duration::seconds(2);
    let app = test::init_service(
        App::new()
            .wrap(
                SessionMiddleware::builder(store.clone(), Key::generate())
                    .cookie_secure(false)
                    .session_lifecycle(
                        PersistentSession::default()
                            .session_ttl(ttl)
                            .session_ttl_extension_policy(TtlExtensionPolicy::OnEveryRequest),
                    )
                    .build(),
            )
            .route("/write", web::get().to(write))
            .route("/read", web::get().to(read)),
    )
    .await;
    let res = test::call_service(&app, test::TestRequest::get().uri("/write").to_request()).await;
    assert!(res.status().is_success());
    let cookie: Cookie<'static> = res
        .response()
        .cookies()
        .find(|c| c.name() == "id")
        .map(|c| c.into_owned())
        .expect("a session cookie");
    let ids: Vec<SessionId> = ts.store.ids().map(|r| r.expect("id")).collect();
    let [id] = ids[..] else {
        panic!("one session expected, found {ids:?}");
    };

    let start = Instant::now();
    for n in 1..=READS {
        tokio::time::sleep(PACE).await; // pacing the visitor
        let req = test::TestRequest::get()
            .uri("/read")
            .cookie(cookie.clone())
            .to_request();
        let res = test::call_service(&app, req).await;
        assert!(res.status().is_success());
        assert_eq!(
            test::read_body(res).await,
            "7",
            "read {n}, {:?} after the write",
            start.elapsed()
        );
    }
    let info = ts.store.info(&id).expect("info").expect("the session file");
    assert_eq!(
        info.generation, 1,
        "update_ttl rewrote a session whose data did not change"
    );
    assert!(!info.is_expired(), "info: {info:?}");
}

/// A burst of reads records the activity once: the first read of a session whose last
/// activity is a quarter lifetime old sets its file's time, the next ones find it fresh. A
/// read of a fresh session sets nothing.
#[test]
fn a_burst_of_reads_records_one_activity() {
    let ts = sliding_store();
    let store = &ts.store;
    let id = store.create(&Dict::new()).expect("create");
    let written = mtime_ns(store, &id);
    for _ in 0..50 {
        store.load::<Dict>(&id).expect("load").expect("live");
    }
    assert_eq!(
        mtime_ns(store, &id),
        written,
        "a fresh session's reads set its time"
    );

    // Older than a quarter of the 2 s lifetime.
    std::thread::sleep(TTL / 4 + Duration::from_millis(100));
    store.load::<Dict>(&id).expect("load").expect("live");
    let recorded = mtime_ns(store, &id);
    assert!(recorded > written, "the read recorded no activity");
    for _ in 0..50 {
        store.load::<Dict>(&id).expect("load").expect("live");
        store.mark_active(&id).expect("mark_active").expect("live");
    }
    assert_eq!(
        mtime_ns(store, &id),
        recorded,
        "a burst recorded more than once"
    );
    // Admin reads honour the activity but record none.
    std::thread::sleep(TTL / 4 + Duration::from_millis(100));
    store.info(&id).expect("info");
    store.inspect::<Dict>(&id).expect("inspect");
    store.delete_expired().expect("gc");
    assert_eq!(
        mtime_ns(store, &id),
        recorded,
        "an admin read recorded activity"
    );
    assert_eq!(store.info(&id).expect("info").expect("live").generation, 1);
}
