//! One record format (issue 18, point 5): a session written by the tower-sessions adapter, by
//! the actix-session adapter or by the axum layer (`SessionMut<Dict>` with `insert_as` and
//! native setters) is read by the other two. The axum side runs over real HTTP; tower and actix
//! through their store traits (tower can name only the sessions it created: its ids are 128
//! bits, an axum or actix session's 160).

use std::collections::HashMap;

use actix_session::storage::SessionStore as _;
use serde::{Deserialize, Serialize};
use sessiondir::actix::ActixStore;
use sessiondir::axum::{SessionLayer, SessionMut, SessionRef};
use sessiondir::tower::TowerStore;
use sessiondir::{Dict, Store};
use time::OffsetDateTime;
use tower_sessions_core::SessionStore as _;
use tower_sessions_core::session::{Id, Record};

use crate::common::{Fixture, actix_ttl, http_get, serve, session_key};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    name: String,
    age: u32,
}

/// `/read`: "name age visits hits" from the session, typed; `/write`: a user if there is none,
/// one more visit (typed, `insert_as`) and one more axum hit (native, `increment`).
async fn serve_axum(store: Store) -> String {
    use axum::routing::get;

    async fn read(session: SessionRef<Dict>) -> String {
        let user: Option<User> = session.get_as("user").expect("user");
        let visits: Option<u64> = session.get_as("visits").expect("visits");
        let hits: Option<u64> = session.get_as("axum_hits").expect("hits");
        match user {
            Some(u) => format!("{} {} {visits:?} {hits:?}", u.name, u.age),
            None => "nobody".to_owned(),
        }
    }
    async fn write(mut session: SessionMut<Dict>) -> String {
        if session.get("user").is_none() {
            let user = User {
                name: "alan".into(),
                age: 41,
            };
            session.insert_as("user", &user).expect("insert user");
        }
        let visits = session
            .get_as::<u64>("visits")
            .expect("visits")
            .unwrap_or(0);
        session.insert_as("visits", &(visits + 1)).expect("insert");
        session.increment("axum_hits", 1).expect("a native counter");
        "ok".to_owned()
    }

    serve(
        axum::Router::new()
            .route("/read", get(read))
            .route("/write", get(write))
            .layer(SessionLayer::<Dict>::new(store).secure(false)),
    )
    .await
}

/// GET `url` with cookie `sid` (if any): the body and the `sid` the response sets, if it does.
async fn get(url: String, sid: Option<String>) -> (String, Option<String>) {
    let reply = http_get(url.clone(), sid.map(|sid| format!("sid={sid}"))).await;
    assert_eq!(reply.status, 200, "GET {url}");
    let set = reply
        .set_cookies
        .iter()
        .filter_map(|v| v.strip_prefix("sid="))
        .map(|v| v.split(';').next().unwrap_or("").to_owned())
        .find(|v| !v.is_empty());
    (reply.body, set)
}

/// A record after axum's `/write`, as JSON values.
fn expected(name: &str, age: u32, visits: u64, hits: u64) -> HashMap<String, serde_json::Value> {
    [
        ("user", serde_json::json!({"name": name, "age": age})),
        ("visits", serde_json::json!(visits)),
        ("axum_hits", serde_json::json!(hits)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn json(v: serde_json::Value) -> String {
    v.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tower_session_is_read_and_written_by_axum_and_read_by_actix() {
    let fx = Fixture::new();
    let tower = TowerStore::new(fx.store.clone());
    let actix = ActixStore::new(fx.store.clone());
    let base = serve_axum(fx.store.clone()).await;

    let mut record = Record {
        id: Id::default(),
        data: [
            (
                "user".to_owned(),
                serde_json::json!({"name": "ada", "age": 36}),
            ),
            ("visits".to_owned(), serde_json::json!(1)),
        ]
        .into_iter()
        .collect(),
        expiry_date: OffsetDateTime::now_utc() + time::Duration::hours(1),
    };
    tower.create(&mut record).await.expect("tower create");
    let sid = TowerStore::session_id(&record.id).to_string();

    let (body, _) = get(format!("{base}/read"), Some(sid.clone())).await;
    assert_eq!(body, "ada 36 Some(1) None", "axum reads tower's record");
    let (body, _) = get(format!("{base}/write"), Some(sid.clone())).await;
    assert_eq!(body, "ok");

    let loaded = tower
        .load(&record.id)
        .await
        .expect("tower load")
        .expect("live");
    assert_eq!(
        loaded.data,
        expected("ada", 36, 2, 1),
        "tower reads what axum wrote"
    );

    let texts = actix
        .load(&session_key(&sid))
        .await
        .expect("actix load")
        .expect("live");
    assert_eq!(texts["visits"], "2");
    assert_eq!(texts["axum_hits"], "1", "actix reads axum's native counter");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&texts["user"]).expect("JSON"),
        serde_json::json!({"name": "ada", "age": 36})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_actix_session_is_read_and_written_by_axum() {
    let fx = Fixture::new();
    let actix = ActixStore::new(fx.store.clone());
    let base = serve_axum(fx.store.clone()).await;
    let state: HashMap<String, String> = [
        (
            "user".to_owned(),
            json(serde_json::json!({"name": "grace", "age": 45})),
        ),
        ("visits".to_owned(), "5".to_owned()),
    ]
    .into_iter()
    .collect();
    let key: String = actix
        .save(state, &actix_ttl(std::time::Duration::from_secs(600)))
        .await
        .expect("actix save")
        .into();

    let (body, _) = get(format!("{base}/read"), Some(key.clone())).await;
    assert_eq!(body, "grace 45 Some(5) None", "axum reads actix's texts");
    get(format!("{base}/write"), Some(key.clone())).await;
    let texts = actix
        .load(&session_key(&key))
        .await
        .expect("actix load")
        .expect("live");
    assert_eq!(texts["visits"], "6");
    assert_eq!(texts["axum_hits"], "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_axum_session_is_read_by_actix() {
    let fx = Fixture::new();
    let actix = ActixStore::new(fx.store.clone());
    let base = serve_axum(fx.store.clone()).await;
    let (body, sid) = get(format!("{base}/write"), None).await;
    assert_eq!(body, "ok");
    let sid = sid.expect("a new session's cookie");
    let texts = actix
        .load(&session_key(&sid))
        .await
        .expect("actix load")
        .expect("live");
    let parsed: HashMap<String, serde_json::Value> = texts
        .iter()
        .map(|(k, text)| (k.clone(), serde_json::from_str(text).expect("JSON text")))
        .collect();
    assert_eq!(parsed, expected("alan", 41, 1, 1));
    // And the plain API sees the same record.
    let id = sessiondir::SessionId::parse(&sid).expect("id");
    let dict: Dict = fx.store.load(&id).expect("load").expect("live");
    assert_eq!(dict.get_as::<u64>("visits").expect("visits"), Some(1));
}
