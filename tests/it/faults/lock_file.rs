//! The lock file removed or replaced under a holder: no acknowledged update is ever lost.

use super::*;

// ---------------------------------------------------------------------------------------------
// 4. The lock file removed or replaced under a holder
// ---------------------------------------------------------------------------------------------

/// What is done to a held session's lock file from outside the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LockFault {
    /// A new empty file renamed over it (an editor's or a restore's "replace").
    ReplacedByNewFile,
    Directory,
    Fifo,
    /// A symlink to a regular file outside the store.
    Symlink,
    /// Renamed out of the store (a cleaner that moves files to a trash directory).
    MovedAway,
    /// Hard-linked elsewhere, then unlinked (a backup tool, `mv` across a hard link).
    HardLinkedThenUnlinked,
}

fn apply_lock_fault(fault: LockFault, lock: &Path, outside: &Path) {
    use LockFault::*;
    match fault {
        ReplacedByNewFile => {
            let new = lock.with_file_name("replacement");
            File::create(&new).expect("create replacement");
            rename_outside(&new, lock);
        }
        Directory => {
            unlink(lock);
            fs::create_dir(lock).expect("create directory");
        }
        Fifo => {
            unlink(lock);
            make_fifo(lock);
        }
        Symlink => {
            fs::write(outside, b"").expect("create symlink target");
            unlink(lock);
            std::os::unix::fs::symlink(outside, lock).expect("symlink");
        }
        MovedAway => rename_outside(lock, outside),
        HardLinkedThenUnlinked => {
            fs::hard_link(lock, outside).expect("hard link");
            unlink(lock);
        }
    }
}

/// What happened when a held session's lock file was damaged.
struct Race {
    /// The second handle checked the session out while the first still held it.
    b_got_it: bool,
    /// The first holder's check-in was refused with `LockLost` naming the lock file.
    a_refused: bool,
    /// Acknowledged check-ins (each +1) and the final counter, if they differ.
    lost: Option<String>,
}

/// Holder A has session n = 0 checked out and increments it; its lock file is damaged; holder B
/// (another handle) tries to check the session out and, if it gets it, increments too. Both
/// check in (A first if `a_first`). Panics on any error other than the expected ones.
fn lock_fault_under_a_holder(fault: LockFault, a_first: bool, fencing: bool) -> Race {
    use LockFault::*;
    let ts = TestStore::with(|b| b.fencing(fencing));
    let other = Store::builder(&ts.dir)
        .lock_timeout(SHORT_LOCK_TIMEOUT)
        .fencing(fencing)
        .open()
        .expect("open a second handle");
    let id = ts.store.create(&counter(0)).expect("create");
    let lock = lock_path_of(&ts.store, &id);
    let outside = ts.dir.with_file_name("outside");
    let mut a = ts.store.checkout::<Dict>(&id).expect("checkout A");
    a.data_mut().increment("n", 1).expect("n");
    apply_lock_fault(fault, &lock, &outside);

    let s = other.clone();
    let b = bounded("B's try_checkout", move || s.try_checkout::<Dict>(&id));
    let check_in = |co: sessiondir::Checkout<Dict>, who: &str| {
        bounded(&format!("{who}'s check-in"), move || {
            co.check_in().map_err(|e| e.into_parts().0)
        })
    };
    let b_got_it = b.is_ok();
    let (a_result, b_result) = match b {
        Ok(mut b) => {
            b.data_mut().increment("n", 1).expect("n");
            if a_first {
                let ra = check_in(a, "A");
                (ra, Some(check_in(b, "B")))
            } else {
                let rb = check_in(b, "B");
                (check_in(a, "A"), Some(rb))
            }
        }
        Err(e) => {
            // B cannot use what is at the lock path: a typed error naming it.
            match (fault, &e) {
                (Directory, Error::Io { op, path, source }) => {
                    assert_eq!((*op, path), ("open lock file", &lock), "{e:?}");
                    assert_eq!(source.kind(), ErrorKind::IsADirectory, "{e:?}");
                }
                (Symlink, Error::UnsafePath { path, .. }) => assert_eq!(path, &lock),
                _ => panic!("{fault:?}: B's try_checkout: unexpected {e:?}"),
            }
            names("B's try_checkout", &e, &lock);
            (check_in(a, "A"), None)
        }
    };
    // A's lock file is no longer the one at the path: its check-in must be refused.
    let a_refused =
        matches!(&a_result, Err(Error::LockLost { id: got, path }) if *got == id && *path == lock);
    if let Err(e) = &a_result
        && !a_refused
    {
        panic!("{fault:?}: A's check-in failed unexpectedly: {e:?}");
    }
    if let Some(Err(e)) = &b_result {
        // B may lose only to A's later write being refused, never to an odd error.
        panic!("{fault:?}: B's check-in failed: {e:?}");
    }
    let acknowledged = i64::from(a_result.is_ok()) + i64::from(b_result.is_some_and(|r| r.is_ok()));
    let n = n_of(&ts.store, &id).expect("the session exists");
    assert_eq!(temp_files(&ts.dir), Vec::<PathBuf>::new());
    let lost = (n != acknowledged).then(|| {
        format!(
            "{fault:?} ({} checked in first): {acknowledged} check-ins of +1 acknowledged, \
             n = {n}: an update was lost (A's check-in: {a_result:?})",
            if a_first { "A" } else { "B" }
        )
    });
    Race {
        b_got_it,
        a_refused,
        lost,
    }
}

/// Runs the scenario for every fault and order; fails with every lost update found, and if the
/// first holder's stale check-in is ever accepted or the second handle's outcome differs from
/// what the path allows (it gets the session through anything it can open and lock).
fn no_update_lost(faults: &[LockFault], fencing: bool) {
    let mut failures = Vec::new();
    for &fault in faults {
        for a_first in [true, false] {
            let race = lock_fault_under_a_holder(fault, a_first, fencing);
            failures.extend(race.lost);
            if !race.a_refused {
                failures.push(format!(
                    "{fault:?} (a_first {a_first}): the first holder's stale check-in was accepted"
                ));
            }
            let b_can = !matches!(fault, LockFault::Directory | LockFault::Symlink);
            assert_eq!(race.b_got_it, b_can, "{fault:?}: did B get the session?");
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn lock_file_replaced_under_a_holder_never_loses_an_update() {
    for fencing in [false, true] {
        no_update_lost(
            &[
                LockFault::ReplacedByNewFile,
                LockFault::Directory,
                LockFault::Fifo,
                LockFault::Symlink,
            ],
            fencing,
        );
    }
}

/// BUG (see the report): the holder's check before writing only asks whether its locked inode
/// still has a link (`nlink > 0`), not whether it is still the file at the lock path. A lock
/// file moved out of its directory, or hard-linked elsewhere and unlinked, keeps a link: a
/// second handle recreates the lock file, gets the session at the same time, and one of the
/// two acknowledged check-ins is lost.
#[test]
#[ignore = "known gap (docs/reliability.md, design §9): a lock file renamed out of the store while \
            held is not detected; catching it costs an lstat per acquisition and check-in, and \
            only the store's own user can rename it"]
fn lock_file_moved_away_under_a_holder_must_not_lose_an_update() {
    no_update_lost(
        &[LockFault::MovedAway, LockFault::HardLinkedThenUnlinked],
        false,
    );
}

/// With fencing (`StoreBuilder::fencing`, on by default on network file systems) the holder
/// also checks, right before renaming, that the lock path still names its lock file: the
/// moved-away lock is caught and the stale check-in refused.
#[test]
fn fencing_catches_a_lock_file_moved_away_under_a_holder() {
    no_update_lost(
        &[LockFault::MovedAway, LockFault::HardLinkedThenUnlinked],
        true,
    );
}

/// Fencing's version check: a session file replaced under a holder by a version it did not
/// read (what a second host does when the file system's locks fail to exclude) makes the
/// holder's check-in a typed `Conflict` that writes nothing; without fencing the holder's
/// rename silently overwrites the other version (the lost update fencing exists to prevent).
#[test]
fn fencing_refuses_a_check_in_over_a_version_the_holder_did_not_read() {
    for fencing in [true, false] {
        let ts = TestStore::with(|b| b.fencing(fencing));
        assert_eq!(ts.store.fencing(), fencing);
        let id = ts.store.create(&counter(0)).expect("create");
        let mut a = ts.store.checkout::<Dict>(&id).expect("checkout A");
        a.data_mut().increment("n", 1).expect("n");
        // "Another host" checks in n = 10 under the same id: built in a store of its own and
        // renamed over A's session file, as that host's check-in would be.
        let elsewhere = TestStore::new();
        elsewhere
            .store
            .create_with_id(&id, &counter(0), sessiondir::Expiry::Never)
            .expect("create elsewhere");
        let mut other = elsewhere.store.checkout::<Dict>(&id).expect("checkout");
        other.data_mut().insert("n", 10);
        other.check_in().expect("check in elsewhere");
        std::fs::copy(
            elsewhere.store.session_path(&id),
            ts.dir.join("other-host.tmp"),
        )
        .expect("copy");
        #[allow(clippy::disallowed_methods)] // the other host's rename, done by hand
        std::fs::rename(ts.dir.join("other-host.tmp"), ts.store.session_path(&id)).expect("rename");

        let result = a.check_in();
        if fencing {
            let error = result.expect_err("a fenced check-in over another version is refused");
            assert!(
                matches!(
                    error.error(),
                    Error::Conflict {
                        held: 1,
                        found: Some(2),
                        ..
                    }
                ),
                "{:?}",
                error.error()
            );
            drop(error);
            assert_eq!(
                n_of(&ts.store, &id),
                Some(10),
                "the other host's write stays"
            );
        } else {
            result.expect("unfenced check-in overwrites");
            assert_eq!(
                n_of(&ts.store, &id),
                Some(1),
                "the other host's write is lost"
            );
        }
    }
}

/// A holder whose lock file was removed under it must not move the session to a new id: the
/// move would hand it a fresh, valid lock, and its stale data would then overwrite the update
/// of the process that checked the session out meanwhile.
#[test]
fn cycle_id_through_a_lost_lock_must_not_revive_a_stale_holder() {
    let ts = TestStore::new();
    let other = second_handle(&ts.dir);
    let id = ts.store.create(&counter(0)).expect("create");
    let lock = lock_path_of(&ts.store, &id);
    let mut a = ts.store.checkout::<Dict>(&id).expect("checkout A");
    a.data_mut().increment("n", 1).expect("n");
    unlink(&lock);
    // B gets in through a recreated lock file and checks in n = 1.
    let mut b = other.checkout::<Dict>(&id).expect("checkout B");
    b.data_mut().increment("n", 1).expect("n");
    b.check_in().expect("B's check-in");

    let cycled = bounded("A's cycle_id", move || {
        let r = a.cycle_id();
        (r, a)
    });
    let (cycled, a) = cycled;
    let new_id = cycled.as_ref().ok().copied();
    let a_checkin = bounded("A's check-in", move || {
        a.check_in().map_err(|e| e.into_parts().0)
    });
    let acknowledged = 1 + i64::from(a_checkin.is_ok());
    let n = match new_id {
        Some(new_id) => n_of(&ts.store, &new_id),
        None => n_of(&ts.store, &id),
    };
    assert_eq!(
        n,
        Some(acknowledged),
        "A's cycle_id: {cycled:?}, A's check-in: {a_checkin:?}: an update was lost"
    );
    assert!(
        matches!(cycled, Err(Error::LockLost { id: got, .. }) if got == id),
        "{cycled:?}"
    );
    assert!(
        matches!(a_checkin, Err(Error::LockLost { .. })),
        "{a_checkin:?}"
    );
    assert_eq!(temp_files(&ts.dir), Vec::<PathBuf>::new());
}

/// A holder whose lock file was removed under it must not delete the session that another
/// process now holds (nor unlink that holder's lock file).
#[test]
fn delete_through_a_lost_lock_leaves_the_new_holder_alone() {
    let ts = TestStore::new();
    let other = second_handle(&ts.dir);
    let id = ts.store.create(&counter(0)).expect("create");
    let lock = lock_path_of(&ts.store, &id);
    let a = ts.store.checkout::<Dict>(&id).expect("checkout A");
    unlink(&lock);
    let mut b = other.checkout::<Dict>(&id).expect("checkout B");
    b.data_mut().increment("n", 1).expect("n");

    let deleted = bounded("A's delete", move || a.delete());
    assert!(
        matches!(&deleted, Err(Error::LockLost { id: got, path }) if *got == id && *path == lock),
        "{deleted:?}"
    );
    assert!(lock.is_file(), "B's lock file was unlinked");
    bounded("B's check-in", move || {
        b.check_in().map_err(|e| e.into_parts().0)
    })
    .expect("B's check-in");
    assert_eq!(n_of(&ts.store, &id), Some(1));
}

/// A waiter in another process, queued on the lock file when it is removed by hand: the holder's
/// check-in is refused, and the waiter, handed the unlinked inode, reports `Deleted` rather than
/// taking a lock nobody else would see (conservative: the session is still there, and the next
/// check-out recreates its lock file).
#[test]
fn a_waiter_queued_on_a_lock_file_removed_by_hand_reports_deleted() {
    let ts = TestStore::new();
    let id = ts.store.create(&counter(0)).expect("create");
    let lock = lock_path_of(&ts.store, &id);
    let mut a = ts.store.checkout::<Dict>(&id).expect("checkout A");
    a.data_mut().increment("n", 1).expect("n");
    let mut env = child::envs(&ts.dir, &id);
    env.push(("SD_LOCK_TIMEOUT_MS", "10000".to_owned()));
    let mut waiter = Proc::start("waiter", &env);
    waiter.wait_for("WAITING", REPORT_TIMEOUT);

    unlink(&lock);
    let refused = bounded("A's check-in", move || {
        a.check_in().map_err(|e| e.into_parts().0)
    });
    assert!(
        matches!(&refused, Err(Error::LockLost { path, .. }) if *path == lock),
        "{refused:?}"
    );
    let result = waiter.wait_for("RESULT", REPORT_TIMEOUT);
    assert_eq!(
        result.split_whitespace().nth(1),
        Some("Deleted"),
        "{result}"
    );
    waiter.finish(REPORT_TIMEOUT);

    // Nothing was written; the session is intact and can be checked out again.
    assert_eq!(n_of(&ts.store, &id), Some(0));
    let mut co = ts.store.checkout::<Dict>(&id).expect("checkout after");
    co.data_mut().increment("n", 1).expect("n");
    co.check_in().expect("check in after");
    assert_eq!(n_of(&ts.store, &id), Some(1));
    assert!(lock.is_file(), "the lock file was recreated");
}

/// NFS renames a file deleted while open to `.nfsXXXX` and FUSE to `.fuse_hiddenXXXX` until the
/// last descriptor closes: tidy, gc and listings must leave them alone (they are not ours, and
/// removing one makes the file system recreate it or fail with EBUSY).
#[test]
fn nfs_and_fuse_stand_in_files_are_never_touched() {
    let ts = TestStore::new();
    let id = ts.store.create(&counter(1)).expect("create");
    let session_dir = ts
        .store
        .session_path(&id)
        .parent()
        .expect("shard")
        .to_path_buf();
    let lock_dir = lock_path_of(&ts.store, &id)
        .parent()
        .expect("shard")
        .to_path_buf();
    let stand_ins: Vec<PathBuf> = [&session_dir, &lock_dir]
        .into_iter()
        .flat_map(|d| {
            [
                d.join(".nfs0000000001a2b3c400000001"),
                d.join(".fuse_hidden0000000b00000001"),
            ]
        })
        .collect();
    for path in &stand_ins {
        fs::write(path, b"still open elsewhere").expect("plant");
    }
    let tidy = ts.store.tidy().expect("tidy");
    assert_eq!(
        tidy,
        TidyReport::default(),
        "tidy saw nothing to do or fail on"
    );
    let ids: Vec<SessionId> = ts.store.ids().collect::<Result<_, _>>().expect("ids");
    assert_eq!(ids, vec![id]);
    crate::common::wait_until(Duration::from_secs(5), "the session to be idle", || {
        let info = ts.store.info(&id).expect("info").expect("exists");
        info.idle_for() > Duration::from_millis(2)
    });
    let gc = ts.store.delete_idle(Duration::from_millis(1)).expect("gc");
    assert_eq!((gc.scanned, gc.deleted, gc.damaged), (1, 1, 0));
    for path in &stand_ins {
        assert_eq!(
            fs::read(path).expect("still there"),
            b"still open elsewhere",
            "{}",
            path.display()
        );
    }
}

/// A session file missing under the lock: unfenced (a local disk) it is a crashed create or
/// delete, and the orphaned lock file is removed; fenced (a shared file system) it may be this
/// host's stale view of a live session, so the lock file stays (tidy's business) and the
/// check-out reports `NotFound` either way.
#[test]
fn a_session_missing_under_the_lock_keeps_its_lock_file_only_when_fenced() {
    for fencing in [false, true] {
        let ts = TestStore::with(|b| b.fencing(fencing));
        let id = ts.store.create(&counter(1)).expect("create");
        let lock = lock_path_of(&ts.store, &id);
        // What a stale entry shows this host: the session file is not there.
        std::fs::copy(ts.store.session_path(&id), ts.dir.join("kept")).expect("copy");
        #[allow(clippy::disallowed_methods)] // the stale view, made by hand
        std::fs::remove_file(ts.store.session_path(&id)).expect("remove");
        let error = ts
            .store
            .checkout::<Dict>(&id)
            .expect_err("nothing to check out");
        assert!(matches!(error, Error::NotFound { .. }), "{error:?}");
        assert_eq!(lock.exists(), fencing, "fencing {fencing}: lock file kept");
        if fencing {
            // The session shows up again (the cache expired): it checks out normally.
            #[allow(clippy::disallowed_methods)]
            std::fs::rename(ts.dir.join("kept"), ts.store.session_path(&id)).expect("restore");
            let s = ts
                .store
                .checkout::<Dict>(&id)
                .expect("checkout after the view refreshed");
            assert_eq!(s.data().get_i64("n"), Some(1));
        }
    }
}
