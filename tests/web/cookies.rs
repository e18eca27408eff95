//! The session cookie: attributes, and ids from the client that are never adopted (invalid,
//! unknown, expired), with no file created for visitors that only read.

use std::time::{Duration, SystemTime};

use sessiondir::axum::{SameSite, SessionLayer};
use sessiondir::{Dict, Expiry, SessionId};

use crate::app;
use crate::common::{Server, TestStore};

/// A well-formed id no session has.
const UNKNOWN: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

#[test]
fn a_new_visitor_gets_a_cookie_with_safe_attributes() {
    let t = TestStore::new();
    let server = Server::start(app::app(t.store.clone()));
    let client = server.client();

    let first = client.get("/count", None);
    assert_eq!((first.status, first.body.as_str()), (200, "1"));
    let cookie = first.cookie();
    assert_eq!(cookie.name, "sid");
    let id = first.new_id();
    assert_eq!(
        cookie.attribute_names(),
        ["HttpOnly", "Path", "SameSite", "Secure"],
        "{cookie:?}"
    );
    assert_eq!(cookie.attribute("Path"), Some("/"));
    assert_eq!(cookie.attribute("SameSite"), Some("Lax"));
    assert_eq!(t.counter(&id), Some(1));

    // The cookie comes back: same session, and nothing to tell the client.
    let second = client.get_as("/count", &id);
    assert_eq!((second.status, second.body.as_str()), (200, "2"));
    assert!(second.cookies.is_empty(), "{second:?}");
    assert_eq!(t.session_files().len(), 1);
}

#[test]
fn cookie_settings_apply_and_an_expiring_session_slides_its_cookie() {
    let t = TestStore::with(|b| b.idle_expiry(Duration::from_secs(600)));
    let layer = SessionLayer::<Dict>::new(t.store.clone())
        .cookie_name("app_sid")
        .secure(false)
        .same_site(SameSite::Strict)
        .cookie_path("/")
        .cookie_domain("localhost");
    let server = Server::start(app::app_with(layer, t.store.clone()));
    let client = server.client();

    let first = client.get("/count", None);
    assert_eq!(first.status, 200);
    let cookie = first.cookie();
    assert_eq!(cookie.name, "app_sid");
    assert_eq!(
        cookie.attribute_names(),
        ["Domain", "HttpOnly", "Max-Age", "Path", "SameSite"],
        "{cookie:?}"
    );
    assert_eq!(cookie.attribute("SameSite"), Some("Strict"));
    assert_eq!(cookie.attribute("Max-Age"), Some("600"));
    assert_eq!(cookie.attribute("Domain"), Some("localhost"));
    let id = first.new_id();

    // Every check-in slides the session's expiry, so the cookie is sent again with it.
    let second = client.get("/count", Some(&format!("app_sid={id}")));
    assert_eq!((second.status, second.body.as_str()), (200, "2"));
    assert_eq!(second.new_id(), id);
    assert_eq!(second.cookie().attribute("Max-Age"), Some("600"));

    // A read does not slide anything: no cookie.
    let peek = client.get("/peek", Some(&format!("app_sid={id}")));
    assert_eq!(peek.body, "2");
    assert!(peek.cookies.is_empty(), "{peek:?}");

    // A cookie under another name is not this layer's.
    let other = client.get("/peek", Some(&format!("sid={id}")));
    assert_eq!(other.body, "0");
    assert!(other.cookies.is_empty(), "{other:?}");
}

#[test]
fn an_invalid_id_is_never_looked_up_and_its_cookie_is_removed() {
    let t = TestStore::new();
    let server = Server::start(app::app(t.store.clone()));
    let client = server.client();
    let bad_values = [
        "../../etc/passwd",
        "",
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "%2e%2e%2f%2e%2e%2fsessions",
    ];
    for bad in bad_values {
        let cookie = format!("sid={bad}");
        for path in ["/peek", "/noop"] {
            let reply = client.get(path, Some(&cookie));
            assert_eq!(reply.status, 200, "{path} with {bad:?}: {reply:?}");
            let removal = reply.cookie();
            assert_eq!(removal.name, "sid");
            assert_eq!(removal.value, "", "{bad:?}");
            assert!(removal.is_removal(), "{bad:?}: {reply:?}");
        }
        assert!(t.all_files().is_empty(), "{bad:?}: {:?}", t.all_files());
    }
    // A writer gets a fresh session under a new id.
    let reply = client.get("/count", Some("sid=../../etc/passwd"));
    assert_eq!((reply.status, reply.body.as_str()), (200, "1"));
    let id = reply.new_id();
    assert_eq!(t.counter(&id), Some(1));
    assert_eq!(t.session_files().len(), 1);
}

#[test]
fn an_unknown_id_is_never_adopted() {
    let t = TestStore::new();
    let server = Server::start(app::app(t.store.clone()));
    let client = server.client();
    let unknown = SessionId::parse(UNKNOWN).expect("well-formed");

    // Readers and writers that change nothing: the cookie is removed, nothing is created.
    for path in ["/peek", "/noop", "/fail/500"] {
        let reply = client.get_as(path, &unknown);
        assert!(reply.cookie().is_removal(), "{path}: {reply:?}");
    }
    assert!(t.all_files().is_empty(), "{:?}", t.all_files());

    // A writer gets a fresh session with a new id; the planted one never exists.
    let reply = client.get_as("/count", &unknown);
    assert_eq!((reply.status, reply.body.as_str()), (200, "1"));
    let id = reply.new_id();
    assert_ne!(id, unknown);
    assert!(!t.store.exists(&unknown).expect("exists"));
    assert_eq!(t.counter(&id), Some(1));
    assert_eq!(t.session_files().len(), 1);
}

#[test]
fn an_expired_session_is_not_adopted() {
    let t = TestStore::new();
    let mut data = Dict::new();
    data.insert("counter", 41i64);
    let past = SystemTime::now() - Duration::from_secs(1);
    let expired = t
        .store
        .create_with_expiry(&data, Expiry::At(past))
        .expect("create an expired session");
    let server = Server::start(app::app(t.store.clone()));
    let client = server.client();

    let peek = client.get_as("/peek", &expired);
    assert_eq!(peek.body, "0", "an expired session reads as a fresh one");
    assert!(peek.cookie().is_removal(), "{peek:?}");

    let count = client.get_as("/count", &expired);
    assert_eq!((count.status, count.body.as_str()), (200, "1"));
    assert_ne!(count.new_id(), expired);
    assert_eq!(t.counter(&count.new_id()), Some(1));
}

#[test]
fn visitors_that_only_read_create_no_file_and_get_no_cookie() {
    let t = TestStore::new();
    let server = Server::start(app::app(t.store.clone()));
    let client = server.client();
    for path in ["/peek", "/noop", "/fail/500", "/fail/404"] {
        let reply = client.get(path, None);
        assert!(reply.cookies.is_empty(), "{path}: {reply:?}");
    }
    assert!(t.all_files().is_empty(), "{:?}", t.all_files());
}
