//! The shared representation: a framework session is a `Dict` of JSON texts with an
//! `Expiry::At` header, readable by `Store::load::<Dict>`, by `sessiondir show`, and by the
//! actix adapter given a tower session's sessiondir id. (The other way round is not possible:
//! an actix session's random id is not the image of any tower `Id`.)

use std::time::{Duration, UNIX_EPOCH};

use actix_session::storage::SessionStore as _;
use sessiondir::actix::ActixStore;
use sessiondir::tower::TowerStore;
use sessiondir::{Dict, Expiry, Value};
use time::OffsetDateTime;
use tower_sessions_core::SessionStore as _;
use tower_sessions_core::session::{Id, Record};

use crate::common::{Data, Fixture, actix_ttl, session_key, to_texts};

fn user_data() -> Data {
    [
        ("user".to_owned(), serde_json::json!("ada")),
        (
            "roles".to_owned(),
            serde_json::json!(["admin", {"since": 1843}]),
        ),
        ("visits".to_owned(), serde_json::json!(3)),
    ]
    .into_iter()
    .collect()
}

fn user_dict() -> Dict {
    [
        ("user", Value::Text(r#""ada""#.into())),
        ("roles", Value::Text(r#"["admin",{"since":1843}]"#.into())),
        ("visits", Value::Text("3".into())),
    ]
    .into_iter()
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tower_session_is_a_dict_of_json_texts() {
    let fx = Fixture::new();
    let store = TowerStore::new(fx.store.clone());
    let expiry_date =
        OffsetDateTime::from_unix_timestamp(4_102_444_800).expect("2100-01-01T00:00:00Z");
    let mut record = Record {
        id: Id::default(),
        data: user_data(),
        expiry_date,
    };
    store.create(&mut record).await.expect("create");
    let id = TowerStore::session_id(&record.id);
    let snapshot = fx
        .store
        .snapshot::<Dict>(&id)
        .expect("Store::snapshot::<Dict>")
        .expect("exists");
    assert_eq!(snapshot.data, user_dict());
    assert_eq!(
        snapshot.info.expiry(),
        Expiry::At(UNIX_EPOCH + Duration::from_secs(4_102_444_800))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_actix_session_is_a_dict_of_json_texts() {
    let fx = Fixture::new();
    let store = ActixStore::new(fx.store.clone());
    let before = std::time::SystemTime::now();
    let key: String = store
        .save(to_texts(user_data()), &actix_ttl(Duration::from_secs(600)))
        .await
        .expect("save")
        .into();
    let id = sessiondir::SessionId::parse(&key).expect("the key is a sessiondir id");
    let snapshot = fx
        .store
        .snapshot::<Dict>(&id)
        .expect("Store::snapshot::<Dict>")
        .expect("exists");
    assert_eq!(snapshot.data, user_dict());
    // Sliding by the ttl (so that `update_ttl` can extend it without a rewrite).
    assert_eq!(
        snapshot.info.expiry(),
        Expiry::Idle(Duration::from_secs(600))
    );
    let at = snapshot.info.expires.expect("an expiry time");
    let lifetime = at.duration_since(before).expect("in the future");
    assert!(
        lifetime >= Duration::from_secs(599) && lifetime <= Duration::from_secs(610),
        "expires {lifetime:?} after the save, wanted 600 s"
    );
}

/// actix loads a tower session by its sessiondir id, updates it in place, and tower sees the
/// update.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actix_reads_and_updates_a_tower_session() {
    let fx = Fixture::new();
    let tower = TowerStore::new(fx.store.clone());
    let actix = ActixStore::new(fx.store.clone());
    let mut record = Record {
        id: Id::default(),
        data: user_data(),
        expiry_date: OffsetDateTime::now_utc() + time::Duration::hours(1),
    };
    tower.create(&mut record).await.expect("create");
    let key = TowerStore::session_id(&record.id).to_string();
    let texts = actix
        .load(&session_key(&key))
        .await
        .expect("load")
        .expect("actix sees the tower session");
    assert_eq!(texts, to_texts(user_data()));

    let mut changed = texts;
    changed.insert("visits".to_owned(), "4".to_owned());
    let kept: String = actix
        .update(
            session_key(&key),
            changed,
            &actix_ttl(Duration::from_secs(3600)),
        )
        .await
        .expect("update")
        .into();
    assert_eq!(kept, key, "updated in place");
    let back = tower.load(&record.id).await.expect("load").expect("exists");
    assert_eq!(back.data["visits"], serde_json::json!(4));
    assert_eq!(back.data["user"], serde_json::json!("ada"));
}
