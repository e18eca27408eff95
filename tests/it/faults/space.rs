//! Faults of space: a full disk and no free inodes on a real tmpfs, and a file-size limit
//! (`RLIMIT_FSIZE`) in a child process.

use super::*;

// ---------------------------------------------------------------------------------------------
// 1. Disk full (ENOSPC) on a real tmpfs
// ---------------------------------------------------------------------------------------------

/// Free space left after filling: less than any write below needs.
const SLACK: u64 = 8 * 1024;

#[test]
fn disk_full_check_in_fails_typed_keeps_the_previous_version_and_succeeds_after_space_is_freed() {
    let Some(fs) = Tmpfs::mount("size=1m") else {
        return;
    };
    let dir = fs.path().join("store");
    // The faults of check-ins by rename (a new temporary file per check-in); those of check-ins
    // by swap follow this test.
    let store = Store::builder(&dir)
        .fan_out(1)
        .reuse_inodes(false)
        .open()
        .expect("open store");
    let id = store.create(&version(1, OLD_LEN)).expect("create victim");
    let neighbour = store
        .create(&neighbour_blob(NEIGHBOUR_LEN))
        .expect("create neighbour");
    let path = store.session_path(&id);
    let neighbour_path = store.session_path(&neighbour);
    let old_file = fs::read(&path).expect("read victim");
    let neighbour_file = fs::read(&neighbour_path).expect("read neighbour");

    let mut session = store.checkout::<Blob>(&id).expect("checkout");
    *session.data_mut() = version(2, NEW_LEN);
    let reader = Reader::start(&store, id, VERSIONS);
    let filler = fill(&fs.path().join("filler"), SLACK);
    let free = fs.free_bytes();
    assert!(free < NEW_LEN as u64, "{free} bytes still free");
    let tree = paths(&dir);

    // The check-in cannot fit: a typed error naming the id and the temporary file (written
    // part-way, then removed); the guard comes back with its data.
    let failed = bounded("check_in", move || session.check_in()).expect_err("the disk is full");
    let temp = io_error("check-in", failed.error(), "write", ErrorKind::StorageFull).to_path_buf();
    is_temp_of(&temp, &id, &path);
    names("check-in", &failed, &temp);
    assert!(failed.to_string().contains(id.as_str()), "{failed}");
    let session = failed.into_checkout();
    assert_eq!(
        session.data(),
        &version(2, NEW_LEN),
        "the guard keeps its data"
    );

    // While full: the previous version intact and loadable, nothing left behind, the space of
    // the failed writes given back, the guard still holds the lock.
    assert_eq!(fs::read(&path).expect("read victim"), old_file);
    let snap = store
        .snapshot::<Blob>(&id)
        .expect("snapshot")
        .expect("victim exists");
    assert_eq!(snap.data, version(1, OLD_LEN));
    assert_eq!(snap.info.generation, 1);
    assert_eq!(temp_files(&dir), Vec::<PathBuf>::new());
    assert_eq!(paths(&dir), tree);
    assert_eq!(
        fs.free_bytes(),
        free,
        "the failed writes' space was not given back"
    );
    let busy = err("try_checkout", store.try_checkout::<Blob>(&id));
    assert!(matches!(busy, Error::Busy { .. }), "{busy:?}");
    assert_eq!(
        store.load::<Blob>(&neighbour).expect("load neighbour"),
        Some(neighbour_blob(NEIGHBOUR_LEN))
    );

    // A new session cannot be created either: typed error, no file of it left.
    let created = err("create on a full disk", store.create(&version(4, NEW_LEN)));
    let temp = io_error("create", &created, "write", ErrorKind::StorageFull);
    names("create", &created, temp);
    assert_eq!(paths(&dir), tree, "create left something behind");
    // Nor can a touch rewrite the neighbour; it stays as it was.
    let touched = err("touch on a full disk", store.touch(&neighbour));
    io_error("touch", &touched, "write", ErrorKind::StorageFull);
    assert_eq!(
        fs::read(&neighbour_path).expect("read neighbour"),
        neighbour_file
    );
    assert_eq!(store.tidy().expect("tidy"), TidyReport::default());
    assert_eq!(paths(&dir), tree);

    // Space freed: the retry of the handed-back guard succeeds with the new data.
    filler.set_len(0).expect("free the space");
    drop(filler);
    bounded("retry check_in", move || session.check_in()).expect("retry after space was freed");
    wait_until(BOUND, "the reader to see the new version", || {
        reader.seen_last.load(Ordering::Relaxed)
    });
    reader.finish();
    let snap = store
        .snapshot::<Blob>(&id)
        .expect("snapshot")
        .expect("exists");
    assert_eq!(snap.data, version(2, NEW_LEN));
    assert_eq!(snap.info.generation, 2);

    // And the store works normally.
    let fresh = store
        .create(&version(5, NEW_LEN))
        .expect("create after freeing");
    let mut co = store
        .checkout::<Blob>(&neighbour)
        .expect("checkout neighbour");
    co.data_mut().0.push(0);
    co.check_in().expect("check in neighbour");
    assert_eq!(
        store.load::<Blob>(&neighbour).expect("load"),
        Some(neighbour_blob(NEIGHBOUR_LEN + 1))
    );
    store.touch(&neighbour).expect("touch after freeing");
    assert!(store.delete(&fresh).expect("delete"));
    assert_eq!(store.tidy().expect("tidy"), TidyReport::default());
    assert_eq!(temp_files(&dir), Vec::<PathBuf>::new());
}

#[test]
fn no_free_inodes_check_in_and_create_fail_typed_and_work_again_once_inodes_are_freed() {
    let Some(fs) = Tmpfs::mount("size=1m,nr_inodes=64") else {
        return;
    };
    let dir = fs.path().join("store");
    // The faults of check-ins by rename (a new temporary file per check-in); those of check-ins
    // by swap follow this test.
    let store = Store::builder(&dir)
        .fan_out(1)
        .reuse_inodes(false)
        .open()
        .expect("open store");
    let id = store.create(&counter(1)).expect("create victim");
    let neighbour = store.create(&counter(7)).expect("create neighbour");
    let path = store.session_path(&id);
    let old_file = fs::read(&path).expect("read victim");
    let mut session = store.checkout::<Dict>(&id).expect("checkout");
    session.data_mut().insert("n", 2i64);

    let made = use_up_inodes(&fs);
    let tree = paths(&dir);

    // The temporary file cannot be created: typed error naming the shard directory.
    let failed = bounded("check_in", move || session.check_in()).expect_err("no inodes");
    let shard_dir = io_error(
        "check-in",
        failed.error(),
        "create temporary file in",
        ErrorKind::StorageFull,
    );
    assert_eq!(Some(shard_dir), path.parent());
    names("check-in", &failed, shard_dir);
    let session = failed.into_checkout();
    assert_eq!(session.data().get_i64("n"), Some(2));
    assert_eq!(fs::read(&path).expect("read victim"), old_file);
    assert_eq!(n_of(&store, &id), Some(1));
    assert_eq!(n_of(&store, &neighbour), Some(7));
    // Create cannot make its lock file: typed error naming it, nothing left.
    let created = err("create without inodes", store.create(&counter(0)));
    let lock = io_error(
        "create",
        &created,
        "create lock file",
        ErrorKind::StorageFull,
    );
    assert_eq!(lock.parent(), lock_path_of(&store, &id).parent());
    names("create", &created, lock);
    assert_eq!(paths(&dir), tree);
    assert_eq!(store.tidy().expect("tidy"), TidyReport::default());

    // Inodes freed: the retry succeeds, and the store works normally.
    for p in &made {
        unlink(p);
    }
    bounded("retry check_in", move || session.check_in()).expect("retry after freeing inodes");
    assert_eq!(n_of(&store, &id), Some(2));
    let fresh = store.create(&counter(9)).expect("create after freeing");
    assert_eq!(n_of(&store, &fresh), Some(9));
    assert!(store.delete(&fresh).expect("delete"));
    assert_eq!(temp_files(&dir), Vec::<PathBuf>::new());
}

/// A check-in by swap on a full disk: the spare (holding the version before last, shorter than
/// the new one) cannot grow. A typed error naming the spare; the live version intact and
/// loadable throughout; the spare's space given back; once space is freed the handed-back
/// guard checks in by swapping, and the two inodes keep taking turns.
#[test]
fn disk_full_while_filling_the_spare_fails_typed_keeps_the_live_version_and_swaps_after_space_is_freed()
 {
    let Some(fs) = Tmpfs::mount("size=1m") else {
        return;
    };
    let dir = fs.path().join("store");
    let store = Store::builder(&dir).fan_out(1).open().expect("open store");
    let id = store.create(&version(0, OLD_LEN)).expect("create victim");
    // The first check-in makes the spare; from now on the session's two inodes take turns.
    let mut co = store.checkout::<Blob>(&id).expect("checkout");
    *co.data_mut() = version(1, OLD_LEN);
    co.check_in().expect("first check-in");
    let path = store.session_path(&id);
    let spare = path.with_file_name(format!(".{id}.spare"));
    let (live_ino, spare_ino) = (ino(&path), ino(&spare));
    let old_file = fs::read(&path).expect("read victim");

    let mut session = store.checkout::<Blob>(&id).expect("checkout");
    *session.data_mut() = version(2, NEW_LEN);
    let reader = Reader::start(&store, id, VERSIONS);
    let filler = fill(&fs.path().join("filler"), SLACK);
    let free = fs.free_bytes();
    assert!(free < (NEW_LEN - OLD_LEN) as u64, "{free} bytes still free");

    let failed = bounded("check_in", move || session.check_in()).expect_err("the disk is full");
    failed_on_spare(&failed, "write spare file", &spare, &id);
    let session = failed.into_checkout();
    assert_eq!(session.data(), &version(2, NEW_LEN));

    // The live file untouched and still the same inode; the spare emptied (its old content
    // does not matter, only that it never goes live), its blocks given back; nothing else
    // left; the guard still holds the lock; tidy leaves the live session's spare alone.
    assert_eq!(fs::read(&path).expect("read victim"), old_file);
    assert_eq!((ino(&path), ino(&spare)), (live_ino, spare_ino));
    assert_eq!(fs::metadata(&spare).expect("spare").len(), 0);
    assert!(
        fs.free_bytes() >= free,
        "the failed write's space was not given back"
    );
    assert_eq!(
        store.load::<Blob>(&id).expect("load"),
        Some(version(1, OLD_LEN))
    );
    assert_eq!(temp_files(&dir), Vec::<PathBuf>::new());
    let busy = err("try_checkout", store.try_checkout::<Blob>(&id));
    assert!(matches!(busy, Error::Busy { .. }), "{busy:?}");
    assert_eq!(store.tidy().expect("tidy"), TidyReport::default());
    assert!(
        fs::symlink_metadata(&spare).is_ok(),
        "tidy removed a live session's spare"
    );

    // Space freed: the retry swaps the spare in.
    filler.set_len(0).expect("free the space");
    drop(filler);
    bounded("retry check_in", move || session.check_in()).expect("retry after space was freed");
    wait_until(BOUND, "the reader to see the new version", || {
        reader.seen_last.load(Ordering::Relaxed)
    });
    reader.finish();
    assert_eq!(
        (ino(&path), ino(&spare)),
        (spare_ino, live_ino),
        "not swapped"
    );
    let snap = store
        .snapshot::<Blob>(&id)
        .expect("snapshot")
        .expect("exists");
    assert_eq!(snap.data, version(2, NEW_LEN));
    assert_eq!(snap.info.generation, 3);
    assert_eq!(store.tidy().expect("tidy"), TidyReport::default());
}

/// With every inode in use, a session that has its spare still checks in (a swap creates no
/// inode), while one without a spare cannot make it: a typed error naming the spare, the live
/// version intact, nothing left behind; it works once inodes are free again.
#[test]
fn no_free_inodes_a_swap_still_checks_in_and_a_missing_spare_fails_typed() {
    let Some(fs) = Tmpfs::mount("size=1m,nr_inodes=64") else {
        return;
    };
    let dir = fs.path().join("store");
    let store = Store::builder(&dir).fan_out(1).open().expect("open store");
    let swapping = store.create(&counter(1)).expect("create");
    let mut co = store.checkout::<Dict>(&swapping).expect("checkout");
    co.data_mut().insert("n", 2i64);
    co.check_in().expect("first check-in makes the spare");
    let fresh = store
        .create(&counter(7))
        .expect("create a session without a spare");
    let fresh_path = store.session_path(&fresh);
    let fresh_file = fs::read(&fresh_path).expect("read");

    let made = use_up_inodes(&fs);
    let tree = paths(&dir);

    // The steady state needs no inode: ten check-ins land with none free.
    for n in 3..13i64 {
        let mut co = store.checkout::<Dict>(&swapping).expect("checkout");
        co.data_mut().insert("n", n);
        co.check_in().expect("a swap needs no free inode");
        assert_eq!(n_of(&store, &swapping), Some(n));
    }
    assert_eq!(paths(&dir), tree, "a swap created or removed a file");

    // The first check-in of the other session must create its spare: it cannot.
    let mut session = store.checkout::<Dict>(&fresh).expect("checkout");
    session.data_mut().insert("n", 8i64);
    let failed = bounded("check_in", move || session.check_in()).expect_err("no inodes");
    let spare = fresh_path.with_file_name(format!(".{fresh}.spare"));
    failed_on_spare(&failed, "create spare file", &spare, &fresh);
    let session = failed.into_checkout();
    assert_eq!(fs::read(&fresh_path).expect("read"), fresh_file);
    assert_eq!(
        paths(&dir),
        tree,
        "the failed check-in left something behind"
    );
    assert_eq!(store.tidy().expect("tidy"), TidyReport::default());

    for p in &made {
        unlink(p);
    }
    bounded("retry check_in", move || session.check_in()).expect("retry after freeing inodes");
    assert_eq!(n_of(&store, &fresh), Some(8));
    assert!(
        fs::symlink_metadata(&spare).is_ok(),
        "the retry made no spare"
    );
    assert_eq!(temp_files(&dir), Vec::<PathBuf>::new());
}

/// A check-in that failed for want of space at its spare: the error is `op` on the spare, with
/// `StorageFull`, and its text names the spare and the session.
fn failed_on_spare<T>(
    failed: &sessiondir::CheckinError<T>,
    op: &str,
    spare: &Path,
    id: &SessionId,
) {
    let named = io_error("check-in", failed.error(), op, ErrorKind::StorageFull);
    assert_eq!(named, spare);
    names("check-in", failed, spare);
    assert!(failed.to_string().contains(id.as_str()), "{failed}");
}

/// Uses up every inode of `fs` with empty files; returns their paths.
fn use_up_inodes(fs: &Tmpfs) -> Vec<PathBuf> {
    let fillers = fs.path().join("fillers");
    fs::create_dir(&fillers).expect("create fillers dir");
    let mut made = Vec::new();
    loop {
        let p = fillers.join(made.len().to_string());
        match File::create_new(&p) {
            Ok(_) => made.push(p),
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
            Err(e) => panic!("create filler {}: {e}", p.display()),
        }
    }
    assert_eq!(fs.free_inodes(), 0);
    made
}

/// The inode number at `path` (not following a symlink).
fn ino(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .ino()
}

// ---------------------------------------------------------------------------------------------
// 2. RLIMIT_FSIZE (EFBIG) in a child process
// ---------------------------------------------------------------------------------------------

#[test]
fn file_size_limit_fails_a_check_in_part_way_in_another_process_and_a_retry_succeeds() {
    const LIMIT: u64 = 4096;
    let ts = TestStore::with(|b| b.reuse_inodes(false));
    let store = &ts.store;
    let id = store.create(&version(1, OLD_LEN)).expect("create victim");
    let neighbour = store
        .create(&neighbour_blob(NEIGHBOUR_LEN))
        .expect("create neighbour");
    let path = store.session_path(&id);
    let old_file = fs::read(&path).expect("read victim");
    let neighbour_file = fs::read(store.session_path(&neighbour)).expect("read neighbour");
    let tree = paths(&ts.dir);

    let mut env = child::envs(&ts.dir, &id);
    env.push(("SD_SIZE", NEW_LEN.to_string()));
    env.push(("SD_FSIZE", LIMIT.to_string()));
    env.push(("SD_REUSE_INODES", "0".to_string()));
    let mut writer = Proc::start("fsize_writer", &env);
    let reader = Reader::start(store, id, VERSIONS);

    // The check-in failed part-way with EFBIG, naming its temporary file; the child checked
    // that the handed-back guard kept its data.
    let checkin = writer.wait_for("CHECKIN_FAILED", REPORT_TIMEOUT);
    assert_eq!(field(&checkin, "variant"), Some("Io"), "{checkin}");
    assert_eq!(field(&checkin, "op"), Some("write"), "{checkin}");
    assert_eq!(field(&checkin, "kind"), Some("FileTooLarge"), "{checkin}");
    let temp = PathBuf::from(field(&checkin, "path").expect("path"));
    is_temp_of(&temp, &id, &path);
    let message = writer.wait_for("CHECKIN_MESSAGE", REPORT_TIMEOUT);
    assert!(message.contains(&temp.display().to_string()), "{message}");
    let create = writer.wait_for("CREATE_FAILED", REPORT_TIMEOUT);
    assert_eq!(field(&create, "variant"), Some("Io"), "{create}");
    assert_eq!(field(&create, "op"), Some("write"), "{create}");
    assert_eq!(field(&create, "kind"), Some("FileTooLarge"), "{create}");
    let create_temp = field(&create, "path").expect("path");
    assert!(
        writer
            .wait_for("CREATE_MESSAGE", REPORT_TIMEOUT)
            .contains(create_temp),
        "{:?}",
        writer.reports()
    );

    // While the child holds the handed-back guard: the previous version byte-exact, nothing
    // left behind (the failed create included), the neighbour untouched.
    assert_eq!(fs::read(&path).expect("read victim"), old_file);
    let snap = store
        .snapshot::<Blob>(&id)
        .expect("snapshot")
        .expect("exists");
    assert_eq!((snap.data, snap.info.generation), (version(1, OLD_LEN), 1));
    assert_eq!(paths(&ts.dir), tree, "something was left behind");
    let busy = err("try_checkout", store.try_checkout::<Blob>(&id));
    assert!(matches!(busy, Error::Busy { .. }), "{busy:?}");
    assert_eq!(
        fs::read(store.session_path(&neighbour)).expect("read neighbour"),
        neighbour_file
    );
    assert_eq!(store.tidy().expect("tidy"), TidyReport::default());

    // Limit lifted: the retry lands the new version.
    writer.send("retry");
    writer.wait_for("RETRIED", REPORT_TIMEOUT);
    writer.finish(REPORT_TIMEOUT);
    wait_until(BOUND, "the reader to see the new version", || {
        reader.seen_last.load(Ordering::Relaxed)
    });
    reader.finish();
    let snap = store
        .snapshot::<Blob>(&id)
        .expect("snapshot")
        .expect("exists");
    assert_eq!((snap.data, snap.info.generation), (version(2, NEW_LEN), 2));
    let mut co = store
        .checkout::<Blob>(&id)
        .expect("checkout after the child");
    co.data_mut().0.truncate(10);
    co.check_in().expect("check in");
    assert_eq!(store.load::<Blob>(&id).expect("load"), Some(version(2, 10)));
    assert_eq!(temp_files(&ts.dir), Vec::<PathBuf>::new());
}
