//! The adapters' shared contract, written once as generic functions over [`Adapter`] and run
//! against every adapter by `conformance!` at the bottom.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use sessiondir::Dict;

use crate::common::{Actix, Adapter, Data, Fixture, Tower, data, every_json_type, wait_until};

const HOUR: Duration = Duration::from_secs(3600);

/// create → load → save → load → delete → load, with the files on disk checked at each step.
async fn round_trip<A: Adapter>() {
    let fx = Fixture::new();
    let adapter = A::new(fx.store.clone());
    let key = adapter.create(data(1), HOUR).await.expect("create");
    assert_eq!(adapter.load(&key).await.expect("load"), Some(data(1)));
    assert_eq!(fx.session_files(), 1);

    // A save replaces the whole record: keys absent from the new data are gone.
    let mut next: Data = [("other".to_owned(), serde_json::json!([true]))]
        .into_iter()
        .collect();
    next.insert("n".to_owned(), serde_json::json!(2));
    let same = adapter.save(&key, next.clone(), HOUR).await.expect("save");
    assert_eq!(same, key, "saving an existing session keeps its key");
    assert_eq!(adapter.load(&key).await.expect("load"), Some(next));
    assert_eq!(fx.session_files(), 1);

    adapter.delete(&key).await.expect("delete");
    assert_eq!(adapter.load(&key).await.expect("load"), None);
    assert_eq!(
        (fx.session_files(), fx.lock_files()),
        (0, 0),
        "delete leaves no file"
    );
    adapter
        .delete(&key)
        .await
        .expect("deleting a deleted session is not an error");
}

/// A session loads until its expiry and as `None` from then on; its file stays until gc.
async fn expiry_gives_none<A: Adapter>() {
    let fx = Fixture::new();
    let adapter = A::new(fx.store.clone());
    let ttl = Duration::from_millis(1500);
    let start = Instant::now();
    let key = adapter.create(data(1), ttl).await.expect("create");
    assert_eq!(
        adapter.load(&key).await.expect("load"),
        Some(data(1)),
        "loadable before its expiry"
    );
    wait_until(
        "the session loads as None",
        Duration::from_secs(15),
        || async { adapter.load(&key).await.expect("load").is_none() },
    )
    .await;
    let lived = start.elapsed();
    assert!(
        lived + Duration::from_millis(100) >= ttl,
        "expired after {lived:?}, before its ttl of {ttl:?}"
    );
    assert_eq!(fx.session_files(), 1, "the expired file stays until gc");
    let report = fx.store.delete_expired().expect("gc");
    assert_eq!(report.deleted, 1);
    assert_eq!(fx.session_files(), 0);
}

/// Giving a session a new id the way the framework does: the old id loads `None`, the new one
/// has the data.
async fn id_cycling<A: Adapter>() {
    let fx = Fixture::new();
    let adapter = A::new(fx.store.clone());
    let old = adapter.create(data(1), HOUR).await.expect("create");
    let new = adapter.cycle(&old, data(1), HOUR).await.expect("cycle");
    assert_ne!(new, old);
    assert_eq!(adapter.load(&old).await.expect("load old"), None);
    assert_eq!(adapter.load(&new).await.expect("load new"), Some(data(1)));
    assert_eq!(fx.session_files(), 1, "no copy left under the old id");
}

/// Extending and shortening a session's lifetime, data unchanged; a missing session has nothing
/// to extend and gets no file.
async fn ttl_update<A: Adapter>() {
    let fx = Fixture::new();
    let adapter = A::new(fx.store.clone());
    let short = Duration::from_millis(400);
    let key = adapter.create(data(1), short).await.expect("create");
    let original = fx
        .store
        .info(&A::sessiondir_id(&key))
        .expect("info")
        .expect("exists")
        .expires
        .expect("an expiry");

    adapter.update_ttl(&key, HOUR).await.expect("extend");
    let extended = fx
        .store
        .info(&A::sessiondir_id(&key))
        .expect("info")
        .expect("exists")
        .expires
        .expect("an expiry");
    let want = SystemTime::now() + HOUR;
    let off = want
        .duration_since(extended)
        .unwrap_or_else(|e| e.duration());
    assert!(
        off < Duration::from_secs(10),
        "expiry {extended:?}, wanted about {want:?}"
    );

    // Past the original expiry, the session is still there, data unchanged.
    let past = original + Duration::from_millis(200);
    while SystemTime::now() < past {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(adapter.load(&key).await.expect("load"), Some(data(1)));

    // Shortened, it expires.
    adapter
        .update_ttl(&key, Duration::from_millis(300))
        .await
        .expect("shorten");
    wait_until(
        "the shortened session expires",
        Duration::from_secs(15),
        || async { adapter.load(&key).await.expect("load").is_none() },
    )
    .await;

    // Nothing to extend: no error, no file.
    let before = fx.tree();
    adapter
        .update_ttl(&A::unknown_key(), HOUR)
        .await
        .expect("extending a missing session is not an error");
    assert_eq!(fx.tree(), before);
}

/// Many creations at once: all distinct, all stored, all loadable with their own data.
async fn concurrent_create<A: Adapter>() {
    const N: i64 = 64;
    let fx = Fixture::new();
    let adapter = A::new(fx.store.clone());
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..N {
        let adapter = adapter.clone();
        tasks.spawn(async move { (n, adapter.create(data(n), HOUR).await.expect("create")) });
    }
    let created = tasks.join_all().await;
    let keys: HashSet<String> = created.iter().map(|(_, k)| format!("{k:?}")).collect();
    assert_eq!(keys.len(), N as usize, "every creation got its own key");
    for (n, key) in &created {
        assert_eq!(adapter.load(key).await.expect("load"), Some(data(*n)));
    }
    assert_eq!(fx.session_files(), N as usize);
}

/// Concurrent saves of one session: each is atomic, so the result is exactly one writer's
/// record, never a mixture, and the file always decodes.
async fn concurrent_saves_are_atomic<A: Adapter>() {
    const WRITERS: i64 = 16;
    let fx = Fixture::new();
    let adapter = A::new(fx.store.clone());
    let key = adapter.create(data(0), HOUR).await.expect("create");
    let record = |n: i64| -> Data {
        [
            ("writer".to_owned(), serde_json::json!(n)),
            (
                "blob".to_owned(),
                serde_json::json!(n.to_string().repeat(4096)),
            ),
        ]
        .into_iter()
        .collect()
    };
    let mut tasks = tokio::task::JoinSet::new();
    for n in 1..=WRITERS {
        let (adapter, key) = (adapter.clone(), key.clone());
        tasks.spawn(async move {
            for _ in 0..5 {
                let kept = adapter.save(&key, record(n), HOUR).await.expect("save");
                assert_eq!(kept, key);
                let seen = adapter.load(&key).await.expect("a load during saves");
                let seen = seen.expect("the session exists throughout");
                let w = seen["writer"].as_i64().expect("a writer");
                assert_eq!(seen, record(w), "a load saw a mixed record");
            }
        });
    }
    tasks.join_all().await;
    let last = adapter.load(&key).await.expect("load").expect("exists");
    let w = last["writer"].as_i64().expect("a writer");
    assert!((1..=WRITERS).contains(&w));
    assert_eq!(last, record(w));
    assert_eq!(fx.session_files(), 1);
}

/// Every JSON type comes back exactly, and is stored as the documented `Dict` of JSON texts.
async fn json_values_round_trip<A: Adapter>() {
    let fx = Fixture::new();
    let adapter = A::new(fx.store.clone());
    let key = adapter
        .create(every_json_type(), HOUR)
        .await
        .expect("create");
    let back = adapter.load(&key).await.expect("load").expect("exists");
    for (k, v) in every_json_type() {
        assert_eq!(back.get(&k), Some(&v), "value of {k:?}");
    }
    assert_eq!(back, every_json_type());

    let dict: Dict = fx
        .store
        .load(&A::sessiondir_id(&key))
        .expect("Store::load::<Dict>")
        .expect("exists");
    assert_eq!(dict.len(), every_json_type().len());
    for (k, v) in every_json_type() {
        let text = serde_json::to_string(&v).expect("JSON text");
        assert_eq!(
            dict.get_str(&k),
            Some(text.as_str()),
            "stored text of {k:?}"
        );
    }
}

/// A well-formed key nobody has: loads `None`, deletes without error, and no file is created,
/// removed or written.
async fn unknown_key_touches_nothing<A: Adapter>() {
    let fx = Fixture::new();
    let adapter = A::new(fx.store.clone());
    let existing = adapter.create(data(1), HOUR).await.expect("create");
    let before = fx.tree();
    let unknown = A::unknown_key();
    assert_eq!(adapter.load(&unknown).await.expect("load"), None);
    adapter.delete(&unknown).await.expect("delete");
    adapter
        .update_ttl(&unknown, HOUR)
        .await
        .expect("update ttl");
    assert_eq!(fx.tree(), before, "the store changed");
    assert_eq!(adapter.load(&existing).await.expect("load"), Some(data(1)));
}

/// A damaged session file is an error naming the file, for load and for save.
async fn corrupt_file_names_its_path<A: Adapter>() {
    let fx = Fixture::new();
    let adapter = A::new(fx.store.clone());
    let key = adapter.create(data(1), HOUR).await.expect("create");
    let path = fx.store.session_path(&A::sessiondir_id(&key));
    let mut bytes = std::fs::read(&path).expect("read the session file");
    *bytes.last_mut().expect("not empty") ^= 0x55;
    std::fs::write(&path, &bytes).expect("damage the session file");

    let shown = path.display().to_string();
    let err = adapter
        .load(&key)
        .await
        .expect_err("loading a corrupt file fails");
    assert!(
        err.contains(&shown),
        "load error does not name {shown}: {err}"
    );
    assert!(
        err.contains("checksum"),
        "load error does not say what is wrong: {err}"
    );
    let err = adapter
        .save(&key, data(2), HOUR)
        .await
        .expect_err("saving over a corrupt file fails");
    assert!(
        err.contains(&shown),
        "save error does not name {shown}: {err}"
    );
    assert_eq!(
        std::fs::read(&path).expect("read"),
        bytes,
        "the damaged file is left as it was"
    );
}

/// `delete` takes the lock: it waits while the session is checked out elsewhere and deletes
/// once released.
async fn delete_waits_for_the_holder<A: Adapter>() {
    let fx = Fixture::new();
    let adapter = A::new(fx.store.clone());
    let key = adapter.create(data(1), HOUR).await.expect("create");
    let checkout = fx
        .store
        .checkout::<Dict>(&A::sessiondir_id(&key))
        .expect("check out");
    let deleting = tokio::spawn({
        let (adapter, key) = (adapter.clone(), key.clone());
        async move { adapter.delete(&key).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !deleting.is_finished(),
        "delete did not wait for the holder"
    );
    assert_eq!(fx.session_files(), 1);
    checkout.release();
    tokio::time::timeout(Duration::from_secs(10), deleting)
        .await
        .expect("delete finishes once released")
        .expect("join")
        .expect("delete");
    assert_eq!(adapter.load(&key).await.expect("load"), None);
    assert_eq!(fx.session_files(), 0);
}

/// The blocking rule: with the session checked out by another thread, a save on a
/// current-thread runtime waits, and another task on that same runtime thread keeps running
/// meanwhile. If the adapter called the store on the runtime's thread, the ticker would stall
/// until the holder gave up (after 5 s), and this test fails.
fn store_calls_stay_off_the_executor<A: Adapter>() {
    let fx = Fixture::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime");
    let adapter = A::new(fx.store.clone());
    let key = runtime
        .block_on(adapter.create(data(1), HOUR))
        .expect("create");

    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn({
        let (store, id) = (fx.store.clone(), A::sessiondir_id(&key));
        move || {
            let checkout = store.checkout::<Dict>(&id).expect("holder checks out");
            held_tx.send(()).expect("report held");
            // Released when told, or after 5 s whatever happens, so a broken adapter that
            // blocks the runtime's thread cannot hang the test.
            let _ = release_rx.recv_timeout(Duration::from_secs(5));
            checkout.release();
        }
    });
    held_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the holder checked the session out");

    runtime.block_on(async {
        let ticks = Arc::new(AtomicU64::new(0));
        let ticker = tokio::spawn({
            let ticks = ticks.clone();
            async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    ticks.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        let saving = tokio::spawn({
            let (adapter, key) = (adapter.clone(), key.clone());
            async move { adapter.save(&key, data(2), HOUR).await }
        });
        let deadline = Instant::now() + Duration::from_secs(3);
        let before = ticks.load(Ordering::SeqCst);
        while ticks.load(Ordering::SeqCst) < before + 50 {
            tokio::time::sleep(Duration::from_millis(5)).await;
            assert!(
                Instant::now() < deadline,
                "the runtime's thread stalled while save waited: {} ticks in 3 s",
                ticks.load(Ordering::SeqCst) - before
            );
        }
        assert!(
            !saving.is_finished(),
            "save finished while the session was checked out elsewhere"
        );
        release_tx.send(()).expect("release the holder");
        let saved = tokio::time::timeout(Duration::from_secs(10), saving)
            .await
            .expect("save finishes once the holder released")
            .expect("join");
        assert_eq!(saved.expect("save"), key);
        ticker.abort();
    });
    holder.join().expect("holder thread");
    let back = runtime.block_on(adapter.load(&key)).expect("load");
    assert_eq!(back, Some(data(2)), "the save landed after the release");
}

macro_rules! conformance {
    ($($module:ident => $adapter:ty),* $(,)?) => {$(
        mod $module {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn create_load_save_delete() {
                round_trip::<$adapter>().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn expiry_gives_none() {
                super::expiry_gives_none::<$adapter>().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn id_cycling() {
                super::id_cycling::<$adapter>().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn ttl_update() {
                super::ttl_update::<$adapter>().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_create() {
                super::concurrent_create::<$adapter>().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_saves_are_atomic() {
                super::concurrent_saves_are_atomic::<$adapter>().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn json_values_round_trip() {
                super::json_values_round_trip::<$adapter>().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn unknown_key_touches_nothing() {
                super::unknown_key_touches_nothing::<$adapter>().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn corrupt_file_names_its_path() {
                super::corrupt_file_names_its_path::<$adapter>().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn delete_waits_for_the_holder() {
                super::delete_waits_for_the_holder::<$adapter>().await;
            }

            #[test]
            fn store_calls_stay_off_the_executor() {
                super::store_calls_stay_off_the_executor::<$adapter>();
            }
        }
    )*};
}

conformance!(tower => Tower, actix => Actix);
