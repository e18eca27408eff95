//! Tidying: `tidy` removes orphan lock files and dead writers' temporary files only, `close`
//! returns the tidy report.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use sessiondir::{Dict, SessionId, TidyReport};

use super::helpers::counter_dict;
use crate::common::{TestStore, entry_state, lock_path_of, temp_files};

#[test]
fn tidy_removes_orphan_locks_and_dead_writers_temp_files_only() {
    let ts = TestStore::new();
    let store = &ts.store;
    let live = store.create(&counter_dict(1)).unwrap();
    let held_id = store.create(&counter_dict(2)).unwrap();
    let dead = store.create(&counter_dict(3)).unwrap();
    assert!(store.delete(&dead).unwrap());

    // A create killed before its session file existed: a lock file and nothing else.
    let orphan = lock_path_of(store, &dead);
    fs::write(&orphan, b"").unwrap();
    fs::set_permissions(&orphan, fs::Permissions::from_mode(0o600)).unwrap();
    // Writers killed between creating and renaming their temporary files.
    let temp_of = |id: &SessionId, tag: &str| {
        store
            .session_path(id)
            .with_file_name(format!(".{id}.{tag}.tmp"))
    };
    let dead_temp = temp_of(&dead, "x1y2z3w4");
    let live_temp = temp_of(&live, "abcdefgh");
    let held_temp = temp_of(&held_id, "qwertyui");
    fs::write(&dead_temp, vec![1u8; 100]).unwrap();
    fs::write(&live_temp, vec![2u8; 50]).unwrap();
    fs::write(&held_temp, vec![3u8; 30]).unwrap();
    // Foreign files are not ours to remove.
    let foreign_lock_dir_file = orphan.with_file_name("README");
    fs::write(&foreign_lock_dir_file, b"keep").unwrap();
    let foreign_tmp = store.session_path(&live).with_file_name(".notes.tmp");
    fs::write(&foreign_tmp, b"keep").unwrap();

    // A live writer may own the held session's temporary file: it must survive.
    let held = store.checkout::<Dict>(&held_id).unwrap();
    let report = store.tidy().unwrap();
    assert_eq!(
        report,
        TidyReport {
            temp_files_removed: 2,
            orphan_locks_removed: 1,
            orphan_spares_removed: 0,
            skipped_busy: 1,
            bytes_freed: 150,
            failed: 0,
            refused: vec![],
        }
    );
    assert!(entry_state(&orphan).is_none());
    assert!(entry_state(&dead_temp).is_none());
    assert!(entry_state(&live_temp).is_none());
    assert_eq!(fs::read(&held_temp).unwrap(), vec![3u8; 30]);
    assert!(lock_path_of(store, &live).is_file());
    assert!(lock_path_of(store, &held_id).is_file());
    assert_eq!(fs::read(&foreign_lock_dir_file).unwrap(), b"keep");
    assert_eq!(fs::read(&foreign_tmp).unwrap(), b"keep");
    assert_eq!(store.load::<Dict>(&live).unwrap(), Some(counter_dict(1)));
    assert_eq!(store.load::<Dict>(&held_id).unwrap(), Some(counter_dict(2)));

    // Once released, the leftover goes too; a clean store tidies to nothing.
    drop(held);
    let report = store.tidy().unwrap();
    assert_eq!(
        report,
        TidyReport {
            temp_files_removed: 1,
            orphan_locks_removed: 0,
            orphan_spares_removed: 0,
            skipped_busy: 0,
            bytes_freed: 30,
            failed: 0,
            refused: vec![],
        }
    );
    assert_eq!(store.tidy().unwrap(), TidyReport::default());
    store
        .checkout::<Dict>(&held_id)
        .unwrap()
        .check_in()
        .unwrap();
    assert_eq!(temp_files(&ts.dir), vec![foreign_tmp]);
}

#[test]
fn close_returns_the_tidy_report() {
    let ts = TestStore::new();
    let keep = ts.store.create(&counter_dict(1)).unwrap();
    let dead = ts.store.create(&counter_dict(2)).unwrap();
    ts.store.delete(&dead).unwrap();
    fs::write(lock_path_of(&ts.store, &dead), b"").unwrap();
    let temp = ts
        .store
        .session_path(&keep)
        .with_file_name(format!(".{keep}.zzzzzzzz.tmp"));
    fs::write(&temp, vec![0u8; 77]).unwrap();

    let clone = ts.store.clone();
    let report = ts.store.clone().close().unwrap();
    assert_eq!(
        report,
        TidyReport {
            temp_files_removed: 1,
            orphan_locks_removed: 1,
            orphan_spares_removed: 0,
            skipped_busy: 0,
            bytes_freed: 77,
            failed: 0,
            refused: vec![],
        }
    );
    assert!(entry_state(&temp).is_none());
    assert!(entry_state(&lock_path_of(&ts.store, &dead)).is_none());
    // Other clones keep working after one is closed.
    let mut co = clone.checkout::<Dict>(&keep).unwrap();
    co.data_mut().increment("counter", 1).unwrap();
    co.check_in().unwrap();
    assert_eq!(
        clone
            .load::<Dict>(&keep)
            .unwrap()
            .unwrap()
            .get_i64("counter"),
        Some(2)
    );
    assert_eq!(clone.close().unwrap(), TidyReport::default());
}

/// A tidy pass racing ordinary check-ins (by rename: each one makes a temporary file) lists
/// temporary files whose writers then rename them into place and release: a file already gone
/// when tidy gets to it is no failure and no removal. (Issue 19: 31–45 `failed` per 5 s
/// before.)
#[test]
fn tidy_racing_check_ins_reports_no_failure() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let ts = TestStore::with(|b| b.fan_out(1).reuse_inodes(false));
    let store = &ts.store;
    let ids: Vec<SessionId> = (0..4)
        .map(|n| store.create(&counter_dict(n)).unwrap())
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = ids
        .iter()
        .map(|&id| {
            let (store, stop) = (store.clone(), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let mut co = store.checkout::<Dict>(&id).unwrap();
                    co.data_mut().increment("counter", 1).unwrap();
                    co.check_in().unwrap();
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut total = TidyReport::default();
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(2) {
        let r = store.tidy().unwrap();
        total.failed += r.failed;
        total.temp_files_removed += r.temp_files_removed;
        total.orphan_locks_removed += r.orphan_locks_removed;
    }
    stop.store(true, Ordering::Relaxed);
    let done: u64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(done > 0);
    // Nothing failed and nothing was removed: every writer was alive.
    assert_eq!(
        (
            total.failed,
            total.temp_files_removed,
            total.orphan_locks_removed
        ),
        (0, 0, 0),
        "{total:?} over {done} check-ins"
    );
    let sum: i64 = ids
        .iter()
        .map(|id| {
            store
                .load::<Dict>(id)
                .unwrap()
                .unwrap()
                .get_i64("counter")
                .unwrap()
        })
        .sum();
    assert_eq!(sum, (0..4).sum::<i64>() + i64::try_from(done).unwrap());
}
