//! Expiry: a past fixed time (gone but with info), a fixed future time (not moved), idle
//! expiry (slides on check-in and touch), touch without expiry, `set_expiry`, and the
//! builder's default expiry.

use std::time::Duration;

use sessiondir::{Dict, Expiry};

use super::helpers::{assert_expired, counter_dict, info, payload_bytes, tick, whole_ms_from_now};
use crate::common::TestStore;

#[test]
fn a_session_expired_at_a_past_time_is_gone_but_has_info() {
    let ts = TestStore::new();
    let store = &ts.store;
    let past = whole_ms_from_now(-60_000);
    let id = store
        .create_with_expiry(&counter_dict(1), Expiry::At(past))
        .unwrap();

    assert_eq!(store.load::<Dict>(&id).unwrap(), None);
    assert!(store.snapshot::<Dict>(&id).unwrap().is_none());
    assert!(!store.exists(&id).unwrap());
    assert_expired(store.checkout::<Dict>(&id), &id);
    assert_expired(store.try_checkout::<Dict>(&id), &id);
    assert_expired(store.touch(&id), &id);
    assert_expired(store.cycle_id(&id), &id);

    let i = info(store, &id);
    assert_eq!(i.expires, Some(past));
    assert_eq!(i.idle_ttl, None);
    assert_eq!(i.expiry(), Expiry::At(past));
    assert!(i.is_expired());
    assert!(i.is_expired_at(past));
    assert!(!i.is_expired_at(past - Duration::from_millis(1)));
    assert_eq!(i.generation, 1, "failed operations wrote nothing");

    // The file is still there until deleted.
    assert!(store.session_path(&id).is_file());
    assert!(store.delete(&id).unwrap());
    assert_eq!(store.info(&id).unwrap(), None);
}

#[test]
fn a_fixed_future_expiry_is_not_moved_by_check_in_or_touch() {
    let ts = TestStore::new();
    let store = &ts.store;
    let at = whole_ms_from_now(3_600_000);
    let id = store
        .create_with_expiry(&counter_dict(1), Expiry::At(at))
        .unwrap();
    assert_eq!(info(store, &id).expires, Some(at));
    tick();
    store.checkout::<Dict>(&id).unwrap().check_in().unwrap();
    assert_eq!(info(store, &id).expires, Some(at));
    tick();
    let touched = store.touch(&id).unwrap();
    assert_eq!(touched.expires, Some(at));
    assert_eq!(touched.generation, 3);
    assert_eq!(info(store, &id), touched);
    assert!(store.exists(&id).unwrap());
}

#[test]
fn idle_expiry_slides_on_check_in_and_touch() {
    let ts = TestStore::new();
    let store = &ts.store;
    let ttl = Duration::from_secs(3600);
    let id = store
        .create_with_expiry(&counter_dict(1), Expiry::Idle(ttl))
        .unwrap();
    let i0 = info(store, &id);
    assert_eq!(i0.idle_ttl, Some(ttl));
    assert_eq!(i0.expiry(), Expiry::Idle(ttl));
    assert_eq!(i0.expires, Some(i0.modified + ttl));

    // Check-in: expiry moves forward with the modification time.
    tick();
    let mut co = store.checkout::<Dict>(&id).unwrap();
    co.data_mut().increment("counter", 1).unwrap();
    co.check_in().unwrap();
    let i1 = info(store, &id);
    assert_eq!(i1.generation, 2);
    assert!(i1.modified > i0.modified, "{i1:?} vs {i0:?}");
    assert!(i1.expires > i0.expires, "{i1:?} vs {i0:?}");
    assert_eq!(i1.expires, Some(i1.modified + ttl));
    assert_eq!(i1.created, i0.created);

    // Touch: expiry moves forward, the payload bytes do not change, the generation does.
    let payload_before = payload_bytes(store, &id);
    tick();
    let i2 = store.touch(&id).unwrap();
    assert_eq!(info(store, &id), i2);
    assert_eq!(i2.generation, 3);
    assert!(i2.modified > i1.modified);
    assert!(i2.expires > i1.expires);
    assert_eq!(i2.expires, Some(i2.modified + ttl));
    assert_eq!(i2.created, i0.created);
    assert_eq!(i2.payload_len, i1.payload_len);
    assert_eq!(payload_bytes(store, &id), payload_before);
    assert_eq!(
        store.load::<Dict>(&id).unwrap().unwrap().get_i64("counter"),
        Some(2)
    );
}

#[test]
fn touch_without_idle_expiry_only_updates_modified_and_generation() {
    let ts = TestStore::new();
    let store = &ts.store;
    let id = store.create(&counter_dict(3)).unwrap();
    let i0 = info(store, &id);
    let payload = payload_bytes(store, &id);
    tick();
    let i1 = store.touch(&id).unwrap();
    assert_eq!(i1.generation, 2);
    assert!(i1.modified > i0.modified);
    assert_eq!(i1.expires, None);
    assert_eq!(i1.idle_ttl, None);
    assert_eq!(payload_bytes(store, &id), payload);
}

#[test]
fn set_expiry_never_clears_expiry_and_checkout_can_set_one() {
    let ts = TestStore::new();
    let store = &ts.store;
    let id = store
        .create_with_expiry(&counter_dict(1), Expiry::Idle(Duration::from_secs(60)))
        .unwrap();
    let payload = payload_bytes(store, &id);
    let i = store.set_expiry(&id, Expiry::Never).unwrap();
    assert_eq!(i.expires, None);
    assert_eq!(i.idle_ttl, None);
    assert_eq!(i.expiry(), Expiry::Never);
    assert_eq!(i.generation, 2);
    assert_eq!(info(store, &id), i);
    assert_eq!(
        payload_bytes(store, &id),
        payload,
        "set_expiry kept the payload"
    );

    // A later check-in does not bring an expiry back.
    store.checkout::<Dict>(&id).unwrap().check_in().unwrap();
    let i = info(store, &id);
    assert_eq!((i.expires, i.idle_ttl, i.generation), (None, None, 3));

    // set_expiry to a fixed time, then back to Idle.
    let at = whole_ms_from_now(600_000);
    assert_eq!(
        store.set_expiry(&id, Expiry::At(at)).unwrap().expires,
        Some(at)
    );
    let i = store
        .set_expiry(&id, Expiry::Idle(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(i.idle_ttl, Some(Duration::from_secs(5)));
    assert_eq!(i.expires, Some(i.modified + Duration::from_secs(5)));

    // Checkout::set_expiry is written by the check-in: a past time expires the session.
    let mut co = store.checkout::<Dict>(&id).unwrap();
    co.set_expiry(Expiry::At(whole_ms_from_now(-1_000)));
    co.check_in().unwrap();
    assert_eq!(store.load::<Dict>(&id).unwrap(), None);
    assert!(!store.exists(&id).unwrap());
    assert!(info(store, &id).is_expired());
}

#[test]
fn builder_default_expiry_applies_to_create() {
    let ttl = Duration::from_secs(1800);
    let ts = TestStore::with(|b| b.idle_expiry(ttl));
    let id = ts.store.create(&Dict::new()).unwrap();
    let i = info(&ts.store, &id);
    assert_eq!(i.idle_ttl, Some(ttl));
    assert_eq!(i.expires, Some(i.modified + ttl));
    // An explicit rule overrides the default.
    let id = ts
        .store
        .create_with_expiry(&Dict::new(), Expiry::Never)
        .unwrap();
    assert_eq!(info(&ts.store, &id).expires, None);

    let at = whole_ms_from_now(86_400_000);
    let ts = TestStore::with(|b| b.default_expiry(Expiry::At(at)));
    let id = ts.store.create(&Dict::new()).unwrap();
    let i = info(&ts.store, &id);
    assert_eq!(i.expires, Some(at));
    assert_eq!(i.idle_ttl, None);

    // The default default is Never.
    let ts = TestStore::new();
    let id = ts.store.create(&Dict::new()).unwrap();
    assert_eq!(info(&ts.store, &id).expiry(), Expiry::Never);
}
