//! Logout: `SessionMut::delete` removes the session (file, spare, lock) under the lock the
//! request holds, whatever the status, and the response removes the cookie.

use crate::app;
use crate::common::{Server, TestStore};

#[test]
fn logout_deletes_the_session_and_removes_the_cookie() {
    let t = TestStore::new();
    let server = Server::start(app::app(t.store.clone()));
    let client = server.client();
    let id = client.get("/count", None).new_id();
    assert_eq!(client.get_as("/count", &id).body, "2");

    let reply = client.get_as("/logout", &id);
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (200, "true"),
        "{reply:?}"
    );
    let cookie = reply.cookie();
    assert!(cookie.is_removal(), "{reply:?}");
    assert_eq!((cookie.name.as_str(), cookie.value.as_str()), ("sid", ""));
    assert_eq!(
        t.all_files(),
        Vec::<std::path::PathBuf>::new(),
        "files left"
    );
    assert!(!t.store.exists(&id).expect("exists"));

    // A browser that kept the cookie anyway gets a fresh session, never the old one.
    let again = client.get_as("/count", &id);
    assert_eq!(again.body, "1");
    assert_ne!(again.new_id(), id);
}

#[test]
fn logout_stands_even_when_the_response_is_an_error() {
    let t = TestStore::new();
    let server = Server::start(app::app(t.store.clone()));
    let client = server.client();
    let id = client.get("/count", None).new_id();

    let reply = client.get_as("/logout-then-fail", &id);
    assert_eq!(reply.status, 500, "{reply:?}");
    assert!(reply.cookie().is_removal(), "{reply:?}");
    assert!(t.all_files().is_empty(), "{:?}", t.all_files());
}

#[test]
fn logout_of_a_visitor_without_a_session_deletes_nothing_and_sets_no_cookie() {
    let t = TestStore::new();
    let server = Server::start(app::app(t.store.clone()));
    let reply = server.client().get("/logout", None);
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (200, "false"),
        "{reply:?}"
    );
    assert!(reply.cookies.is_empty(), "{reply:?}");
    assert!(t.all_files().is_empty());
}

#[test]
fn a_session_started_after_logout_in_the_same_request_gets_its_cookie() {
    let t = TestStore::new();
    let server = Server::start(app::app(t.store.clone()));
    let client = server.client();
    let old = client.get("/count", None).new_id();
    assert_eq!(client.get_as("/count", &old).body, "2");

    let reply = client.get_as("/logout-then-count", &old);
    assert_eq!((reply.status, reply.body.as_str()), (200, "1"), "{reply:?}");
    let new = reply.new_id();
    assert_ne!(new, old);
    assert!(!t.store.exists(&old).expect("exists"));
    assert_eq!(t.counter(&new), Some(1));
    assert_eq!(t.session_files().len(), 1);
}
