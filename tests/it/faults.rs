//! Faults under a running store: a full disk, a file-size limit, and session or lock files
//! deleted, truncated or replaced while a check-out is held.
//!
//! * **Disk full** on a real, small tmpfs (mounted per test, unmounted on drop): a check-in
//!   that cannot fit fails with a typed error, hands the check-out back, leaves the previous
//!   version byte-exact and no temporary file; a retry after space is freed succeeds.
//!   Mounting needs root; without it the tests say why and pass, unless `CI` is set.
//! * **`RLIMIT_FSIZE`** in a child process: the temporary file's write fails part-way with
//!   `EFBIG`; the same promises.
//! * **Session file** deleted, truncated, replaced by garbage, a directory, a symlink or a FIFO
//!   under a holder: every reading call returns at once with a typed error naming the path,
//!   the holder's check-in restores a good version (or, over a directory, fails typed and hands
//!   the check-out back), other sessions are untouched.
//! * **Lock file** removed or replaced under a holder: whatever a second check-out manages,
//!   no acknowledged update is ever lost.
//!
//! (Damaged files at rest are `corrupt_files`; SIGKILLed writers are `crash`.)

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use sessiondir::{Corruption, Dict, Error, SessionId, Store, TidyReport};

use crate::child::{self, Blob, Proc, blob_pattern, field};
use crate::common::{TestStore, lock_path_of, temp_files, wait_until};

/// Every store call in these tests must return within this (a hang is a failure, not a wait).
const BOUND: Duration = Duration::from_secs(20);
/// Lock timeout of the second handle: long enough to be a real wait, short enough for tests.
const SHORT_LOCK_TIMEOUT: Duration = Duration::from_millis(300);
const REPORT_TIMEOUT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Runs `f` on another thread and fails the test if it has not returned within [`BOUND`].
#[track_caller]
fn bounded<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
    });
    match rx.recv_timeout(BOUND) {
        Ok(Ok(v)) => v,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!("{what} did not return within {BOUND:?}: it hangs"),
    }
}

/// The error of `r`, failing the test if it succeeded.
#[track_caller]
fn err<T: std::fmt::Debug>(what: &str, r: Result<T, Error>) -> Error {
    match r {
        Ok(v) => panic!("{what}: expected an error, got Ok({v:?})"),
        Err(e) => e,
    }
}

/// Asserts that `e`'s message names `path`.
#[track_caller]
fn names(what: &str, e: &impl std::fmt::Display, path: &Path) {
    let msg = e.to_string();
    assert!(
        msg.contains(&path.display().to_string()),
        "{what}: the message does not name {}: {msg}",
        path.display()
    );
}

/// An `Error::Io` with verb `op` and an OS error of `kind`; returns its path.
#[track_caller]
fn io_error<'a>(what: &str, e: &'a Error, want_op: &str, kind: ErrorKind) -> &'a Path {
    match e {
        Error::Io { op, path, source } => {
            assert_eq!(*op, want_op, "{what}: {e:?}");
            assert_eq!(source.kind(), kind, "{what}: {e:?}");
            path
        }
        other => panic!("{what}: expected Error::Io ({want_op}, {kind:?}), got {other:?}"),
    }
}

/// Asserts that `temp` is a temporary-file path of session `id`, next to `session_path`.
#[track_caller]
fn is_temp_of(temp: &Path, id: &SessionId, session_path: &Path) {
    assert_eq!(temp.parent(), session_path.parent(), "{}", temp.display());
    let name = temp.file_name().and_then(|n| n.to_str()).unwrap_or("");
    assert!(
        name.starts_with(&format!(".{id}.")) && name.ends_with(".tmp"),
        "not a temporary file of {id}: {}",
        temp.display()
    );
}

/// Every path below `dir`, relative to it (files, directories, anything).
fn paths(dir: &Path) -> BTreeSet<PathBuf> {
    walkdir::WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .map(|e| e.expect("walk the store"))
        .map(|e| e.path().strip_prefix(dir).expect("below dir").to_path_buf())
        .collect()
}

/// Unlinks a store file from outside the store, as an operator or a cleaner would.
#[allow(clippy::disallowed_methods)] // damaging the store from outside, on purpose
fn unlink(path: &Path) {
    fs::remove_file(path).unwrap_or_else(|e| panic!("unlink {}: {e}", path.display()));
}

/// Renames a store file from outside the store.
#[allow(clippy::disallowed_methods)] // damaging the store from outside, on purpose
fn rename_outside(from: &Path, to: &Path) {
    fs::rename(from, to)
        .unwrap_or_else(|e| panic!("rename {} to {}: {e}", from.display(), to.display()));
}

fn make_fifo(path: &Path) {
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// Version `i` of a big session: `len` bytes of [`blob_pattern(i)`](blob_pattern) (what the
/// `fsize_writer` child writes for version 2).
fn version(i: u64, len: usize) -> Blob {
    Blob(vec![blob_pattern(i); len])
}

/// A neighbour session's data (a byte no version uses).
fn neighbour_blob(len: usize) -> Blob {
    Blob(vec![0; len])
}

/// What the lock-free reader may see of the victim: the old or the new version, whole.
const VERSIONS: [(u64, usize); 2] = [(1, OLD_LEN), (2, NEW_LEN)];

/// A session with a counter `n` and a few hundred bytes of other data.
fn counter(n: i64) -> Dict {
    let mut d = Dict::new();
    d.insert("n", n);
    d.insert("user", "ada");
    d.insert("cart", "tea, scones, jam; ".repeat(20));
    d
}

fn n_of(store: &Store, id: &SessionId) -> Option<i64> {
    store
        .load::<Dict>(id)
        .expect("load the session")
        .map(|d| d.get_i64("n").expect("the session has n"))
}

/// A second handle on the store, as another worker process would open it, with a short lock
/// timeout so that waits for a holder end quickly.
fn second_handle(dir: &Path) -> Store {
    Store::builder(dir)
        .lock_timeout(SHORT_LOCK_TIMEOUT)
        .open()
        .expect("open a second handle")
}

// ---------------------------------------------------------------------------------------------
// A small tmpfs
// ---------------------------------------------------------------------------------------------

/// A tmpfs of a given size mounted on a fresh temporary directory; unmounted on drop (lazily if
/// something still uses it), even when the test fails.
struct Tmpfs {
    mount_point: PathBuf,
    // Dropped after `drop` unmounted: removes the then empty mount point.
    _parent: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs with `options` (besides `mode=0700`). `None`: mounting is not permitted
    /// here (not root) and `CI` is not set; the caller skips its test.
    fn mount(options: &str) -> Option<Tmpfs> {
        let parent = tempfile::tempdir().expect("create temp dir");
        let mount_point = parent.path().join("mnt");
        fs::create_dir(&mount_point).expect("create mount point");
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("{options},mode=0700")])
            .arg("sessiondir-faults")
            .arg(&mount_point)
            .output();
        let why = match output {
            Ok(o) if o.status.success() => {
                return Some(Tmpfs {
                    mount_point,
                    _parent: parent,
                });
            }
            Ok(o) => format!(
                "mount -t tmpfs exited with {}: {}",
                o.status,
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Err(e) => format!("cannot run mount: {e}"),
        };
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set, so this test must run, but mounting a tmpfs failed: {why}"
        );
        eprintln!("SKIPPED: this test needs to mount a small tmpfs (run as root): {why}");
        None
    }

    fn path(&self) -> &Path {
        &self.mount_point
    }

    /// Bytes a writer can still allocate.
    fn free_bytes(&self) -> u64 {
        let s = rustix::fs::statvfs(&self.mount_point).expect("statvfs the tmpfs");
        s.f_bavail * s.f_frsize
    }

    fn free_inodes(&self) -> u64 {
        rustix::fs::statvfs(&self.mount_point)
            .expect("statvfs the tmpfs")
            .f_favail
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.mount_point)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(&self.mount_point)
                .status();
        }
    }
}

/// Writes `path` until the file system is full, then gives back `leave` bytes. Returns the
/// filler file (truncate it to free the space).
fn fill(path: &Path, leave: u64) -> File {
    let mut file = File::create(path).expect("create filler");
    let chunk = vec![0xa5u8; 4096];
    loop {
        match file.write(&chunk) {
            Ok(n) if n > 0 => {}
            Ok(_) => break,
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
            Err(e) => panic!("fill {}: {e}", path.display()),
        }
    }
    let len = file.metadata().expect("filler metadata").len();
    file.set_len(len.saturating_sub(leave))
        .expect("give back some space");
    file
}

/// A lock-free reader that loads session `id` in a loop until stopped and records every load
/// that was not exactly one of the `allowed` versions (see [`version`]: number, length).
struct Reader {
    stop: Arc<AtomicBool>,
    loads: Arc<AtomicU64>,
    seen_last: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl Reader {
    fn start(store: &Store, id: SessionId, allowed: [(u64, usize); 2]) -> Reader {
        let stop = Arc::new(AtomicBool::new(false));
        let loads = Arc::new(AtomicU64::new(0));
        let seen_last = Arc::new(AtomicBool::new(false));
        let (s, l, last) = (
            Arc::clone(&stop),
            Arc::clone(&loads),
            Arc::clone(&seen_last),
        );
        let store = store.clone();
        let thread = std::thread::spawn(move || {
            let mut bad = Vec::new();
            while !s.load(Ordering::Relaxed) {
                let got = store.load::<Blob>(&id);
                l.fetch_add(1, Ordering::Relaxed);
                match &got {
                    Ok(Some(Blob(b))) if allowed.iter().any(|&(v, n)| is_blob(b, v, n)) => {
                        let (v, n) = allowed[1];
                        if is_blob(b, v, n) {
                            last.store(true, Ordering::Relaxed);
                        }
                    }
                    _ if bad.len() < 5 => bad.push(format!(
                        "{:?}",
                        got.map(|o| o.map(|b| { (b.0.len(), b.0.first().copied()) }))
                    )),
                    _ => {}
                }
            }
            bad
        });
        Reader {
            stop,
            loads,
            seen_last,
            thread: Some(thread),
        }
    }

    /// Stops the reader; asserts it loaded at least once and never saw anything but the
    /// allowed versions.
    fn finish(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let bad = self
            .thread
            .take()
            .expect("running")
            .join()
            .expect("reader thread");
        let loads = self.loads.load(Ordering::Relaxed);
        assert!(loads > 0, "the reader never loaded");
        assert!(bad.is_empty(), "{loads} loads, unexpected ones: {bad:?}");
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn is_blob(b: &[u8], version: u64, len: usize) -> bool {
    b.len() == len && b.iter().all(|&x| x == blob_pattern(version))
}

// ---------------------------------------------------------------------------------------------
// 1. Disk full (ENOSPC) on a real tmpfs
// ---------------------------------------------------------------------------------------------

const OLD_LEN: usize = 16 * 1024;
const NEW_LEN: usize = 64 * 1024;
const NEIGHBOUR_LEN: usize = 8 * 1024;
/// Free space left after filling: less than any write below needs.
const SLACK: u64 = 8 * 1024;

#[test]
fn disk_full_check_in_fails_typed_keeps_the_previous_version_and_succeeds_after_space_is_freed() {
    let Some(fs) = Tmpfs::mount("size=1m") else {
        return;
    };
    let dir = fs.path().join("store");
    let store = Store::builder(&dir).fan_out(1).open().expect("open store");
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
    let store = Store::builder(&dir).fan_out(1).open().expect("open store");
    let id = store.create(&counter(1)).expect("create victim");
    let neighbour = store.create(&counter(7)).expect("create neighbour");
    let path = store.session_path(&id);
    let old_file = fs::read(&path).expect("read victim");
    let mut session = store.checkout::<Dict>(&id).expect("checkout");
    session.data_mut().insert("n", 2i64);

    // Use up every inode with empty files.
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

// ---------------------------------------------------------------------------------------------
// 2. RLIMIT_FSIZE (EFBIG) in a child process
// ---------------------------------------------------------------------------------------------

#[test]
fn file_size_limit_fails_a_check_in_part_way_in_another_process_and_a_retry_succeeds() {
    const LIMIT: u64 = 4096;
    let ts = TestStore::new();
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
        // rename(2) cannot put a file over a directory: a typed error naming the session path,
        // the guard back, still holding the lock, the directory untouched.
        let failed = result.expect_err("check-in over a directory");
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
        let busy = err("try_checkout", other.try_checkout::<Dict>(&id));
        assert!(matches!(busy, Error::Busy { .. }), "{busy:?}");
        assert_eq!(crate::common::entry_state(&path), damaged);
        assert_eq!(fs::read(path.join("inside")).expect("read inside"), b"x");
        holder.release();
        // Released: the next check-out gets the damage, not a lock timeout. (A waiting check-out,
        // not try_checkout: the helper thread of the other handle's timed-out delete/touch is
        // still queued in flock and takes and drops the lock for an instant after the release,
        // design §9, so a try_checkout right then may see Busy.)
        let s = other.clone();
        let e = err(
            "checkout after release",
            bounded("checkout", move || s.checkout::<Dict>(&id).map(drop)),
        );
        is_damage(
            "checkout after release",
            &e,
            &Damage::Corrupt(Corruption::NotAFile),
            &path,
        );
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
