//! Privilege change: `SessionMut::cycle_id` moves the session to a new id, the response
//! carries the new cookie, and the old id is gone.

use sessiondir::Dict;

use crate::app;
use crate::common::{Server, TestStore};

#[test]
fn cycle_id_moves_the_session_and_sends_the_new_cookie() {
    let t = TestStore::new();
    let server = Server::start(app::app(t.store.clone()));
    let client = server.client();
    let old = client.get("/count", None).new_id();
    assert_eq!(client.get_as("/count", &old).body, "2");

    let login = client.get_as("/login", &old);
    assert_eq!(login.status, 200, "{login:?}");
    let new = login.new_id();
    assert_ne!(new, old);
    assert_eq!(login.body, new.to_string(), "the handler saw the new id");
    assert!(
        !t.store.exists(&old).expect("exists"),
        "the old id still exists"
    );
    let data: Dict = t.store.load(&new).expect("load").expect("moved session");
    assert_eq!(data.get_i64("counter"), Some(2), "the data moved along");
    assert_eq!(data.get_str("user"), Some("alice"), "the change was saved");
    assert_eq!(t.session_files().len(), 1);

    // The old cookie is no credential any more: a request arriving with it after the login
    // gets no session, and no cookie that would replace the new one (login_race.rs).
    let stale = client.get_as("/count", &old);
    assert_eq!(stale.status, 409, "{stale:?}");
    assert!(stale.cookies.is_empty(), "{stale:?}");
    assert_eq!(t.counter(&new), Some(2), "the moved session is untouched");
}

#[test]
fn cycle_id_then_an_error_moves_the_session_but_saves_no_change() {
    let t = TestStore::new();
    let server = Server::start(app::app(t.store.clone()));
    let client = server.client();
    let old = client.get("/count", None).new_id();

    let reply = client.get_as("/login-then-fail", &old);
    assert_eq!(reply.status, 500, "{reply:?}");
    // The move cannot be undone, so the client must learn the new id even on an error.
    let new = reply.new_id();
    assert_ne!(new, old);
    assert!(!t.store.exists(&old).expect("exists"));
    let data: Dict = t.store.load(&new).expect("load").expect("moved session");
    assert_eq!(data.get_i64("counter"), Some(1));
    assert_eq!(
        data.get_str("user"),
        None,
        "the change after the move was saved"
    );
    assert_eq!(
        client.get_as("/count", &new).body,
        "2",
        "the session is free"
    );
}

#[test]
fn cycle_id_on_a_new_visitor_creates_the_session() {
    let t = TestStore::new();
    let server = Server::start(app::app(t.store.clone()));
    let client = server.client();

    let reply = client.get("/login", None);
    assert_eq!(reply.status, 200, "{reply:?}");
    let id = reply.new_id();
    assert_eq!(reply.body, id.to_string());
    let data: Dict = t.store.load(&id).expect("load").expect("created");
    assert_eq!(data.get_str("user"), Some("alice"));
    assert_eq!(t.session_files().len(), 1);
}
