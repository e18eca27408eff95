//! SIGKILLed holders and writers: locks released at once, sessions intact (old or new version,
//! never torn), temporary files of dead writers tidied, those of live holders left alone.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sessiondir::{Dict, Error, SessionId, Store, TidyReport};

use crate::child::{self, Blob, Proc, blob_pattern, field};
use crate::common::{self, TestStore, temp_files};

const REPORT_TIMEOUT: Duration = Duration::from_secs(10);

fn dict(value: &str) -> Dict {
    let mut d = Dict::new();
    d.insert("value", value);
    d
}

/// A holder child that checked in `value` and holds the session with an uncommitted change.
fn start_holder(ts: &TestStore, id: &SessionId, value: &str) -> Proc {
    let mut env = child::envs(&ts.dir, id);
    env.push(("SD_VALUE", value.to_owned()));
    let mut holder = Proc::start("hold", &env);
    holder.wait_for("ACQUIRED", REPORT_TIMEOUT);
    holder
}

#[test]
fn killed_holder_releases_the_session_at_once_with_last_checked_in_data() {
    let ts = TestStore::new();
    let id = ts.store.create(&dict("initial")).unwrap();
    let mut holder = start_holder(&ts, &id, "checked-in-by-child");

    // It really holds the session.
    let busy = ts.store.try_checkout::<Dict>(&id).unwrap_err();
    assert!(matches!(busy, Error::Busy { .. }), "{busy:?}");

    holder.kill();

    let store = Store::builder(&ts.dir)
        .lock_timeout(Duration::from_secs(5))
        .open()
        .unwrap();
    let start = Instant::now();
    let session = store
        .checkout::<Dict>(&id)
        .expect("the dead holder's lock is released");
    let elapsed = start.elapsed();
    assert!(
        elapsed < Duration::from_secs(1),
        "checkout after the holder died took {elapsed:?}"
    );
    assert_eq!(session.data().get_str("value"), Some("checked-in-by-child"));
    assert!(
        !session.data().contains_key("uncommitted"),
        "the holder's unsaved change must not be visible: {:?}",
        session.data()
    );
    session.release();
}

#[test]
fn waiter_in_another_process_gets_the_session_of_a_killed_holder() {
    let ts = TestStore::new();
    let id = ts.store.create(&dict("initial")).unwrap();
    let mut holder = start_holder(&ts, &id, "last-good");

    let mut env = child::envs(&ts.dir, &id);
    env.push(("SD_LOCK_TIMEOUT_MS", "5000".to_owned()));
    let mut waiter = Proc::start("waiter", &env);
    waiter.wait_for("WAITING", REPORT_TIMEOUT);

    let killed_at = Instant::now();
    holder.kill();
    let result = waiter.wait_for("RESULT", REPORT_TIMEOUT);
    let after_kill = killed_at.elapsed();
    assert_eq!(
        result.split_whitespace().nth(1),
        Some("Ok"),
        "waiter: {result}"
    );
    assert!(
        after_kill < Duration::from_secs(1),
        "waiter got the session {after_kill:?} after the kill: {result}"
    );
    assert_eq!(field(&result, "value"), Some("last-good"), "{result}");
    assert_eq!(field(&result, "uncommitted"), Some("false"), "{result}");
    waiter.finish(REPORT_TIMEOUT);
}

// --- writers killed between writing the temporary file and renaming it ----------------------

/// Size of the big writer's session (bytes of payload, about).
const BIG: usize = 6 << 20;
/// Kill attempts before giving up on catching a writer with its temporary file written.
const ATTEMPTS: u32 = 60;

fn big_store() -> TestStore {
    TestStore::with(|b| b.max_session_size(BIG as u64 + 64))
}

/// Temporary files of session `id` in its shard directory.
fn temps_of(store: &Store, id: &SessionId) -> Vec<PathBuf> {
    let dir = store.session_path(id);
    let dir = dir.parent().expect("shard directory");
    let prefix = format!(".{id}.");
    std::fs::read_dir(dir)
        .expect("list shard directory")
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".tmp"))
        })
        .map(|e| e.path())
        .collect()
}

/// Asserts the big session is complete and uniform, and returns its fill byte.
fn check_big_session(store: &Store, id: &SessionId) -> u8 {
    let blob: Blob = store
        .load(id)
        .expect("the session loads after the writer died")
        .expect("the session exists");
    assert_eq!(blob.0.len(), BIG, "session length");
    let first = blob.0[0];
    if let Some(at) = blob.0.iter().position(|&b| b != first) {
        panic!(
            "torn session: byte {at} is {} but byte 0 is {first}",
            blob.0[at]
        );
    }
    first
}

/// Starts big writers and SIGKILLs each at a varying moment after its temporary file appears,
/// until one leaves its temporary file behind. Checks the session after every kill. Returns
/// the leftover temporary files.
fn leave_orphan_temp_file(ts: &TestStore, id: &SessionId) -> Vec<PathBuf> {
    let mut env = child::envs(&ts.dir, id);
    env.push(("SD_SIZE", BIG.to_string()));
    env.push(("SD_MAX_SIZE", (BIG + 64).to_string()));
    // Temporary files belong to the classic check-in (tests/it/spares.rs covers the other).
    env.push(("SD_REUSE_INODES", "0".to_string()));
    for attempt in 0..ATTEMPTS {
        let mut writer = Proc::start("big_writer", &env);
        writer.wait_for("STARTED", REPORT_TIMEOUT);
        // Let it complete a varying number of check-ins first (0, 1 or 2).
        let warm_up = attempt % 3;
        if warm_up > 0 {
            let wanted = format!("WROTE {warm_up}");
            common::wait_until(REPORT_TIMEOUT, "a warm-up check-in", || {
                writer.reports().contains(&wanted) || writer.poll_exit().is_some()
            });
        }
        // Spin until the writer's temporary file exists, then kill after a varying delay.
        let spin_limit = Instant::now() + REPORT_TIMEOUT;
        while temps_of(&ts.store, id).is_empty() {
            assert!(
                Instant::now() < spin_limit && writer.poll_exit().is_none(),
                "the writer never created a temporary file\n{}",
                writer.diagnostics()
            );
            std::hint::spin_loop();
        }
        let delay = Duration::from_micros(u64::from(attempt % 5) * 150);
        let spin_from = Instant::now();
        while spin_from.elapsed() < delay {
            std::hint::spin_loop();
        }
        writer.kill();

        // Whatever the moment, the session is the last checked-in version, complete.
        let fill = check_big_session(&ts.store, id);
        let last_wrote = writer
            .reports()
            .iter()
            .filter_map(|r| r.strip_prefix("WROTE "))
            .map(|n| n.parse::<u64>().expect("WROTE n"))
            .max();
        let leftovers = temps_of(&ts.store, id);
        if leftovers.is_empty() {
            // The rename won the race: the kill came after a check-in completed.
            let allowed = [last_wrote, Some(last_wrote.map_or(1, |n| n + 1))]
                .map(|w| w.map_or(0, blob_pattern));
            assert!(
                allowed.contains(&fill),
                "fill {fill}, writer reported {last_wrote:?}"
            );
            continue;
        }
        // Killed between creating its temporary file and renaming it: the session is exactly
        // the last version the writer reported checking in (the initial one if none).
        assert_eq!(
            fill,
            last_wrote.map_or(0, blob_pattern),
            "writer reported check-ins up to {last_wrote:?}"
        );
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
        assert_eq!(
            temp_files(&ts.dir),
            leftovers,
            "the only temporary file in the store"
        );
        return leftovers;
    }
    panic!(
        "no writer was caught between writing its temporary file and renaming it in {ATTEMPTS} \
         attempts; this test proves nothing without one"
    );
}

fn total_len(paths: &[PathBuf]) -> u64 {
    paths
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum()
}

fn assert_orphan_removed(dir: &Path, report: &TidyReport, leftover_bytes: u64) {
    assert_eq!(report.temp_files_removed, 1, "{report:?}");
    assert_eq!(report.bytes_freed, leftover_bytes, "{report:?}");
    assert_eq!(report.skipped_busy, 0, "{report:?}");
    assert_eq!(report.orphan_locks_removed, 0, "{report:?}");
    assert_eq!(temp_files(dir), Vec::<PathBuf>::new());
}

#[test]
fn writer_killed_before_rename_leaves_old_version_and_tidy_removes_its_temp_file() {
    let ts = big_store();
    let id = ts.store.create(&Blob(vec![0; BIG])).unwrap();
    let leftovers = leave_orphan_temp_file(&ts, &id);
    let bytes = total_len(&leftovers);

    let report = ts.store.tidy().unwrap();
    assert_orphan_removed(&ts.dir, &report, bytes);
    let fill = check_big_session(&ts.store, &id);

    // The session is fully usable afterwards, and a second tidy finds nothing.
    let mut session = ts.store.checkout::<Blob>(&id).unwrap();
    assert_eq!(session.data().0[0], fill);
    session.data_mut().0.fill(250);
    session.check_in().unwrap();
    assert_eq!(check_big_session(&ts.store, &id), 250);
    assert_eq!(ts.store.tidy().unwrap(), TidyReport::default());
}

#[test]
fn writer_killed_before_rename_leaves_a_temp_file_that_close_removes() {
    let ts = big_store();
    let id = ts.store.create(&Blob(vec![0; BIG])).unwrap();
    let leftovers = leave_orphan_temp_file(&ts, &id);
    let bytes = total_len(&leftovers);

    // Another handle on the same directory closes: it tidies the whole store.
    let other = Store::builder(&ts.dir)
        .max_session_size(BIG as u64 + 64)
        .open()
        .unwrap();
    let report = other.close().unwrap();
    assert_orphan_removed(&ts.dir, &report, bytes);
    check_big_session(&ts.store, &id);
}

// --- tidy never removes a live holder's temporary file ---------------------------------------

/// Plants a file named like a temporary file of `id` in its shard directory.
fn plant_temp_file(store: &Store, id: &SessionId) -> PathBuf {
    let path = store.session_path(id);
    let path = path
        .parent()
        .expect("shard directory")
        .join(format!(".{id}.liveR4nd0m.tmp"));
    std::fs::write(&path, b"a live writer's half-written session").unwrap();
    path
}

#[test]
fn tidy_leaves_the_temp_file_of_a_holder_in_this_process() {
    let ts = TestStore::new();
    let id = ts.store.create(&dict("x")).unwrap();
    let other = ts.store.create(&dict("y")).unwrap();
    let session = ts.store.checkout::<Dict>(&id).unwrap();
    let planted = plant_temp_file(&ts.store, &id);

    let report = ts.store.tidy().unwrap();
    assert!(report.skipped_busy >= 1, "{report:?}");
    assert_eq!(report.temp_files_removed, 0, "{report:?}");
    assert!(
        planted.exists(),
        "tidy removed a live holder's temporary file"
    );
    assert_eq!(temp_files(&ts.dir), vec![planted.clone()]);

    session.release();
    let report = ts.store.tidy().unwrap();
    assert_eq!(report.temp_files_removed, 1, "{report:?}");
    assert_eq!(report.skipped_busy, 0, "{report:?}");
    assert!(!planted.exists());
    assert!(temp_files(&ts.dir).is_empty());
    // Nothing else was touched.
    assert_eq!(
        ts.store
            .load::<Dict>(&id)
            .unwrap()
            .unwrap()
            .get_str("value"),
        Some("x")
    );
    assert_eq!(
        ts.store
            .load::<Dict>(&other)
            .unwrap()
            .unwrap()
            .get_str("value"),
        Some("y")
    );
}

#[test]
fn tidy_leaves_the_temp_file_of_a_holder_in_another_process_until_it_dies() {
    let ts = TestStore::new();
    let id = ts.store.create(&dict("x")).unwrap();
    let mut holder = start_holder(&ts, &id, "held");
    let planted = plant_temp_file(&ts.store, &id);

    let report = ts.store.tidy().unwrap();
    assert!(report.skipped_busy >= 1, "{report:?}");
    assert_eq!(report.temp_files_removed, 0, "{report:?}");
    assert!(
        planted.exists(),
        "tidy removed a live holder's temporary file"
    );

    holder.kill();
    let report = ts.store.tidy().unwrap();
    assert_eq!(report.temp_files_removed, 1, "{report:?}");
    assert!(!planted.exists());
    let seen: Dict = ts.store.load(&id).unwrap().unwrap();
    assert_eq!(seen.get_str("value"), Some("held"));
}
