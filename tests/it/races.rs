//! Delete, cycle, garbage collection and lock timeouts racing with holders and waiters in other
//! processes.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use sessiondir::{AcquiredBy, Dict, Error, Expiry, Observer, SessionId, Store};

use crate::child::{self, Proc, field};
use crate::common::{TestStore, wait_until};

const REPORT_TIMEOUT: Duration = Duration::from_secs(10);

fn dict(value: &str) -> Dict {
    let mut d = Dict::new();
    d.insert("value", value);
    d
}

/// A waiter child on `id` with a 10 s lock timeout, already waiting.
fn start_waiter(dir: &Path, id: &SessionId) -> Proc {
    let mut env = child::envs(dir, id);
    env.push(("SD_LOCK_TIMEOUT_MS", "10000".to_owned()));
    let mut waiter = Proc::start("waiter", &env);
    waiter.wait_for("WAITING", REPORT_TIMEOUT);
    waiter
}

/// A holder child on `id`, holding it.
fn start_holder(dir: &Path, id: &SessionId) -> Proc {
    let mut holder = Proc::start("hold", &child::envs(dir, id));
    holder.wait_for("ACQUIRED", REPORT_TIMEOUT);
    holder
}

/// The error variant in a waiter's `RESULT` line.
fn outcome(result: &str) -> &str {
    result.split_whitespace().nth(1).unwrap_or("")
}

#[test]
fn delete_while_another_process_waits_gives_it_deleted() {
    let ts = TestStore::new();
    let id = ts.store.create(&dict("doomed")).unwrap();
    let session = ts.store.checkout::<Dict>(&id).unwrap();
    let mut waiter = start_waiter(&ts.dir, &id);

    let deleted_at = Instant::now();
    session.delete().unwrap();
    let result = waiter.wait_for("RESULT", REPORT_TIMEOUT);
    let after = deleted_at.elapsed();

    assert_eq!(outcome(&result), "Deleted", "waiter: {result}");
    assert_eq!(field(&result, "id"), Some(id.as_str()), "{result}");
    assert!(
        after < Duration::from_secs(2),
        "the waiter learnt of the delete only {after:?} later (lock timeout 10 s): {result}"
    );
    waiter.finish(REPORT_TIMEOUT);
    assert!(ts.store.load::<Dict>(&id).unwrap().is_none());
    assert!(matches!(
        ts.store.checkout::<Dict>(&id),
        Err(Error::NotFound { .. })
    ));
    assert!(!ts.store.session_path(&id).exists());
}

#[test]
fn cycle_id_while_another_process_waits_on_the_old_id_gives_it_deleted() {
    let ts = TestStore::new();
    let old = ts.store.create(&dict("before-login")).unwrap();
    let mut session = ts.store.checkout::<Dict>(&old).unwrap();
    let mut waiter = start_waiter(&ts.dir, &old);

    let cycled_at = Instant::now();
    let new = session.cycle_id().unwrap();
    assert_ne!(new, old);
    assert_eq!(session.id(), &new);
    session.data_mut().insert("value", "after-login");
    session.check_in().unwrap();

    let result = waiter.wait_for("RESULT", REPORT_TIMEOUT);
    let after = cycled_at.elapsed();
    assert_eq!(outcome(&result), "Deleted", "waiter: {result}");
    assert_eq!(field(&result, "id"), Some(old.as_str()), "{result}");
    assert!(
        after < Duration::from_secs(2),
        "the waiter learnt of the cycle only {after:?} later: {result}"
    );
    waiter.finish(REPORT_TIMEOUT);

    let seen: Dict = ts.store.load(&new).unwrap().expect("the new id loads");
    assert_eq!(seen.get_str("value"), Some("after-login"));
    assert!(ts.store.load::<Dict>(&old).unwrap().is_none());
    assert!(matches!(
        ts.store.checkout::<Dict>(&old),
        Err(Error::NotFound { .. })
    ));
    // A waiter arriving now on the new id gets it.
    let mut late = Proc::start("waiter", &child::envs(&ts.dir, &new));
    let result = late.wait_for("RESULT", REPORT_TIMEOUT);
    assert_eq!(outcome(&result), "Ok", "{result}");
    assert_eq!(field(&result, "value"), Some("after-login"), "{result}");
    late.finish(REPORT_TIMEOUT);
}

/// Headers keep milliseconds: stay clear of a limit by more than a rounding error.
const MS_ROUNDING: Duration = Duration::from_millis(20);

const TTL: Duration = Duration::from_millis(1200);

fn wait_expired(store: &Store, id: &SessionId) {
    wait_until(Duration::from_secs(5), "the session to expire", || {
        store
            .info(id)
            .unwrap()
            .expect("the session file exists")
            .is_expired()
    });
}

#[test]
fn gc_skips_an_expired_session_while_held_and_a_sliding_check_in_revives_it() {
    let ts = TestStore::new();
    let id = ts
        .store
        .create_with_expiry(&dict("sliding"), Expiry::Idle(TTL))
        .unwrap();
    let mut holder = start_holder(&ts.dir, &id);
    wait_expired(&ts.store, &id);
    // Past its expiry but held (by another process): in use, so it still loads and exists
    // (design §3.6, "Held sessions do not expire"; it used to read as deleted).
    assert!(ts.store.load::<Dict>(&id).unwrap().is_some());
    assert!(ts.store.exists(&id).unwrap());

    let report = ts.store.delete_expired().unwrap();
    assert_eq!(report.skipped_busy, 1, "{report:?}");
    assert_eq!(report.deleted, 0, "{report:?}");
    assert!(
        ts.store.session_path(&id).exists(),
        "gc deleted a held session"
    );

    let sent = SystemTime::now();
    holder.send("checkin");
    holder.wait_for("CHECKED_IN", REPORT_TIMEOUT);
    holder.finish(REPORT_TIMEOUT);

    let info = ts.store.info(&id).unwrap().expect("session file");
    let expires = info.expires.expect("an idle session expires");
    assert!(
        expires + Duration::from_millis(1) >= sent + TTL,
        "the check-in did not slide the expiry: {info:?}"
    );
    let seen: Dict = ts
        .store
        .load(&id)
        .unwrap()
        .expect("the check-in revived the session");
    assert_eq!(seen.get_bool("checked_in_by_holder"), Some(true));
    assert_eq!(seen.get_str("value"), Some("sliding"));
    let report = ts.store.delete_expired().unwrap();
    assert_eq!((report.deleted, report.skipped_busy), (0, 0), "{report:?}");
    assert!(ts.store.exists(&id).unwrap());
}

#[test]
fn gc_deletes_a_fixed_expiry_session_only_after_its_holder_lets_go() {
    let ts = TestStore::new();
    let id = ts
        .store
        .create_with_expiry(&dict("fixed"), Expiry::At(SystemTime::now() + TTL))
        .unwrap();
    let keep = ts.store.create(&dict("never expires")).unwrap();
    let mut holder = start_holder(&ts.dir, &id);
    wait_expired(&ts.store, &id);

    let report = ts.store.delete_expired().unwrap();
    assert_eq!(report.scanned, 2, "{report:?}");
    assert_eq!(report.skipped_busy, 1, "{report:?}");
    assert_eq!(report.deleted, 0, "{report:?}");
    assert!(
        ts.store.session_path(&id).exists(),
        "gc deleted a held session"
    );

    // The holder checks in: a fixed expiry does not move, so the session stays expired.
    holder.send("checkin");
    holder.wait_for("CHECKED_IN", REPORT_TIMEOUT);
    holder.finish(REPORT_TIMEOUT);
    assert!(ts.store.info(&id).unwrap().unwrap().is_expired());

    let report = ts.store.delete_expired().unwrap();
    assert_eq!(report.deleted, 1, "{report:?}");
    assert_eq!(report.skipped_busy, 0, "{report:?}");
    assert!(!ts.store.session_path(&id).exists());
    assert!(matches!(
        ts.store.checkout::<Dict>(&id),
        Err(Error::NotFound { .. })
    ));
    assert!(ts.store.exists(&keep).unwrap());
}

#[test]
fn delete_idle_skips_a_session_held_by_another_process() {
    let ts = TestStore::new();
    let held = ts.store.create(&dict("held")).unwrap();
    let idle = ts.store.create(&dict("idle")).unwrap();
    let mut holder = start_holder(&ts.dir, &held);
    let limit = Duration::from_millis(300);
    wait_until(Duration::from_secs(5), "both sessions to be idle", || {
        [held, idle]
            .iter()
            .all(|id| ts.store.info(id).unwrap().unwrap().idle_for() > limit + MS_ROUNDING)
    });

    let report = ts.store.delete_idle(limit).unwrap();
    assert_eq!(report.deleted, 1, "{report:?}");
    assert_eq!(report.skipped_busy, 1, "{report:?}");
    assert!(ts.store.session_path(&held).exists());
    assert!(!ts.store.session_path(&idle).exists());

    // Released without a check-in, it is still idle: the next pass deletes it.
    holder.send("release");
    holder.wait_for("RELEASED", REPORT_TIMEOUT);
    holder.finish(REPORT_TIMEOUT);
    let report = ts.store.delete_idle(limit).unwrap();
    assert_eq!(report.deleted, 1, "{report:?}");
    assert_eq!(report.skipped_busy, 0, "{report:?}");
    assert!(!ts.store.session_path(&held).exists());
}

/// Counts `waiting` notifications.
#[derive(Default)]
struct WaitCounter(AtomicUsize);

impl Observer for WaitCounter {
    fn waiting(&self, _id: &SessionId) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn waiter_is_woken_by_the_release_event_of_another_process() {
    let ts = TestStore::new();
    let id = ts.store.create(&dict("x")).unwrap();
    let mut holder = start_holder(&ts.dir, &id);

    let poll_delay = Duration::from_secs(10);
    let observer = Arc::new(WaitCounter::default());
    let store = Store::builder(&ts.dir)
        .poll_delay(poll_delay)
        .lock_timeout(Duration::from_secs(20))
        .observer(observer.clone())
        .open()
        .unwrap();
    let waiter = std::thread::spawn(move || {
        let session = store.checkout::<Dict>(&id)?;
        let got_at = Instant::now();
        let acquisition = *session.acquisition();
        session.release();
        Ok::<_, Error>((acquisition, got_at, store.lock_stats()))
    });
    wait_until(REPORT_TIMEOUT, "the check-out to wait", || {
        observer.0.load(Ordering::SeqCst) == 1 || waiter.is_finished()
    });
    // Not an assertion: waiters poll at 1, 3, 7, ... 255, 511 ms (backing off towards the poll
    // delay); releasing about 400 ms into the wait puts the release well between two polls, so
    // that only the release event can explain a prompt wake-up.
    std::thread::sleep(Duration::from_millis(400));
    let released_at = Instant::now();
    holder.send("release");
    let (acquisition, got_at, stats) = waiter.join().unwrap().expect("the waiter gets the session");
    holder.finish(REPORT_TIMEOUT);

    assert_eq!(
        acquisition.by,
        AcquiredBy::Event,
        "woken by {:?} after {:?}",
        acquisition.by,
        acquisition.waited
    );
    let latency = got_at.saturating_duration_since(released_at);
    assert!(
        latency < Duration::from_secs(1) && acquisition.waited < Duration::from_secs(2),
        "release to acquisition {latency:?}, waited {:?} (poll delay {poll_delay:?})",
        acquisition.waited
    );
    assert_eq!(stats.event, 1, "{stats:?}");
    assert_eq!(stats.poll + stats.timeouts, 0, "{stats:?}");
}

#[test]
fn lock_timeout_and_busy_against_a_holder_in_another_process() {
    let ts = TestStore::new();
    let id = ts.store.create(&dict("x")).unwrap();
    let mut holder = start_holder(&ts.dir, &id);
    let timeout = Duration::from_millis(200);
    let store = Store::builder(&ts.dir)
        .lock_timeout(timeout)
        .open()
        .unwrap();

    let start = Instant::now();
    match store.checkout::<Dict>(&id) {
        Err(Error::LockTimeout { id: got, waited }) => {
            assert_eq!(got, id);
            assert!(waited >= timeout, "gave up after {waited:?}");
            assert!(waited < Duration::from_secs(3), "gave up after {waited:?}");
        }
        other => panic!("expected LockTimeout, got {other:?}"),
    }
    assert!(start.elapsed() >= timeout);

    match store.try_checkout::<Dict>(&id) {
        Err(Error::Busy { id: got }) => assert_eq!(got, id),
        other => panic!("expected Busy, got {other:?}"),
    }
    // A delete waits for the holder too: it never pulls a session from under a check-out.
    match store.delete(&id) {
        Err(Error::LockTimeout { id: got, .. }) => assert_eq!(got, id),
        other => panic!("expected LockTimeout from delete, got {other:?}"),
    }
    let stats = store.lock_stats();
    assert_eq!((stats.timeouts, stats.busy), (2, 1), "{stats:?}");
    assert!(ts.store.session_path(&id).exists());

    holder.send("release");
    holder.finish(REPORT_TIMEOUT);
    // A waiting check-out, not try_checkout: the helper the timed-out waits left queued in the
    // kernel may hold the lock for an instant after the release before it lets go (or is
    // adopted by this check-out).
    let session = store.checkout::<Dict>(&id).expect("free after release");
    assert_eq!(session.data().get_str("value"), Some("x"));
    assert!(!session.data().contains_key("uncommitted"));
}

#[test]
fn a_timed_out_wait_leaves_no_lock_behind_for_other_processes() {
    let ts = TestStore::new();
    let id = ts.store.create(&dict("x")).unwrap();
    let mut holder = start_holder(&ts.dir, &id);
    let store = Store::builder(&ts.dir)
        .lock_timeout(Duration::from_millis(100))
        .open()
        .unwrap();
    // Several timed-out waits: their helper stays queued in the kernel behind the holder.
    for _ in 0..3 {
        assert!(matches!(
            store.checkout::<Dict>(&id),
            Err(Error::LockTimeout { .. })
        ));
    }
    // Another process queues too, then the holder lets go.
    let mut waiter = start_waiter(&ts.dir, &id);
    holder.send("release");
    holder.finish(REPORT_TIMEOUT);
    // Whichever of the two queued requests the kernel grants first, the waiter in the other
    // process must get the session: the abandoned helper here lets go at once.
    let result = waiter.wait_for("RESULT", REPORT_TIMEOUT);
    assert_eq!(outcome(&result), "Ok", "waiter: {result}");
    assert_eq!(field(&result, "by"), Some("Event"), "{result}");
    waiter.finish(REPORT_TIMEOUT);
    // And nothing holds it now: a check-out from a fresh process-like store gets it at once.
    let fresh = Store::open(&ts.dir).unwrap();
    wait_until(REPORT_TIMEOUT, "the session is free", || {
        fresh.try_checkout::<Dict>(&id).is_ok()
    });
    drop(store);
}
