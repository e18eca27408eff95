//! Expiry rules: an idle expiry removes the session (and what gc does about it), `touch`
//! slides only a sliding expiry, `set_expiry` changes the rule.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use sessiondir::{Backend, Dict, Error, Expiry, GcReport, Value};

use super::fixture::{Fixture, Kind, PATIENCE, conformance_tests};
use super::helpers::{dict, id_set, n_of, sample};
use crate::common::wait_until;

// ---------------------------------------------------------------------------------------------
// Expiry.
// ---------------------------------------------------------------------------------------------

fn idle_expiry_removes_the_session<F: Fixture>() {
    const TTL: Duration = Duration::from_millis(500);
    let fx = F::start();
    let store = fx.store();
    let keep = store
        .create(&dict(&[("n", Value::Int(1))]))
        .expect("create");
    let brief = store
        .create_with_expiry(&sample(), Expiry::Idle(TTL))
        .expect("create");
    // Held from before it expires until after gc.
    let pinned = store
        .create_with_expiry(&sample(), Expiry::Idle(TTL))
        .expect("create");
    let held = store.checkout::<Dict>(&pinned).expect("check out");
    let info = store.info(&brief).expect("info").expect("exists");
    assert_eq!(info.idle_ttl, Some(TTL));
    assert_eq!(info.expires, Some(info.modified + TTL));
    assert_eq!(info.expiry(), Expiry::Idle(TTL));

    // Waited for with `exists`, which records no activity: a visitor's `load` every few
    // milliseconds would keep a sliding session alive (design §3.7).
    wait_until(PATIENCE, "the sessions to expire", || {
        !store.exists(&brief).expect("exists")
            && store
                .info(&pinned)
                .expect("info")
                .is_some_and(|i| i.is_expired())
    });
    assert!(store.load::<Dict>(&brief).expect("load").is_none());
    assert!(store.snapshot::<Dict>(&brief).expect("snapshot").is_none());
    // A held session does not expire under its holder, in either backend (issue 19: it used
    // to read as deleted while its holder would still check it in): its recorded expiry has
    // passed, but it exists and loads until it is released.
    let info = store.info(&pinned).expect("info").expect("held, so kept");
    assert!(info.is_expired(), "{info:?}");
    assert!(store.exists(&pinned).expect("exists"));
    assert_eq!(store.load::<Dict>(&pinned).expect("load"), Some(sample()));

    match F::KIND {
        Kind::Dir => {
            // Still on disk until collected: info and ids show it.
            let info = store.info(&brief).expect("info").expect("still on disk");
            assert!(info.is_expired());
            assert_eq!(id_set(store), HashSet::from([keep, brief, pinned]));
            // gc deletes the expired session nobody holds and skips the held one.
            let report = store.delete_expired().expect("delete_expired");
            assert_eq!(
                (
                    report.scanned,
                    report.deleted,
                    report.skipped_busy,
                    report.damaged
                ),
                (3, 1, 1, 0),
                "{report:?}"
            );
            assert_eq!(report.bytes_freed, info.file_len());
            assert_eq!(store.info(&brief).expect("info"), None);
        }
        Kind::Redis => {
            // The server removes an unheld session's keys itself; the held one's lease keeps
            // its data (the check-out raised the data's TTL to the lease's).
            wait_until(PATIENCE, "the server to remove the keys", || {
                store.info(&brief).expect("info").is_none()
            });
            assert!(store.info(&pinned).expect("info").is_some());
            let error = store.checkout::<Dict>(&brief).expect_err("expired");
            assert!(
                matches!(error, Error::NotFound { id } if id == brief),
                "{error:?}"
            );
            let report = store.delete_expired().expect("delete_expired");
            assert_eq!(report, GcReport::default(), "nothing to do on Redis");
        }
    }
    // Released without a check-in, it is judged by its own expiry again: gone for readers,
    // and a check-out says so (Expired while its data is still there, NotFound after).
    // (Awaited: a released flock can stay taken a moment by a copy in a child being spawned,
    // fixture.rs.)
    held.release();
    wait_until(PATIENCE, "the released session to read as expired", || {
        !store.exists(&pinned).expect("exists")
    });
    assert!(store.load::<Dict>(&pinned).expect("load").is_none());
    let error = store.checkout::<Dict>(&pinned).expect_err("expired");
    assert!(error.is_gone(), "{error:?}");
    if F::KIND == Kind::Dir {
        assert!(
            matches!(error, Error::Expired { id } if id == pinned),
            "{error:?}"
        );
        assert_eq!(id_set(store), HashSet::from([keep, pinned]));
    }
    assert!(store.checkout::<Dict>(&brief).expect_err("gone").is_gone());
    assert_eq!(n_of(store, &keep), 1, "a session without expiry stays");
}

fn touch_slides_only_a_sliding_expiry<F: Fixture>() {
    const TTL: Duration = Duration::from_secs(60);
    let fx = F::start();
    let store = fx.store();
    let clock_moves_past = |t: SystemTime| {
        wait_until(PATIENCE, "the clock to move on", || {
            SystemTime::now() >= t + Duration::from_millis(20)
        });
    };

    // Sliding: touch and check-in push the expiry later.
    let sliding = store
        .create_with_expiry(&sample(), Expiry::Idle(TTL))
        .expect("create");
    let first = store.info(&sliding).expect("info").expect("exists");
    clock_moves_past(first.modified);
    let touched = store.touch(&sliding).expect("touch");
    assert!(
        touched.expires > first.expires,
        "{:?} > {:?}",
        touched.expires,
        first.expires
    );
    assert_eq!(touched.expires, Some(touched.modified + TTL));
    assert_eq!(touched.idle_ttl, Some(TTL));
    assert_eq!(touched.generation, first.generation + 1);
    assert_eq!(touched.created, first.created);
    assert_eq!(store.info(&sliding).expect("info"), Some(touched.clone()));
    assert_eq!(
        store.load::<Dict>(&sliding).expect("load"),
        Some(sample()),
        "touch leaves the data"
    );
    clock_moves_past(touched.modified);
    let session = store.checkout::<Dict>(&sliding).expect("check out");
    session.check_in().expect("check in");
    let checked_in = store.info(&sliding).expect("info").expect("exists");
    assert!(
        checked_in.expires > touched.expires,
        "a check-in slides too"
    );
    assert_eq!(checked_in.expires, Some(checked_in.modified + TTL));

    // Fixed: touch changes the modification time only.
    let at = SystemTime::now() + Duration::from_secs(3600);
    let fixed = store
        .create_with_expiry(&sample(), Expiry::At(at))
        .expect("create");
    let first = store.info(&fixed).expect("info").expect("exists");
    assert_eq!(first.idle_ttl, None);
    let expires = first.expires.expect("a fixed expiry");
    assert!(
        expires <= at && at < expires + Duration::from_millis(1),
        "ms precision"
    );
    clock_moves_past(first.modified);
    let touched = store.touch(&fixed).expect("touch");
    assert_eq!(touched.expires, first.expires);
    assert!(touched.modified > first.modified);
    assert_eq!(touched.generation, 2);

    // Never: no expiry, before and after a touch.
    let never = store
        .create_with_expiry(&sample(), Expiry::Never)
        .expect("create");
    let info = store.info(&never).expect("info").expect("exists");
    assert_eq!((info.expires, info.idle_ttl), (None, None));
    assert_eq!(info.expiry(), Expiry::Never);
    let touched = store.touch(&never).expect("touch");
    assert_eq!((touched.expires, touched.idle_ttl), (None, None));
    assert_eq!(store.info(&never).expect("info"), Some(touched));
}

fn set_expiry_changes_the_rule<F: Fixture>() {
    let fx = F::start();
    let store = fx.store();
    let id = store
        .create(&dict(&[("n", Value::Int(1))]))
        .expect("create");

    let info = store
        .set_expiry(&id, Expiry::Idle(Duration::from_secs(60)))
        .expect("set_expiry");
    assert_eq!(info.idle_ttl, Some(Duration::from_secs(60)));
    assert_eq!(info.expires, Some(info.modified + Duration::from_secs(60)));
    assert_eq!(info.generation, 2);
    assert_eq!(store.info(&id).expect("info"), Some(info));

    let info = store.set_expiry(&id, Expiry::Never).expect("set_expiry");
    assert_eq!(
        (info.expires, info.idle_ttl, info.generation),
        (None, None, 3)
    );
    assert_eq!(n_of(store, &id), 1, "set_expiry leaves the data");

    // A time in the past: gone at once.
    let past = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    let info = store.set_expiry(&id, Expiry::At(past)).expect("set_expiry");
    assert_eq!(info.expires, Some(past));
    assert_eq!(store.load::<Dict>(&id).expect("load"), None);
    assert!(!store.exists(&id).expect("exists"));
    let error = store.checkout::<Dict>(&id).expect_err("expired");
    assert!(error.is_gone(), "{error:?}");
    match F::KIND {
        Kind::Dir => {
            assert!(matches!(error, Error::Expired { .. }), "{error:?}");
            assert!(
                store
                    .info(&id)
                    .expect("info")
                    .is_some_and(|i| i.is_expired()),
                "on disk until collected"
            );
            assert!(
                store.delete(&id).expect("delete"),
                "delete removes the expired file"
            );
        }
        Kind::Redis => {
            assert!(matches!(error, Error::NotFound { .. }), "{error:?}");
            assert_eq!(
                store.info(&id).expect("info"),
                None,
                "the server removed it"
            );
            assert!(
                !store.delete(&id).expect("delete"),
                "nothing left to delete"
            );
        }
    }
    assert!(store.ids().next().is_none(), "nothing left");

    // Checkout::set_expiry is written by the check-in: a brief session made permanent stays
    // past its old expiry.
    let brief = store
        .create_with_expiry(&Dict::new(), Expiry::Idle(Duration::from_millis(300)))
        .expect("create");
    let old = store.info(&brief).expect("info").expect("exists");
    let mut session = store.checkout::<Dict>(&brief).expect("check out");
    session.set_expiry(Expiry::Never);
    session.data_mut().insert("n", 2);
    session.check_in().expect("check in");
    let info = store.info(&brief).expect("info").expect("exists");
    assert_eq!((info.expires, info.idle_ttl), (None, None));
    let old_expiry = old.expires.expect("had an expiry");
    wait_until(PATIENCE, "the old expiry to pass", || {
        SystemTime::now() > old_expiry + Duration::from_millis(200)
    });
    assert_eq!(n_of(store, &brief), 2, "still there past the old expiry");
}

conformance_tests!(
    idle_expiry_removes_the_session,
    touch_slides_only_a_sliding_expiry,
    set_expiry_changes_the_rule,
);
