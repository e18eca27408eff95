//! The session file deleted, truncated, overwritten or replaced under a holder.

use super::*;

// ---------------------------------------------------------------------------------------------
// 3. The session file changed under a holder
// ---------------------------------------------------------------------------------------------

/// What is done to a session file, from outside the store, while a holder has it checked out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FileFault {
    Deleted,
    /// Cut to half its length, in place (the header stays valid).
    Truncated,
    /// Overwritten in place with bytes that are no session file.
    Garbage,
    /// Replaced by a non-empty directory.
    Directory,
    /// Replaced by a symlink to another, valid session's file.
    Symlink,
    Fifo,
}

/// How a damaged session path must show up in reads.
#[derive(Debug)]
enum Damage {
    Corrupt(Corruption),
    Unsafe,
}

#[track_caller]
fn is_damage(what: &str, e: &Error, want: &Damage, path: &Path) {
    let ok = match (want, e) {
        (Damage::Corrupt(k), Error::Corrupt { path: p, kind }) => p == path && kind == k,
        (Damage::Unsafe, Error::UnsafePath { path: p, .. }) => p == path,
        _ => false,
    };
    assert!(
        ok,
        "{what}: wanted {want:?} naming {}, got {e:?}",
        path.display()
    );
    names(what, e, path);
}

/// The whole scenario for one fault: reads, listings, gc, tidy and other handles' writes while
/// the holder holds the damaged session; then the holder's check-in; other sessions untouched.
fn session_file_fault_under_a_holder(fault: FileFault) {
    use FileFault::*;
    let ts = TestStore::new();
    let other = second_handle(&ts.dir);
    let id = ts.store.create(&counter(1)).expect("create victim");
    let neighbours: Vec<SessionId> = (0..2)
        .map(|i| {
            ts.store
                .create(&counter(100 + i))
                .expect("create neighbour")
        })
        .collect();
    let neighbour_files: Vec<(PathBuf, Vec<u8>)> = neighbours
        .iter()
        .map(|n| {
            let p = ts.store.session_path(n);
            let bytes = fs::read(&p).expect("read neighbour");
            (p, bytes)
        })
        .collect();
    let path = ts.store.session_path(&id);
    let orig_len = fs::metadata(&path).expect("victim metadata").len();
    let mut holder = ts.store.checkout::<Dict>(&id).expect("checkout");
    holder.data_mut().insert("n", 2i64);

    match fault {
        Deleted => unlink(&path),
        Truncated => OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_len(orig_len / 2))
            .expect("truncate in place"),
        Garbage => fs::write(
            &path,
            b"this is not a session file at all, just text\n".repeat(4),
        )
        .expect("overwrite in place"),
        Directory => {
            unlink(&path);
            fs::create_dir(&path).expect("create directory");
            fs::write(path.join("inside"), b"x").expect("file in directory");
        }
        Symlink => {
            unlink(&path);
            std::os::unix::fs::symlink(&neighbour_files[0].0, &path).expect("symlink");
        }
        Fifo => {
            unlink(&path);
            make_fifo(&path);
        }
    }
    let damaged = crate::common::entry_state(&path);
    let damage = match fault {
        Deleted => None,
        Truncated => Some(Damage::Corrupt(Corruption::Truncated {
            len: orig_len / 2,
            expected: orig_len,
        })),
        Garbage => Some(Damage::Corrupt(Corruption::BadMagic)),
        Directory | Fifo => Some(Damage::Corrupt(Corruption::NotAFile)),
        Symlink => Some(Damage::Unsafe),
    };

    // Lock-free reads return at once: nothing (deleted) or a typed error naming the path.
    let s = other.clone();
    let (load, snapshot, exists, info) = bounded("lock-free reads", move || {
        (
            s.load::<Dict>(&id),
            s.snapshot::<Dict>(&id).map(|o| o.map(|snap| snap.data)),
            s.exists(&id),
            s.info(&id),
        )
    });
    match &damage {
        None => {
            assert_eq!(load.expect("load"), None);
            assert_eq!(snapshot.expect("snapshot"), None);
            assert!(!exists.expect("exists"));
            assert_eq!(info.expect("info"), None);
        }
        Some(d) => {
            is_damage("load", &err("load", load), d, &path);
            is_damage("snapshot", &err("snapshot", snapshot), d, &path);
            if fault == Truncated {
                // Only the payload is cut: the header still answers.
                assert!(exists.expect("exists"));
                assert_eq!(info.expect("info").expect("header").generation, 1);
            } else {
                is_damage("exists", &err("exists", exists), d, &path);
                is_damage("info", &err("info", info), d, &path);
            }
        }
    }

    // Listings, gc and tidy go on past it; only a regular file is listed.
    let s = other.clone();
    let (ids, infos, gc, tidy) = bounded("ids, sessions, gc and tidy", move || {
        (
            s.ids().collect::<Vec<_>>(),
            s.sessions().collect::<Vec<_>>(),
            s.delete_expired(),
            s.tidy(),
        )
    });
    let ids: Vec<SessionId> = ids.into_iter().map(|r| r.expect("ids()")).collect();
    let listed = matches!(fault, Truncated | Garbage);
    assert_eq!(ids.contains(&id), listed, "{ids:?}");
    assert_eq!(ids.len(), neighbours.len() + usize::from(listed));
    let bad: Vec<Error> = infos.into_iter().filter_map(Result::err).collect();
    assert_eq!(bad.len(), usize::from(fault == Garbage), "{bad:?}");
    for e in &bad {
        names("sessions()", e, &path);
    }
    let gc = gc.expect("gc");
    assert_eq!(
        (gc.scanned, gc.deleted, gc.damaged, gc.skipped_busy),
        (ids.len() as u64, 0, u64::from(fault == Garbage), 0),
        "{gc:?}"
    );
    // Deleted: the lock file looks orphaned, but it is held, so tidy leaves it.
    let want_tidy = TidyReport {
        skipped_busy: u64::from(fault == Deleted),
        ..TidyReport::default()
    };
    assert_eq!(tidy.expect("tidy"), want_tidy);

    // Other handles' lock-taking calls wait for the holder and give up, typed, naming the id.
    let s = other.clone();
    let (try_checkout, delete, touch) = bounded("try_checkout, delete and touch", move || {
        (
            s.try_checkout::<Dict>(&id).map(drop),
            s.delete(&id),
            s.touch(&id).map(drop),
        )
    });
    let busy = err("try_checkout", try_checkout);
    assert!(
        matches!(busy, Error::Busy { id: got } if got == id),
        "{busy:?}"
    );
    for (what, r) in [("delete", delete.map(drop)), ("touch", touch)] {
        let e = err(what, r);
        assert!(
            matches!(e, Error::LockTimeout { id: got, .. } if got == id),
            "{what}: {e:?}"
        );
        assert!(e.to_string().contains(id.as_str()), "{what}: {e}");
    }
    assert_eq!(
        crate::common::entry_state(&path),
        damaged,
        "a call changed the damaged path"
    );

    // The holder's check-in.
    let result = bounded("the holder's check-in", move || holder.check_in());
    if fault == Directory {
        // The check-in swaps its complete new version in by RENAME_EXCHANGE, which moves the
        // directory aside to the session's spare name, contents intact (rename(2) of the
        // classic check-in refuses a file over a directory instead: tests below with
        // reuse_inodes(false)). The session works on; the directory is never written into
        // and never read as the session.
        result.expect("the check-in swaps a good version in");
        let spare = path.with_file_name(format!(".{id}.spare"));
        assert!(fs::symlink_metadata(&spare).expect("spare").is_dir());
        assert_eq!(fs::read(spare.join("inside")).expect("read inside"), b"x");
        assert_eq!(n_of(&other, &id), Some(2));
        let mut co = other.checkout::<Dict>(&id).expect("checkout after");
        co.data_mut().increment("n", 1).expect("n");
        co.check_in()
            .expect("check in after (the classic way: the spare is a directory)");
        assert_eq!(n_of(&ts.store, &id), Some(3));
        assert_eq!(fs::read(spare.join("inside")).expect("read inside"), b"x");
    } else {
        // The holder owns the session: its check-in puts a complete new version in place of
        // whatever was at the path (renaming over a symlink replaces the link, never its
        // target).
        result.expect("the check-in restores a good version");
        let meta = fs::symlink_metadata(&path).expect("session path");
        assert!(meta.file_type().is_file(), "{meta:?}");
        let snap = other
            .snapshot::<Dict>(&id)
            .expect("snapshot")
            .expect("restored");
        assert_eq!(snap.data, counter(2));
        assert_eq!(snap.info.generation, 2);
        let mut co = other.checkout::<Dict>(&id).expect("checkout after");
        co.data_mut().increment("n", 1).expect("n");
        co.check_in().expect("check in after");
        assert_eq!(n_of(&ts.store, &id), Some(3));
    }

    // Other sessions: byte-exact, and they work.
    for (p, bytes) in &neighbour_files {
        assert_eq!(
            &fs::read(p).expect("read neighbour"),
            bytes,
            "{}",
            p.display()
        );
    }
    for (i, n) in neighbours.iter().enumerate() {
        assert_eq!(n_of(&other, n), Some(100 + i as i64));
    }
    assert_eq!(temp_files(&ts.dir), Vec::<PathBuf>::new());
}

#[test]
fn session_file_deleted_under_a_holder() {
    session_file_fault_under_a_holder(FileFault::Deleted);
}

#[test]
fn session_file_truncated_under_a_holder() {
    session_file_fault_under_a_holder(FileFault::Truncated);
}

#[test]
fn session_file_overwritten_with_garbage_under_a_holder() {
    session_file_fault_under_a_holder(FileFault::Garbage);
}

#[test]
fn session_file_replaced_by_a_directory_under_a_holder() {
    session_file_fault_under_a_holder(FileFault::Directory);
}

#[test]
fn session_file_replaced_by_a_symlink_under_a_holder() {
    session_file_fault_under_a_holder(FileFault::Symlink);
}

#[test]
fn session_file_replaced_by_a_fifo_under_a_holder() {
    session_file_fault_under_a_holder(FileFault::Fifo);
}

/// The classic check-in (a new temporary file renamed into place) cannot put a file over a
/// directory: a typed error naming the session path, the guard back with its data and its
/// lock, the directory untouched; once released, a check-out reports the damage.
#[test]
fn classic_check_in_over_a_directory_fails_typed_and_leaves_the_directory() {
    let ts = TestStore::with(|b| b.reuse_inodes(false));
    let id = ts.store.create(&counter(1)).expect("create");
    let path = ts.store.session_path(&id);
    let mut holder = ts.store.checkout::<Dict>(&id).expect("checkout");
    holder.data_mut().insert("n", 2i64);
    unlink(&path);
    fs::create_dir(&path).expect("create directory");
    fs::write(path.join("inside"), b"x").expect("file in directory");
    let damaged = crate::common::entry_state(&path);

    let failed = bounded("check-in over a directory", move || holder.check_in())
        .expect_err("check-in over a directory");
    let p = io_error(
        "check-in over a directory",
        failed.error(),
        "rename temporary file onto",
        ErrorKind::IsADirectory,
    );
    assert_eq!(p, path);
    names("check-in over a directory", &failed, &path);
    let holder = failed.into_checkout();
    assert_eq!(holder.data().get_i64("n"), Some(2));
    let busy = err("try_checkout", ts.store.try_checkout::<Dict>(&id));
    assert!(matches!(busy, Error::Busy { .. }), "{busy:?}");
    assert_eq!(crate::common::entry_state(&path), damaged);
    assert_eq!(fs::read(path.join("inside")).expect("read inside"), b"x");
    holder.release();
    let e = err(
        "checkout after release",
        ts.store.checkout::<Dict>(&id).map(drop),
    );
    is_damage(
        "checkout after release",
        &e,
        &Damage::Corrupt(Corruption::NotAFile),
        &path,
    );
    assert_eq!(temp_files(&ts.dir), Vec::<PathBuf>::new());
}
