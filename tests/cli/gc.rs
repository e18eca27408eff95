//! `sessiondir gc`: deletes exactly the expired (default) or idle sessions, never held ones.

use std::time::Duration;

use sessiondir::{Dict, Expiry, SessionId};

use crate::common::{Env, age_past, an_hour_ago, counter, sorted};

#[test]
fn default_gc_deletes_exactly_the_expired_sessions() {
    let env = Env::new();
    let live = vec![
        env.session(1),
        env.session(2),
        env.store
            .create_with_expiry(&counter(3), Expiry::Idle(Duration::from_secs(3600)))
            .unwrap(),
    ];
    let expired = vec![env.expired(4), env.expired(5), env.expired(6)];
    let bytes: u64 = expired.iter().map(|id| env.file_len(id)).sum();

    let out = env.run("gc", &["--json"]);
    out.ok();
    let v = out.json_one();
    assert_eq!(v["scanned"], 6, "{v}");
    assert_eq!(v["deleted"], 3, "{v}");
    assert_eq!(v["skipped_busy"], 0, "{v}");
    assert_eq!(v["damaged"], 0, "{v}");
    assert_eq!(v["bytes_freed"], bytes, "{v}");
    assert!(bytes > 0);
    assert!(v["elapsed_ms"].is_u64(), "{v}");

    let all: Vec<SessionId> = live.iter().chain(&expired).copied().collect();
    assert_eq!(sorted(&env.on_disk(&all)), sorted(&live));

    // Nothing left to collect; the text report says so.
    let out = env.run("gc", &[]);
    out.ok();
    assert!(
        out.stdout.starts_with(
            "scanned 3, deleted 0, skipped 0 checked out, 0 damaged, 0 bytes freed in "
        ),
        "{}",
        out.stdout
    );
}

#[test]
fn idle_gc_deletes_sessions_untouched_for_longer() {
    let env = Env::new();
    let old = [env.session(1), env.session(2)];
    let revived = env.session(3);
    age_past(Duration::from_secs(1));
    env.store.touch(&revived).unwrap();
    let fresh = env.session(4);
    // Expired but recently written: --idle alone must not delete it.
    let fresh_expired = env.expired(5);
    let old_bytes: u64 = old.iter().map(|id| env.file_len(id)).sum();

    let out = env.run("gc", &["--idle", "1s", "--json"]);
    out.ok();
    let v = out.json_one();
    assert_eq!(v["scanned"], 5, "{v}");
    assert_eq!(v["deleted"], 2, "{v}");
    assert_eq!(v["skipped_busy"], 0, "{v}");
    assert_eq!(v["bytes_freed"], old_bytes, "{v}");
    let all = [old[0], old[1], revived, fresh, fresh_expired];
    assert_eq!(
        sorted(&env.on_disk(&all)),
        sorted(&[revived, fresh, fresh_expired])
    );

    // --expired together with --idle: the expired one goes too.
    let out = env.run("gc", &["--expired", "--idle", "1s", "--json"]);
    out.ok();
    let v = out.json_one();
    assert_eq!(v["scanned"], 3, "{v}");
    assert_eq!(v["deleted"], 1, "{v}");
    assert_eq!(sorted(&env.on_disk(&all)), sorted(&[revived, fresh]));
}

#[test]
fn held_expired_session_is_skipped_as_busy() {
    let env = Env::new();
    let expired = vec![env.expired(1), env.expired(2)];
    let live = env.session(3);
    // Expire a session while holding it: checkout, change the expiry, save (keeps the lock).
    let held_id = env.session(4);
    let mut held = env.store.checkout::<Dict>(&held_id).unwrap();
    held.set_expiry(Expiry::At(an_hour_ago()));
    held.save().unwrap();
    assert!(env.store.info(&held_id).unwrap().unwrap().is_expired());
    let bytes: u64 = expired.iter().map(|id| env.file_len(id)).sum();

    let out = env.run("gc", &["--json"]);
    let v = out.ok().json_one();
    assert_eq!(v["scanned"], 4, "{v}");
    assert_eq!(v["deleted"], 2, "{v}");
    assert_eq!(v["skipped_busy"], 1, "{v}");
    assert_eq!(v["damaged"], 0, "{v}");
    assert_eq!(v["bytes_freed"], bytes, "{v}");
    assert!(env.store.info(&held_id).unwrap().is_some());
    assert!(env.store.info(&live).unwrap().is_some());
    assert!(env.on_disk(&expired).is_empty());

    // Released, the next pass collects it.
    drop(held);
    let held_bytes = env.file_len(&held_id);
    let v = env.run("gc", &["--json"]).ok().json_one();
    assert_eq!(v["deleted"], 1, "{v}");
    assert_eq!(v["skipped_busy"], 0, "{v}");
    assert_eq!(v["bytes_freed"], held_bytes, "{v}");
    assert!(env.store.info(&held_id).unwrap().is_none());
    assert!(env.store.info(&live).unwrap().is_some());
}

#[test]
fn gc_keeps_data_of_survivors_intact() {
    let env = Env::new();
    let keep: Vec<SessionId> = (0..5).map(|n| env.session(n)).collect();
    for n in 0..5 {
        env.expired(100 + n);
    }
    let v = env.run("gc", &["--expired", "--json"]).ok().json_one();
    assert_eq!(v["deleted"], 5, "{v}");
    for (n, id) in keep.iter().enumerate() {
        let d: Dict = env.store.load(id).unwrap().unwrap();
        assert_eq!(d.get_i64("counter"), Some(n as i64));
    }
}
