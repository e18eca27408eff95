//! How a request ends decides what is written: success (2xx, 3xx) checks in; an error status,
//! a panic or a failed check-in write nothing and leave the session unlocked; a lock timeout
//! is a 503 with `Retry-After`.

use std::time::{Duration, Instant};

use sessiondir::axum::SessionLayer;
use sessiondir::{Dict, SessionId};

use crate::app;
use crate::common::{Client, HTTP_TIMEOUT, Server, TestStore, wait_until};

/// Lock timeout of the stores below: a session left locked shows as a 503 after this long.
const LOCK_TIMEOUT: Duration = Duration::from_millis(500);

fn short_timeout_store() -> TestStore {
    TestStore::with(|b| b.lock_timeout(LOCK_TIMEOUT))
}

/// A session with counter 1, made through `/count`.
fn session(client: &Client) -> SessionId {
    let reply = client.get("/count", None);
    assert_eq!((reply.status, reply.body.as_str()), (200, "1"));
    reply.new_id()
}

/// The session is free: the next `/count` gets it and sees `counter`.
fn assert_free_with(t: &TestStore, client: &Client, id: &SessionId, counter: i64) {
    assert!(!t.store.is_checked_out(id).expect("is_checked_out"));
    // A session left locked would make this wait for the lock timeout and answer 503.
    let next = client.get_as("/count", id);
    assert_eq!(
        (next.status, next.body.as_str()),
        (200, (counter + 1).to_string().as_str()),
        "{next:?}"
    );
}

#[test]
fn an_error_status_writes_nothing() {
    let t = short_timeout_store();
    let server = Server::start(app::app(t.store.clone()));
    let client = server.client();
    let id = session(&client);
    let generation = t.generation(&id);

    for status in [400, 404, 409, 500, 503] {
        let reply = client.get_as(&format!("/fail/{status}"), &id);
        assert_eq!(reply.status, status);
        assert_eq!(reply.body, "2", "the handler did increment in memory");
        assert!(reply.cookies.is_empty(), "{reply:?}");
        assert_eq!(t.counter(&id), Some(1), "status {status} must not be saved");
        assert_eq!(t.generation(&id), generation, "status {status} wrote");
    }
    assert_free_with(&t, &client, &id, 1);
}

#[test]
fn success_statuses_are_saved_redirects_included() {
    let t = short_timeout_store();
    let server = Server::start(app::app(t.store.clone()));
    let client = server.client();
    let id = session(&client);

    let created = client.get_as("/fail/201", &id);
    assert_eq!(created.status, 201);
    assert_eq!(t.counter(&id), Some(2));

    // ureq would follow the redirect: check the 303 through its effect on the store.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .timeout_global(Some(HTTP_TIMEOUT))
        .build()
        .into();
    let response = agent
        .get(format!("http://{}/redirect", server.addr))
        .header("Cookie", format!("sid={id}"))
        .call()
        .expect("GET /redirect");
    assert_eq!(response.status().as_u16(), 303);
    assert_eq!(t.counter(&id), Some(3));
    assert_free_with(&t, &client, &id, 3);
}

#[test]
fn a_panic_without_a_catch_writes_nothing_and_leaves_the_session_free() {
    let t = short_timeout_store();
    let server = Server::start(app::app(t.store.clone()));
    let client = server.client();
    let id = session(&client);
    let generation = t.generation(&id);

    // axum does not catch panics: the connection's task dies and the client gets no answer.
    let reply = client.try_get("/panic", Some(&format!("sid={id}")));
    assert!(reply.is_err(), "a panicking handler answered: {reply:?}");
    // The task's future, and with it the check-out, is dropped as the panic unwinds.
    wait_until(
        HTTP_TIMEOUT,
        "the panicked request to release the session",
        || !t.store.is_checked_out(&id).expect("is_checked_out"),
    );
    assert_eq!(t.counter(&id), Some(1));
    assert_eq!(t.generation(&id), generation);
    assert_free_with(&t, &client, &id, 1);
}

#[test]
fn a_panic_caught_inside_the_layer_is_a_500_and_writes_nothing() {
    let t = short_timeout_store();
    let server = Server::start(app::app_catching_panics(t.store.clone()));
    let client = server.client();
    let id = session(&client);
    let generation = t.generation(&id);

    let reply = client.get_as("/panic", &id);
    assert_eq!(reply.status, 500, "{reply:?}");
    assert!(reply.cookies.is_empty(), "{reply:?}");
    assert_eq!(t.counter(&id), Some(1));
    assert_eq!(t.generation(&id), generation);
    assert_free_with(&t, &client, &id, 1);
}

#[test]
fn a_failed_checkin_is_a_500_and_writes_nothing() {
    // 256 bytes: the counter fits, the 8 KiB blob of `/big` does not.
    let t = TestStore::with(|b| b.lock_timeout(LOCK_TIMEOUT).max_session_size(256));
    let server = Server::start(app::app(t.store.clone()));
    let client = server.client();
    let id = session(&client);
    let generation = t.generation(&id);

    let reply = client.get_as("/big", &id);
    assert_eq!(reply.status, 500, "{reply:?}");
    assert_eq!(reply.body, "the session could not be saved\n");
    assert_eq!(t.counter(&id), Some(1));
    assert_eq!(t.generation(&id), generation);
    let data: Dict = t.store.load(&id).expect("load").expect("exists");
    assert!(!data.contains_key("blob"));
    assert!(
        t.all_files().iter().all(|p| !p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(".tmp"))),
        "a temporary file was left: {:?}",
        t.all_files()
    );
    assert_free_with(&t, &client, &id, 1);

    // A new visitor's session that cannot be created: 500, no file, no cookie.
    let files = t.all_files().len();
    let fresh = client.get("/big", None);
    assert_eq!(fresh.status, 500, "{fresh:?}");
    assert!(fresh.cookies.is_empty(), "{fresh:?}");
    assert_eq!(t.all_files().len(), files);
}

#[test]
fn a_lock_timeout_is_a_503_with_retry_after() {
    let t = short_timeout_store();
    let layer = SessionLayer::<Dict>::new(t.store.clone()).retry_after(Duration::from_millis(2500));
    let server = Server::start(app::app_with(layer, t.store.clone()));
    let client = server.client();
    let id = session(&client);

    let held = t.store.checkout::<Dict>(&id).expect("hold the session");
    let start = Instant::now();
    let reply = client.get_as("/count", &id);
    assert_eq!(reply.status, 503, "{reply:?}");
    assert_eq!(reply.retry_after.as_deref(), Some("3"));
    assert!(reply.cookies.is_empty(), "{reply:?}");
    assert!(
        start.elapsed() >= LOCK_TIMEOUT,
        "answered before the lock timeout"
    );
    drop(held);

    assert_eq!(t.counter(&id), Some(1));
    assert_free_with(&t, &client, &id, 1);
}

#[test]
fn a_middleware_and_its_handler_share_one_checkout() {
    let t = short_timeout_store();
    let server = Server::start(app::app(t.store.clone()));
    let client = server.client();
    let id = session(&client);

    // A second check-out in the same request would wait for the first: a 503.
    let reply = client.get_as("/twice", &id);
    assert_eq!((reply.status, reply.body.as_str()), (200, "2"), "{reply:?}");
    let data: Dict = t.store.load(&id).expect("load").expect("exists");
    assert_eq!(data.get_i64("middleware"), Some(1));
    assert_eq!(data.get_i64("counter"), Some(2));
}

#[test]
fn two_exclusive_extractors_at_once_are_refused_not_deadlocked() {
    let t = short_timeout_store();
    let server = Server::start(app::app(t.store.clone()));
    let client = server.client();
    let id = session(&client);

    let start = Instant::now();
    let reply = client.get_as("/two-at-once", &id);
    assert_eq!(reply.status, 500, "{reply:?}");
    assert!(
        start.elapsed() < LOCK_TIMEOUT,
        "the second extraction waited for the first"
    );
    assert_eq!(t.counter(&id), Some(1));
    assert_free_with(&t, &client, &id, 1);
}

#[test]
fn without_the_layer_the_extractors_refuse() {
    let t = TestStore::new();
    let server = Server::start(app::without_layer(t.store.clone()));
    let client = server.client();
    for path in ["/count", "/peek"] {
        let reply = client.get(path, None);
        assert_eq!(reply.status, 500, "{path}: {reply:?}");
    }
    assert!(t.all_files().is_empty());
}
