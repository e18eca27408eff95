//! actix-session specifics: invalid keys, `update` of missing, expired and undecodable
//! sessions, `update_ttl` of a missing key, texts kept byte for byte, error variants, and the
//! real `SessionMiddleware` over the adapter.

use std::collections::HashMap;
use std::time::Duration;

use actix_session::storage::{LoadError, SessionStore};
use sessiondir::actix::ActixStore;
use sessiondir::{Dict, SessionId, Value};

use crate::common::{Fixture, actix_ttl, chain, session_key};

const HOUR: Duration = Duration::from_secs(3600);

fn state(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Keys a client could send that are not sessiondir ids.
fn invalid_keys() -> Vec<String> {
    vec![
        String::new(),
        "../../../../etc/passwd".to_owned(),
        "A".repeat(32),
        "a".repeat(31),
        "a".repeat(33),
        format!("{}\0", "a".repeat(31)),
        "\u{e9}".repeat(16),
        "sessions/00/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_owned(),
        "1".repeat(32),
        "x".repeat(4000),
    ]
}

#[tokio::test]
async fn invalid_keys_load_none_and_touch_nothing() {
    let fx = Fixture::new();
    let store = ActixStore::new(fx.store.clone());
    store
        .save(state(&[("a", "1")]), &actix_ttl(HOUR))
        .await
        .expect("save");
    let before = fx.tree();
    for key in invalid_keys() {
        let k = session_key(&key);
        assert_eq!(store.load(&k).await.expect("load"), None, "key {key:?}");
        store.delete(&k).await.expect("delete");
        store
            .update_ttl(&k, &actix_ttl(HOUR))
            .await
            .expect("update ttl");
    }
    assert_eq!(fx.tree(), before, "an invalid key touched the store");
}

#[tokio::test]
async fn update_with_an_invalid_key_saves_as_new() {
    let fx = Fixture::new();
    let store = ActixStore::new(fx.store.clone());
    let new = store
        .update(
            session_key("../../etc/passwd"),
            state(&[("a", "1")]),
            &actix_ttl(HOUR),
        )
        .await
        .expect("update");
    let new: String = new.into();
    SessionId::parse(&new).expect("the new key is a sessiondir id");
    assert_eq!(
        store.load(&session_key(&new)).await.expect("load"),
        Some(state(&[("a", "1")]))
    );
    assert_eq!(fx.session_files(), 1);
}

#[tokio::test]
async fn update_of_a_missing_or_expired_session_saves_as_new() {
    let fx = Fixture::new();
    let store = ActixStore::new(fx.store.clone());

    // Deleted (by a concurrent request, say) between load and update.
    let key: String = store
        .save(state(&[("a", "1")]), &actix_ttl(HOUR))
        .await
        .expect("save")
        .into();
    store.delete(&session_key(&key)).await.expect("delete");
    let moved: String = store
        .update(session_key(&key), state(&[("a", "2")]), &actix_ttl(HOUR))
        .await
        .expect("update")
        .into();
    assert_ne!(moved, key);
    assert_eq!(store.load(&session_key(&key)).await.expect("load"), None);
    assert_eq!(
        store.load(&session_key(&moved)).await.expect("load"),
        Some(state(&[("a", "2")]))
    );

    // Expired: a new key; the expired file stays until gc (documented).
    let short: String = store
        .save(state(&[("b", "1")]), &actix_ttl(Duration::from_millis(1)))
        .await
        .expect("save")
        .into();
    crate::common::wait_until("the session expires", Duration::from_secs(10), || async {
        store
            .load(&session_key(&short))
            .await
            .expect("load")
            .is_none()
    })
    .await;
    let renewed: String = store
        .update(session_key(&short), state(&[("b", "2")]), &actix_ttl(HOUR))
        .await
        .expect("update")
        .into();
    assert_ne!(renewed, short);
    assert_eq!(
        store.load(&session_key(&renewed)).await.expect("load"),
        Some(state(&[("b", "2")]))
    );
    assert_eq!(fx.session_files(), 3);
    assert_eq!(fx.store.delete_expired().expect("gc").deleted, 1);
    assert_eq!(fx.session_files(), 2);
}

#[tokio::test]
async fn update_ttl_of_a_missing_session_is_ok_and_creates_nothing() {
    let fx = Fixture::new();
    let store = ActixStore::new(fx.store.clone());
    let key: String = store
        .save(state(&[("a", "1")]), &actix_ttl(HOUR))
        .await
        .expect("save")
        .into();
    store.delete(&session_key(&key)).await.expect("delete");
    let before = fx.tree();
    store
        .update_ttl(&session_key(&key), &actix_ttl(HOUR))
        .await
        .expect("nothing to extend is not an error");
    assert_eq!(fx.tree(), before);
}

/// actix-session's values are already JSON texts: stored and returned byte for byte, never
/// re-serialized (spacing, number spelling and escapes survive).
#[tokio::test]
async fn texts_are_stored_byte_for_byte() {
    let fx = Fixture::new();
    let store = ActixStore::new(fx.store.clone());
    let texts = state(&[
        ("spaced", " [1,  2 ,3] "),
        ("exponent", "1.0e2"),
        ("escaped", r#""\u00e9\n""#),
        ("big", "123456789012345678901234567890"),
        ("float", "6.214093410632149e-60"),
        ("raw unicode", "\"\u{1f980}\""),
    ]);
    let key: String = store
        .save(texts.clone(), &actix_ttl(HOUR))
        .await
        .expect("save")
        .into();
    assert_eq!(
        store.load(&session_key(&key)).await.expect("load"),
        Some(texts.clone())
    );
    let dict: Dict = fx
        .store
        .load(&SessionId::parse(&key).expect("id"))
        .expect("load")
        .expect("exists");
    let expected: Dict = texts
        .iter()
        .map(|(k, v)| (k.clone(), Value::Text(v.clone())))
        .collect();
    assert_eq!(dict, expected);
}

/// A session that is not a dictionary: `load` says `Deserialization` (so the middleware starts
/// afresh), and the following `update` replaces it under a new key; a damaged file is `Other`.
#[tokio::test]
async fn undecodable_and_corrupt_sessions() {
    let fx = Fixture::new();
    let store = ActixStore::new(fx.store.clone());
    let id = fx
        .store
        .create(&(u64::MAX, u64::MAX))
        .expect("create a non-dictionary session");
    assert!(
        fx.store.load::<Dict>(&id).is_err(),
        "precondition: not a Dict"
    );
    let key = id.to_string();
    let path = fx.store.session_path(&id).display().to_string();
    match store.load(&session_key(&key)).await {
        Err(LoadError::Deserialization(e)) => {
            let text = chain(e.as_ref());
            assert!(text.contains(&path), "{text}");
        }
        other => panic!("expected a deserialization error, got {other:?}"),
    }
    let new: String = store
        .update(session_key(&key), state(&[("a", "1")]), &actix_ttl(HOUR))
        .await
        .expect("update replaces an undecodable session")
        .into();
    assert_ne!(new, key);
    assert_eq!(
        fx.store.info(&id).expect("info"),
        None,
        "the undecodable file is gone"
    );
    assert_eq!(fx.session_files(), 1);

    // A native entry with no JSON form (a NaN) is not a record either. (Native entries with
    // one are read as their JSON: `interop::every_adapter_reads_what_the_others_wrote`.)
    let mut native = Dict::new();
    native.insert("counter", f64::NAN);
    let native_id = fx.store.create(&native).expect("create");
    match store.load(&session_key(native_id.as_str())).await {
        Err(LoadError::Deserialization(e)) => {
            let text = chain(e.as_ref());
            assert!(text.contains("\"counter\" has no JSON form"), "{text}");
        }
        other => panic!("expected a deserialization error, got {other:?}"),
    }

    // A damaged file is a storage failure, not bad data: `Other`, naming the file.
    let new_id = SessionId::parse(&new).expect("id");
    let new_path = fx.store.session_path(&new_id);
    let mut bytes = std::fs::read(&new_path).expect("read");
    *bytes.last_mut().expect("not empty") ^= 1;
    std::fs::write(&new_path, &bytes).expect("damage");
    match store.load(&session_key(&new)).await {
        Err(LoadError::Other(e)) => {
            let text = chain(e.as_ref());
            assert!(text.contains(&new_path.display().to_string()), "{text}");
            assert!(
                text.contains("sessiondir: cannot load the session"),
                "{text}"
            );
        }
        other => panic!("expected an Other error, got {other:?}"),
    }
}

/// The real `SessionMiddleware` over the adapter: a counter across requests, a renewal (new
/// key, old one gone) and a purge.
#[tokio::test]
async fn the_real_middleware_runs_on_the_adapter() {
    use actix_session::{Session, SessionMiddleware};
    use actix_web::cookie::{Cookie, Key};
    use actix_web::{App, HttpResponse, test, web};

    async fn count(session: Session) -> actix_web::Result<HttpResponse> {
        let n = session.get::<u64>("n")?.unwrap_or(0) + 1;
        session.insert("n", n)?;
        Ok(HttpResponse::Ok().body(n.to_string()))
    }
    async fn renew(session: Session) -> HttpResponse {
        session.renew();
        HttpResponse::Ok().finish()
    }
    async fn purge(session: Session) -> HttpResponse {
        session.purge();
        HttpResponse::Ok().finish()
    }

    let fx = Fixture::new();
    let store = ActixStore::new(fx.store.clone());
    let app = test::init_service(
        App::new()
            .wrap(
                SessionMiddleware::builder(store.clone(), Key::generate())
                    .cookie_secure(false)
                    .build(),
            )
            .route("/", web::get().to(count))
            .route("/renew", web::get().to(renew))
            .route("/purge", web::get().to(purge)),
    )
    .await;

    let cookie_of = |res: &actix_web::dev::ServiceResponse| -> Option<Cookie<'static>> {
        res.response()
            .cookies()
            .find(|c| c.name() == "id")
            .map(|c| c.into_owned())
    };

    let res = test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
    assert!(res.status().is_success());
    let mut cookie = cookie_of(&res).expect("a session cookie");
    assert_eq!(test::read_body(res).await, "1");
    for expected in 2..=5 {
        let req = test::TestRequest::get()
            .uri("/")
            .cookie(cookie.clone())
            .to_request();
        let res = test::call_service(&app, req).await;
        assert!(res.status().is_success());
        if let Some(c) = cookie_of(&res) {
            cookie = c;
        }
        assert_eq!(test::read_body(res).await, expected.to_string());
    }
    assert_eq!(fx.session_files(), 1);
    let before: Vec<SessionId> = fx.store.ids().map(|r| r.expect("id")).collect();

    let req = test::TestRequest::get()
        .uri("/renew")
        .cookie(cookie.clone())
        .to_request();
    let res = test::call_service(&app, req).await;
    let renewed = cookie_of(&res).expect("a new cookie after renew");
    let after: Vec<SessionId> = fx.store.ids().map(|r| r.expect("id")).collect();
    assert_eq!(after.len(), 1);
    assert_ne!(after, before, "renew gave the session a new id");

    let req = test::TestRequest::get()
        .uri("/")
        .cookie(renewed.clone())
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(
        test::read_body(res).await,
        "6",
        "the data followed the new id"
    );

    let req = test::TestRequest::get()
        .uri("/purge")
        .cookie(renewed)
        .to_request();
    test::call_service(&app, req).await;
    assert_eq!(fx.session_files(), 0, "purge deleted the session");
}
