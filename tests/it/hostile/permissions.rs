//! Permissions: owner-only modes under umask 0, shared and foreign-owned directories refused.

use super::*;

// ---------------------------------------------------------------------------------------------
// Permissions
// ---------------------------------------------------------------------------------------------

/// The environment variable that makes [`umask_zero_child`] run (naming its directory).
const UMASK_CHILD_DIR: &str = "SESSIONDIR_HOSTILE_UMASK_DIR";
/// Prefix of the child's report line.
const UMASK_CHILD_MARK: &str = "@@hostile-umask-child@@";

/// The umask of this process, from /proc (reading it with umask(2) would change it).
fn current_umask() -> String {
    let status = fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .map(|v| v.trim().to_string())
        .expect("a Umask line")
}

/// Runs every kind of write a store makes in a new store at `dir` (configured by `f`), and
/// returns the mode of a temporary file seen while a writer was writing it.
fn make_every_kind_of_file(
    dir: &Path,
    f: impl FnOnce(sessiondir::StoreBuilder) -> sessiondir::StoreBuilder,
) -> u32 {
    let store = f(Store::builder(dir).fan_out(2).max_session_size(64 << 20))
        .open()
        .expect("child: open store");
    let a = store.create(&dict("who", "a")).expect("create");
    let mut co = store.checkout::<Dict>(&a).expect("checkout");
    co.data_mut().insert("n", 1i64);
    co.check_in().expect("check in");
    let b = store.create(&dict("who", "b")).expect("create");
    store.touch(&b).expect("touch");
    store.cycle_id(&b).expect("cycle");
    // A lock file lost by hand is recreated by the next check-out (the repair path).
    let c = store.create(&dict("who", "c")).expect("create");
    unlink(&lock_path_of(&store, &c));
    store
        .checkout::<Dict>(&c)
        .expect("repairing checkout")
        .release();
    assert!(
        lock_path_of(&store, &c).is_file(),
        "the lock file was recreated"
    );

    // Temporary files live only while a write is under way: write 8 MiB sessions on one
    // thread and catch one of them on this one.
    let big = store.create(&String::new()).expect("create big");
    let shard = store
        .session_path(&big)
        .parent()
        .expect("shard")
        .to_path_buf();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, stop) = (store.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let mut co = store.checkout::<String>(&big).expect("checkout big");
                *co.data_mut() = char::from(b'a' + (n % 26) as u8)
                    .to_string()
                    .repeat(8 << 20);
                co.check_in().expect("check in big");
                n += 1;
            }
        })
    };
    let start = Instant::now();
    let mode = loop {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no temporary file seen"
        );
        let seen = fs::read_dir(&shard).expect("list shard").find_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            // Big's temporary file, or the spare its check-ins overwrite.
            let temp = name.starts_with(&format!(".{big}."))
                && (name.ends_with(".tmp") || name.ends_with(".spare"));
            // It may be renamed away between listing and lstat: then look again.
            temp.then(|| fs::symlink_metadata(shard.join(&name)).ok())?
        });
        if let Some(meta) = seen {
            break meta.mode() & 0o7777;
        }
    };
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer thread");
    assert_eq!(store.close().expect("close"), TidyReport::default());
    mode
}

#[test]
#[ignore = "entry point of the umask-0 child process run by \
            every_file_and_directory_is_owner_only_under_umask_zero"]
fn umask_zero_child() {
    let Ok(dir) = std::env::var(UMASK_CHILD_DIR) else {
        return;
    };
    // The parent starts this process through `sh -c 'umask 0 && exec ...'`.
    assert_eq!(current_umask(), "0000", "the child must run with umask 0");
    let dir = PathBuf::from(dir);
    let default = make_every_kind_of_file(&dir.join("default/deep/store"), |b| b);
    let group = make_every_kind_of_file(&dir.join("group/store"), |b| b.file_mode(0o640));
    println!("{UMASK_CHILD_MARK} temp-modes default={default:o} group={group:o}");
}

/// Every entry below `dir` (and `dir` itself) with its permission bits, as (directories,
/// files): `(path, mode)`.
type Modes = (Vec<(PathBuf, u32)>, Vec<(PathBuf, u32)>);

fn modes_below(dir: &Path) -> Modes {
    let (mut dirs, mut files) = (Vec::new(), Vec::new());
    for entry in walkdir::WalkDir::new(dir) {
        let entry = entry.expect("walk");
        let mode = entry.metadata().expect("lstat").mode() & 0o7777;
        let item = (entry.path().to_path_buf(), mode);
        if entry.file_type().is_dir() {
            dirs.push(item);
        } else {
            assert!(entry.file_type().is_file(), "{}", entry.path().display());
            files.push(item);
        }
    }
    (dirs, files)
}

#[test]
fn every_file_and_directory_is_owner_only_under_umask_zero() {
    // The umask can only take bits away, so under the usual 022 a store that asked for 0622
    // or 0755 would still look right. Under umask 0 every mode is exactly what the store asks
    // for. The umask is process-wide, so a child process (this binary again, started by a
    // shell that set umask 0) does the writing; this process keeps its own umask.
    let tmp = tempfile::tempdir().expect("temp dir");
    let exe = std::env::current_exe().expect("test binary");
    let out_path = tmp.path().join("child.out");
    let out = fs::File::create(&out_path).expect("child output file");
    let err = out.try_clone().expect("dup");
    let mut child = Command::new("/bin/sh")
        .args(["-c", "umask 0 && exec \"$0\" \"$@\""])
        .arg(exe)
        .args([
            "--exact",
            "hostile::permissions::umask_zero_child",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(UMASK_CHILD_DIR, tmp.path())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("start the umask-0 child");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break status;
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the umask-0 child did not finish in 120 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let output = fs::read_to_string(&out_path).expect("child output");
    assert!(status.success(), "child failed ({status}):\n{output}");
    let report = output
        .lines()
        .find_map(|l| Some(l[l.find(UMASK_CHILD_MARK)? + UMASK_CHILD_MARK.len()..].trim()))
        .unwrap_or_else(|| panic!("the child did not run the check:\n{output}"));
    assert_eq!(report, "temp-modes default=600 group=640", "{output}");

    // Defaults: files 0600, directories 0700, including the parents the store created.
    let (dirs, files) = modes_below(&tmp.path().join("default"));
    for (path, mode) in &dirs {
        assert_eq!(*mode, 0o700, "{}", path.display());
    }
    for (path, mode) in &files {
        assert_eq!(*mode, 0o600, "{}", path.display());
    }
    // default/, deep/, store/, sessions/ + 2 shards, locks/ + 2 shards.
    assert_eq!(dirs.len(), 3 + 3 + 3, "{dirs:?}");
    // The marker, a session file and a lock file for a, b (cycled), c and big, the spares
    // of those written since their creation: a, b (moved to its new id) and big, and the
    // forwarding record b's cycle left.
    assert_eq!(files.len(), 1 + 4 + 4 + 3 + 1, "{files:?}");

    // A file mode that lets the group read: exactly 0640 and 0750, never more.
    let (dirs, files) = modes_below(&tmp.path().join("group"));
    for (path, mode) in &dirs {
        assert_eq!(*mode, 0o750, "{}", path.display());
    }
    for (path, mode) in &files {
        assert_eq!(*mode, 0o640, "{}", path.display());
    }
    assert_eq!((dirs.len(), files.len()), (2 + 3 + 3, 1 + 4 + 4 + 3 + 1));
}

/// The reason a directory others may write to is refused (quoted to the user).
const SHARED_DIR_RISK: &str = "other users may write to this directory and so replace or delete \
                               any session (use allow_shared_dir to accept that)";

#[track_caller]
fn assert_refused_as_shared(r: Result<Store, Error>, path: &Path) {
    match r {
        Err(e @ Error::UnsafePath { .. }) => {
            let Error::UnsafePath { path: got, reason } = &e else {
                unreachable!()
            };
            assert_eq!(got, path);
            assert_eq!(*reason, SHARED_DIR_RISK);
            assert_eq!(
                e.to_string(),
                format!("refusing to use {}: {SHARED_DIR_RISK}", path.display())
            );
        }
        Err(other) => panic!("{}: expected UnsafePath, got {other:?}", path.display()),
        Ok(_) => panic!(
            "{}: a directory others may write to was accepted",
            path.display()
        ),
    }
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}

#[test]
fn a_store_root_others_may_write_is_refused_unless_allowed() {
    let tmp = tempfile::tempdir().expect("temp dir");
    // World-writable (with and without the sticky bit, like /tmp), group-writable, and
    // writable by "others" alone (with the sticky bit too: it stops others from removing or
    // renaming our files, not from planting their own).
    let modes = [
        0o777, 0o1777, 0o775, 0o770, 0o2770, 0o757, 0o722, 0o702, 0o1707, 0o1703, 0o720,
    ];
    for mode in modes {
        let root = tmp.path().join(format!("root-{mode:o}"));
        fs::create_dir(&root).expect("mkdir");
        chmod(&root, mode);
        let before = snapshot_except(tmp.path(), Path::new("/nonexistent"));
        assert_refused_as_shared(Store::open(&root), &root);
        assert_refused_as_shared(Store::builder(&root).fan_out(2).open(), &root);
        let after = snapshot_except(tmp.path(), Path::new("/nonexistent"));
        assert!(
            before == after,
            "{mode:o}: a refused open changed something"
        );

        // Told to accept it: it opens, works, and leaves the root's mode alone; what it
        // creates is still owner-only.
        let store = Store::builder(&root)
            .fan_out(2)
            .allow_shared_dir(true)
            .open()
            .unwrap_or_else(|e| panic!("{mode:o} with allow_shared_dir: {e}"));
        let id = store.create(&dict("who", "shared")).expect("create");
        assert_eq!(
            store.load::<Dict>(&id).expect("load").map(who).as_deref(),
            Some("shared")
        );
        assert_eq!(fs::metadata(&root).expect("stat").mode() & 0o7777, mode);
        let (dirs, files) = modes_below(&root);
        // New directories inherit a setgid bit from their parent (the kernel's doing).
        let dir_mode = 0o700 | (mode & 0o2000);
        assert!(
            dirs.iter().skip(1).all(|(_, m)| *m == dir_mode),
            "{mode:o}: {dirs:?}"
        );
        assert!(
            files.iter().all(|(_, m)| *m == 0o600),
            "{mode:o}: {files:?}"
        );
    }

    // A group-writable root is fine when the file mode shares with the group on purpose ...
    for mode in [0o770, 0o775, 0o2770] {
        let root = tmp.path().join(format!("group-{mode:o}"));
        fs::create_dir(&root).expect("mkdir");
        chmod(&root, mode);
        let store = Store::builder(&root).fan_out(2).file_mode(0o660).open();
        let store = store.unwrap_or_else(|e| panic!("{mode:o} with file mode 0660: {e}"));
        store.create(&Dict::new()).expect("create");
        // ... but not when the file mode does not give the group write access.
        let r = Store::builder(&root).fan_out(2).file_mode(0o640).open();
        assert_refused_as_shared(r, &root);
    }
    // "Others" never, whatever the file mode.
    let root = tmp.path().join("others-0777");
    fs::create_dir(&root).expect("mkdir");
    chmod(&root, 0o777);
    assert_refused_as_shared(Store::builder(&root).file_mode(0o660).open(), &root);
}

#[test]
fn a_store_directory_made_writable_by_others_later_is_refused() {
    // Every directory of an existing store, one at a time: a new opener refuses the store
    // naming that directory and changes nothing; with allow_shared_dir it opens; restored to
    // owner-only, it opens again. The passes that remove files (tidy, gc) check the
    // directories of each shard again and leave such a shard alone even in a handle opened
    // before.
    let ts = TestStore::new();
    let id = ts.store.create(&dict("who", "kept")).expect("create");
    let shard = ts.store.session_path(&id);
    let shard = shard
        .parent()
        .and_then(Path::file_name)
        .expect("shard name");
    let shard = shard.to_str().expect("utf-8").to_string();
    let dirs = [
        String::new(),
        "sessions".into(),
        "locks".into(),
        format!("sessions/{shard}"),
        format!("locks/{shard}"),
    ];
    for rel in &dirs {
        let path = if rel.is_empty() {
            ts.dir.clone()
        } else {
            ts.dir.join(rel)
        };
        for mode in [0o777, 0o1777, 0o770, 0o702, 0o1707] {
            chmod(&path, mode);
            let before = tree_snapshot(&ts.dir);
            assert_refused_as_shared(Store::open(&ts.dir), &path);
            assert_eq!(
                tree_snapshot(&ts.dir),
                before,
                "{rel}: a refused open wrote"
            );
            let shared = Store::builder(&ts.dir).allow_shared_dir(true).open();
            let shared = shared.unwrap_or_else(|e| panic!("{rel} {mode:o}: {e}"));
            assert!(shared.exists(&id).expect("exists"));
            if !rel.is_empty() {
                // The root is not re-checked by tidy (it only walks the shards). The directory
                // is refused once, naming it, however many shards lie beneath it.
                let report = ts.store.tidy().expect("tidy");
                let refused: Vec<_> = report.refused.iter().map(|r| r.path.clone()).collect();
                assert_eq!(
                    refused,
                    std::slice::from_ref(&path),
                    "{rel} {mode:o}: {report:?}"
                );
                assert_eq!(report.failed, 0, "{rel} {mode:o}: {report:?}");
            }
            chmod(&path, 0o700);
        }
        assert!(Store::open(&ts.dir).is_ok(), "{rel}: restored");
    }
    assert_eq!(ts.store.tidy().expect("tidy"), TidyReport::default());
    let report = ts.store.delete_idle(Duration::ZERO).expect("gc");
    assert_eq!((report.scanned, report.damaged), (1, 0), "{report:?}");
}

#[test]
fn a_store_directory_owned_by_another_user_is_refused() {
    // Mode 0700 is owner-only, but the owner may be somebody else: a process running as root
    // (or any user with write access through ACLs) would use a directory that user can chmod
    // and fill at will. Needs root to chown (CI runs as root; elsewhere it must, if CI is set).
    if !rustix::process::geteuid().is_root() && std::env::var_os("CI").is_none() {
        eprintln!("skipped: chown to another user needs root");
        return;
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    let nobody = 65534;
    let root = tmp.path().join("foreign");
    fs::create_dir(&root).expect("mkdir");
    chmod(&root, 0o700);
    std::os::unix::fs::chown(&root, Some(nobody), Some(nobody)).expect("chown (run as root)");
    match Store::open(&root) {
        Err(Error::UnsafePath { path, .. }) => assert_eq!(path, root),
        other => panic!("a directory owned by uid {nobody} was accepted: {other:?}"),
    }
    // The same for a shard of an existing store.
    let ts = TestStore::new();
    let shard = ts.dir.join("sessions").join("0");
    std::os::unix::fs::chown(&shard, Some(nobody), None).expect("chown");
    match Store::open(&ts.dir) {
        Err(Error::UnsafePath { path, .. }) => assert_eq!(path, shard),
        other => panic!("a shard owned by uid {nobody} was accepted: {other:?}"),
    }
}
