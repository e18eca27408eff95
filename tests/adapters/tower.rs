//! tower-sessions specifics: the `Id` → sessiondir id mapping, collisions on create, save of a
//! record that is not stored, tower's own `Session` type over the adapter, expiry dates, the
//! error mapping, `ExpiredDeletion`, and behaviour outside a Tokio runtime.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use sessiondir::tower::TowerStore;
use sessiondir::{Dict, Expiry, SessionId, Store, Value};
use time::{OffsetDateTime, PrimitiveDateTime};
use tower_sessions_core::session::{Id, Record};
use tower_sessions_core::session_store::{Error as StoreError, ExpiredDeletion};
use tower_sessions_core::{Session, SessionStore};

use crate::common::{Data, Fixture, data};

fn record(id: Id, data: Data, expiry_date: OffsetDateTime) -> Record {
    Record {
        id,
        data,
        expiry_date,
    }
}

fn in_an_hour() -> OffsetDateTime {
    OffsetDateTime::now_utc() + time::Duration::hours(1)
}

/// A dictionary as the adapter stores `{"owner": owner}`.
fn owner(owner: &str) -> Dict {
    [("owner", Value::Text(format!("{owner:?}")))]
        .into_iter()
        .collect()
}

fn owner_data(owner: &str) -> Data {
    [("owner".to_owned(), serde_json::json!(owner))]
        .into_iter()
        .collect()
}

#[test]
fn id_mapping_is_the_documented_injective_one() {
    let mut raw = [0u8; 20];
    raw[16..].copy_from_slice(b"towr");
    assert_eq!(TowerStore::session_id(&Id(0)), SessionId::from_bytes(raw));
    raw[..16].copy_from_slice(&(-2i128).to_be_bytes());
    assert_eq!(TowerStore::session_id(&Id(-2)), SessionId::from_bytes(raw));

    // Ids that differ in any single bit map to different sessiondir ids.
    let mut seen = HashSet::new();
    for bit in 0..128 {
        assert!(seen.insert(TowerStore::session_id(&Id(1i128 << bit))));
    }
    assert!(seen.insert(TowerStore::session_id(&Id(0))));
    assert_eq!(seen.len(), 129);

    // The fixed tail: every tower session's id ends in the same six characters.
    let tail = |id: &Id| TowerStore::session_id(id).as_str()[26..].to_owned();
    let first = tail(&Id::default());
    for _ in 0..100 {
        assert_eq!(tail(&Id::default()), first);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_redraws_a_taken_id_and_overwrites_nothing() {
    let fx = Fixture::new();
    let store = TowerStore::new(fx.store.clone());
    let taken = Id(42);
    fx.store
        .create_with_id(
            &TowerStore::session_id(&taken),
            &owner("first"),
            Expiry::Never,
        )
        .expect("pre-create the session the next Id maps to");

    let mut rec = record(taken, owner_data("second"), in_an_hour());
    store.create(&mut rec).await.expect("create");
    assert_ne!(rec.id, taken, "create must draw a new Id on a collision");
    let first = store
        .load(&taken)
        .await
        .expect("load")
        .expect("still there");
    assert_eq!(
        first.data,
        owner_data("first"),
        "the existing session was overwritten"
    );
    let second = store.load(&rec.id).await.expect("load").expect("created");
    assert_eq!(second.data, owner_data("second"));
    assert_eq!(fx.session_files(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_does_not_reuse_an_expired_sessions_id() {
    let fx = Fixture::new();
    let store = TowerStore::new(fx.store.clone());
    let id = Id(7);
    let past = OffsetDateTime::now_utc() - time::Duration::minutes(1);
    let mut old = record(id, owner_data("expired"), past);
    store
        .create(&mut old)
        .await
        .expect("create an expired session");
    assert_eq!(old.id, id);
    assert!(store.load(&id).await.expect("load").is_none());

    let mut new = record(id, owner_data("new"), in_an_hour());
    store.create(&mut new).await.expect("create");
    assert_ne!(new.id, id, "the expired session's file still holds the id");
    assert_eq!(fx.session_files(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_stores_a_record_that_is_not_stored() {
    let fx = Fixture::new();
    let store = TowerStore::new(fx.store.clone());

    // Never created.
    let never = record(Id::default(), data(1), in_an_hour());
    store.save(&never).await.expect("save");
    assert_eq!(
        store.load(&never.id).await.expect("load").map(|r| r.data),
        Some(data(1))
    );

    // Deleted by another request between its load and its save.
    store.delete(&never.id).await.expect("delete");
    store.save(&never).await.expect("save after delete");
    assert_eq!(
        store.load(&never.id).await.expect("load").map(|r| r.data),
        Some(data(1))
    );

    // Expired on disk: replaced, under the same id, by the new version.
    let mut expired = record(
        Id::default(),
        data(2),
        OffsetDateTime::now_utc() - time::Duration::seconds(5),
    );
    store.create(&mut expired).await.expect("create expired");
    let revived = record(expired.id, data(3), in_an_hour());
    store.save(&revived).await.expect("save over expired");
    assert_eq!(
        store.load(&expired.id).await.expect("load").map(|r| r.data),
        Some(data(3))
    );
    assert_eq!(fx.session_files(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_date_round_trips_to_the_millisecond() {
    let fx = Fixture::new();
    let store = TowerStore::new(fx.store.clone());
    let date = OffsetDateTime::from_unix_timestamp_nanos(4_102_444_800_123_456_789)
        .expect("a date in 2100");
    let mut rec = record(Id::default(), data(1), date);
    store.create(&mut rec).await.expect("create");
    let back = store.load(&rec.id).await.expect("load").expect("exists");
    assert_eq!(
        back.expiry_date.unix_timestamp_nanos(),
        4_102_444_800_123_000_000
    );
    let info = fx
        .store
        .info(&TowerStore::session_id(&rec.id))
        .expect("info")
        .expect("exists");
    assert_eq!(
        info.expiry(),
        Expiry::At(std::time::UNIX_EPOCH + Duration::from_millis(4_102_444_800_123))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_without_expiry_loads_with_the_latest_date() {
    let fx = Fixture::new();
    let store = TowerStore::new(fx.store.clone());
    let id = Id::default();
    fx.store
        .create_with_id(&TowerStore::session_id(&id), &owner("admin"), Expiry::Never)
        .expect("create without expiry");
    let back = store.load(&id).await.expect("load").expect("exists");
    assert_eq!(back.data, owner_data("admin"));
    assert_eq!(back.expiry_date, PrimitiveDateTime::MAX.assume_utc());
}

/// tower's own `Session` (what its middleware drives) over the adapter: a new visitor,
/// a returning one, `cycle_id`, `flush`, and a cookie naming a session the store does not have.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn towers_session_type_runs_on_the_adapter() {
    let fx = Fixture::new();
    let store = Arc::new(TowerStore::new(fx.store.clone()));

    let visit = Session::new(None, store.clone(), None);
    visit.insert("counter", 1u32).await.expect("insert");
    visit.save().await.expect("save creates");
    let id = visit.id().expect("an id after the first save");

    let again = Session::new(Some(id), store.clone(), None);
    let n: u32 = again.get("counter").await.expect("get").expect("present");
    again.insert("counter", n + 1).await.expect("insert");
    again.save().await.expect("save");
    assert_eq!(again.id(), Some(id));

    let login = Session::new(Some(id), store.clone(), None);
    login.cycle_id().await.expect("cycle");
    login.save().await.expect("save after cycle");
    let cycled = login.id().expect("an id");
    assert_ne!(cycled, id);
    assert!(
        store.load(&id).await.expect("load").is_none(),
        "the old id is gone"
    );
    let moved = Session::new(Some(cycled), store.clone(), None);
    assert_eq!(moved.get::<u32>("counter").await.expect("get"), Some(2));
    assert_eq!(fx.session_files(), 1);

    // A cookie naming a session the store does not have: a fresh session with a fresh id.
    let stranger = Id::default();
    let forged = Session::new(Some(stranger), store.clone(), None);
    assert_eq!(forged.get::<u32>("counter").await.expect("get"), None);
    forged.insert("counter", 1u32).await.expect("insert");
    forged.save().await.expect("save");
    assert_ne!(forged.id(), Some(stranger));
    assert!(store.load(&stranger).await.expect("load").is_none());

    moved.flush().await.expect("flush");
    assert!(store.load(&cycled).await.expect("load").is_none());
    assert_eq!(
        fx.session_files(),
        1,
        "only the stranger's fresh session is left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_expired_removes_only_expired_sessions() {
    let fx = Fixture::new();
    let store = TowerStore::new(fx.store.clone());
    let past = OffsetDateTime::now_utc() - time::Duration::seconds(1);
    for n in 0..3 {
        store
            .create(&mut record(Id::default(), data(n), past))
            .await
            .expect("create expired");
    }
    let mut live = record(Id::default(), data(9), in_an_hour());
    store.create(&mut live).await.expect("create live");
    assert_eq!(fx.session_files(), 4);
    store.delete_expired().await.expect("delete expired");
    assert_eq!(fx.session_files(), 1);
    assert!(store.load(&live.id).await.expect("load").is_some());
}

/// A store that cannot be decoded as a record is `Decode`; an unusable store is `Backend`;
/// both keep the path and the cause.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_map_to_decode_and_backend_with_the_path() {
    let fx = Fixture::new();
    let store = TowerStore::new(fx.store.clone());

    // A native sessiondir value with no JSON form (a NaN).
    let native = Id::default();
    let mut dict = Dict::new();
    dict.insert("counter", f64::NAN);
    fx.store
        .create_with_id(&TowerStore::session_id(&native), &dict, Expiry::Never)
        .expect("create");
    let path = fx.store.session_path(&TowerStore::session_id(&native));
    match store.load(&native).await {
        Err(StoreError::Decode(message)) => {
            assert!(message.contains(&path.display().to_string()), "{message}");
            assert!(
                message.contains("\"counter\" has no JSON form"),
                "{message}"
            );
        }
        other => panic!("expected a decode error, got {other:?}"),
    }

    // Text that is not JSON.
    let bad = Id::default();
    let bad_dict: Dict = [("k", Value::Text("{not json".into()))]
        .into_iter()
        .collect();
    fx.store
        .create_with_id(&TowerStore::session_id(&bad), &bad_dict, Expiry::Never)
        .expect("create");
    match store.load(&bad).await {
        Err(StoreError::Decode(message)) => {
            assert!(message.contains("not valid JSON"), "{message}")
        }
        other => panic!("expected a decode error, got {other:?}"),
    }

    // Not a dictionary at all.
    let foreign = Id::default();
    fx.store
        .create_with_id(
            &TowerStore::session_id(&foreign),
            &(u64::MAX, u64::MAX),
            Expiry::Never,
        )
        .expect("create");
    let path = fx.store.session_path(&TowerStore::session_id(&foreign));
    match store.load(&foreign).await {
        Err(StoreError::Decode(message)) => {
            assert!(message.contains(&path.display().to_string()), "{message}")
        }
        other => panic!("expected a decode error, got {other:?}"),
    }

    // Too large for the store: a backend error naming the file and the limit.
    let tmp = tempfile::tempdir().expect("tempdir");
    let small = Store::builder(tmp.path().join("s"))
        .max_session_size(256)
        .open()
        .expect("open");
    let small = TowerStore::new(small);
    let big: Data = [("blob".to_owned(), serde_json::json!("x".repeat(1000)))]
        .into_iter()
        .collect();
    match small
        .create(&mut record(Id::default(), big, in_an_hour()))
        .await
    {
        Err(StoreError::Backend(message)) => {
            assert!(
                message.contains("over the configured maximum of 256 bytes"),
                "{message}"
            );
            assert!(
                message.contains(&tmp.path().display().to_string()),
                "{message}"
            );
        }
        other => panic!("expected a backend error, got {other:?}"),
    }
}

/// Outside a Tokio runtime the adapter cannot move file I/O off the executor: an error, not a
/// panic, and nothing touched.
#[test]
fn outside_a_runtime_is_an_error_not_a_panic() {
    let fx = Fixture::new();
    let store = TowerStore::new(fx.store.clone());
    let before = fx.tree();
    let id = Id::default();
    let mut future = store.load(&id);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(Err(StoreError::Backend(message))) => {
            assert!(message.contains("needs a Tokio runtime"), "{message}")
        }
        other => panic!("expected an immediate backend error, got {other:?}"),
    }
    assert_eq!(fx.tree(), before);
}

/// Floats that serde_json reads back exactly only with its `float_roundtrip` feature (on in
/// Cargo.toml): with the feature off, a float can come back one unit in the last place off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_float_round_trips_exactly() {
    let fx = Fixture::new();
    let store = TowerStore::new(fx.store.clone());
    let mut floats = vec![
        6.214093410632149e-60,
        -2.8862291761652237e-304,
        -4.2781946371610546e68,
        -2.3363685238044947e52,
    ];
    // A seeded sweep of bit patterns (xorshift64*), finite ones only.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    while floats.len() < 2000 {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let f = f64::from_bits(state.wrapping_mul(0x2545_f491_4f6c_dd1d));
        if f.is_finite() {
            floats.push(f);
        }
    }
    let data: Data = floats
        .iter()
        .enumerate()
        .map(|(i, f)| (i.to_string(), serde_json::json!(f)))
        .collect();
    let mut rec = record(Id::default(), data.clone(), in_an_hour());
    store.create(&mut rec).await.expect("create");
    let back = store.load(&rec.id).await.expect("load").expect("exists");
    let wrong: Vec<_> = floats
        .iter()
        .enumerate()
        .filter(|(i, f)| back.data[&i.to_string()].as_f64() != Some(**f))
        .map(|(_, f)| *f)
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} floats came back different, e.g. {:?}",
        wrong.len(),
        floats.len(),
        &wrong[..wrong.len().min(3)]
    );
}
