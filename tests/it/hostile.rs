//! Hostile neighbours (issue 5, "Hostile input" and "Permissions").
//!
//! # Planted symlinks
//!
//! Every test builds a small world in one temporary directory:
//!
//! ```text
//! <base>/store/      the store under test (fan-out 1: every id lives in shard "0", so every
//!                    operation meets whatever was planted there)
//! <base>/sentinel/   what must never be read, created, changed or removed through the store:
//!                    files with known content, bait named like the store's own files, and the
//!                    directory sentinel/0/ (bait for a replaced sessions/ or locks/ directory)
//! <base>/other/      another store, whose session a planted symlink points at
//! ```
//!
//! A symlink is planted inside the store (a shard, the sessions/ or locks/ directory, a lock
//! file, temporary-file names, a session file, the marker) pointing outside. Then every
//! operation runs — on a handle opened *before* the plant (a long-running server), and a
//! reopen (an opener that comes *after* it) — inside a time limit (never a hang). Checked:
//!
//! * the transcript of outcomes, operation by operation: typed errors naming the plant where
//!   the store must refuse, normal results where the plant is not in the way;
//! * everything outside the store — names, file types, inodes, modes, owners, link counts,
//!   sizes, mtimes, ctimes and contents — is identical before and after;
//! * nothing outside the store was even opened: an inotify watch on the sentinel and on the
//!   other store's directories must see no event at all (`IN_OPEN`, `IN_ACCESS`, `IN_MODIFY`,
//!   `IN_CREATE`, `IN_DELETE`, ...). A failed name lookup raises no inotify event; that is the
//!   one "read" this cannot see, and the transcript covers it.
//!
//! # Permissions
//!
//! With umask 0, set in a child process (the umask is process-wide, so it is never changed in
//! this test binary's own process), every file and directory the store creates has exactly the
//! configured owner-only mode. Store directories that other users (or the group, unless the
//! file mode shares with it) may write to are refused with a typed error naming the path and
//! the risk, unless `allow_shared_dir(true)`.
//!
//! # Ids
//!
//! Cases `invalid_ids` does not have yet: percent-encoded and backslash traversal,
//! whitespace and homoglyphs that keep the byte length at exactly 32, mixed case; and
//! never-issued ids against the operations `invalid_ids` does not run.
//!
//! # Known gaps (ignored tests, run with `--ignored`)
//!
//! * `requests_never_follow_a_directory_replaced_under_an_open_store`: store directories are
//!   checked when the store is opened; tidy and gc check them again (shard by shard), but
//!   request operations (create, load, check-out, check-in, delete, cycle, touch) of a handle
//!   opened *before* a shard or sessions/ or locks/ was replaced by a symlink follow it.
//!   Planting one needs the owner's rights (the directories are 0700).
//! * `a_store_directory_owned_by_another_user_is_refused`: only the mode bits of store
//!   directories are checked, not their owner.

use std::collections::BTreeMap;
use std::fs;
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rustix::fs::inotify::{self, CreateFlags, WatchFlags};
use sessiondir::{Checkout, Dict, Error, Expiry, GcReport, SessionId, Store, TidyReport};

use crate::common::{TestStore, lock_path_of, tree_snapshot};

/// Every operation of one scenario must finish within this (the lock timeout is 2 s).
const SCENARIO_LIMIT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// Tools: renames and unlinks from outside the store, a time limit, a full-detail snapshot, an
// inotify watch.
// ---------------------------------------------------------------------------------------------

/// Moves a store entry out of the way, as a hostile neighbour would (the library's own renames
/// all go through src/atomic.rs; tests tamper on purpose).
#[allow(clippy::disallowed_methods)]
fn move_aside(from: &Path, to: &Path) {
    fs::rename(from, to)
        .unwrap_or_else(|e| panic!("rename {} to {}: {e}", from.display(), to.display()));
}

/// Unlinks a store file from outside the store (see [`move_aside`]).
#[allow(clippy::disallowed_methods)]
fn unlink(path: &Path) {
    fs::remove_file(path).unwrap_or_else(|e| panic!("unlink {}: {e}", path.display()));
}

/// Replaces `path` (a file or a directory) by a symlink to `target`; a directory is moved to
/// `<path>.moved` next to it, so that its content stays inside the store but off every path
/// the store uses.
fn plant_symlink(path: &Path, target: &Path) {
    let meta = fs::symlink_metadata(path).expect("the entry to replace exists");
    if meta.is_dir() {
        let mut aside = path.as_os_str().to_owned();
        aside.push(".moved");
        move_aside(path, Path::new(&aside));
    } else {
        unlink(path);
    }
    symlink(target, path).expect("plant symlink");
}

/// Runs `f` on another thread; fails the test if it panics or has not finished within `limit`.
fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
    });
    match rx.recv_timeout(limit) {
        Ok(Ok(v)) => v,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!("{what}: still running after {limit:?} (a hang)"),
    }
}

/// One path as `lstat` and a read see it: enough to tell that nothing about it changed, not
/// even its owner, link count or inode change time.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Detail {
    kind: &'static str,
    ino: u64,
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    /// A regular file's bytes or a symlink's target.
    content: Vec<u8>,
}

fn detail(path: &Path) -> Detail {
    use std::os::unix::ffi::OsStrExt;
    let meta = fs::symlink_metadata(path).expect("lstat for snapshot");
    let ft = meta.file_type();
    let (kind, content) = if ft.is_file() {
        ("file", fs::read(path).expect("read for snapshot"))
    } else if ft.is_dir() {
        ("dir", Vec::new())
    } else if ft.is_symlink() {
        let target = fs::read_link(path).expect("readlink for snapshot");
        ("symlink", target.as_os_str().as_bytes().to_vec())
    } else {
        ("other", Vec::new())
    };
    Detail {
        kind,
        ino: meta.ino(),
        mode: meta.mode(),
        uid: meta.uid(),
        gid: meta.gid(),
        nlink: meta.nlink(),
        len: meta.len(),
        mtime: (meta.mtime(), meta.mtime_nsec()),
        ctime: (meta.ctime(), meta.ctime_nsec()),
        content,
    }
}

/// Everything below `base` (and `base` itself) except the subtree `skip`, never following a
/// symlink, keyed by path relative to `base`.
fn snapshot_except(base: &Path, skip: &Path) -> BTreeMap<PathBuf, Detail> {
    fn walk(base: &Path, skip: &Path, path: &Path, out: &mut BTreeMap<PathBuf, Detail>) {
        if path == skip {
            return;
        }
        let d = detail(path);
        let is_dir = d.kind == "dir";
        out.insert(
            path.strip_prefix(base).expect("below base").to_path_buf(),
            d,
        );
        if is_dir {
            for entry in fs::read_dir(path).expect("list for snapshot") {
                walk(base, skip, &entry.expect("dir entry").path(), out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(base, skip, base, &mut out);
    out
}

/// An inotify watch on directories outside the store: any open, read, write, attribute
/// change, creation, removal or rename of an entry in them (or of them) is an event.
struct Watch {
    fd: OwnedFd,
    dirs: Vec<(i32, PathBuf)>,
}

impl Watch {
    fn new(dirs: &[PathBuf]) -> Watch {
        let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK).expect("inotify");
        let dirs = dirs
            .iter()
            .map(|d| {
                let wd =
                    inotify::add_watch(&fd, d, WatchFlags::ALL_EVENTS | WatchFlags::DONT_FOLLOW)
                        .unwrap_or_else(|e| panic!("watch {}: {e}", d.display()));
                (wd, d.clone())
            })
            .collect();
        Watch { fd, dirs }
    }

    /// The events since the last call, as "<dir>/<name>: <flags>".
    fn events(&self) -> Vec<String> {
        let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
        let mut reader = inotify::Reader::new(&self.fd, &mut buf);
        let mut out = Vec::new();
        loop {
            match reader.next() {
                Ok(ev) => {
                    let dir = self
                        .dirs
                        .iter()
                        .find(|(wd, _)| *wd == ev.wd())
                        .map_or_else(|| PathBuf::from("?"), |(_, d)| d.clone());
                    let name = ev
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    out.push(format!("{}/{name}: {:?}", dir.display(), ev.events()));
                }
                Err(rustix::io::Errno::AGAIN) => return out,
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => panic!("read inotify events: {e}"),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The world: a store, a sentinel, another store.
// ---------------------------------------------------------------------------------------------

/// Bait file names: `.<V>.<BAIT_RAND>.tmp` looks like a dead writer's temporary file.
const BAIT_RAND: &str = "abcdefgh";
const SECRET: &[u8] = b"top secret: never to be read, changed or removed through a store\n";
const MARKER_TEXT: &[u8] = b"sessiondir store\nlayout 1\nfan-out 1\n";

struct World {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    /// The store directory (`<base>/store`).
    dir: PathBuf,
    sentinel: PathBuf,
    other_dir: PathBuf,
    /// Opened before anything was planted, like a long-running server's handle.
    store: Store,
    /// A live session, the target of the single-session operations.
    x: SessionId,
    /// Session Y (a live session) checked out before the plant, checked in after it.
    held: Option<Checkout<Dict>>,
    /// The other store's session.
    z: SessionId,
    /// A valid id nobody issued: the name of bait files.
    v: SessionId,
    /// Ids met so far and their names in transcripts.
    names: Vec<(SessionId, &'static str)>,
}

fn dict(key: &str, value: &str) -> Dict {
    let mut d = Dict::new();
    d.insert(key, value);
    d
}

/// A valid id that differs from every id in `taken`.
fn unissued(taken: &[SessionId]) -> SessionId {
    for first in ['q', 'r', 's', 't'] {
        let id = SessionId::parse(&format!("{first}{}", "m".repeat(31))).expect("valid id");
        if !taken.contains(&id) {
            return id;
        }
    }
    unreachable!("four distinct candidates, at most three taken")
}

impl World {
    fn new() -> World {
        let tmp = tempfile::tempdir().expect("temp dir");
        let base = tmp.path().to_path_buf();
        let dir = base.join("store");
        let sentinel = base.join("sentinel");
        let other_dir = base.join("other");
        let store = builder(&dir).open().expect("open the store");
        let x = store.create(&dict("who", "x")).expect("create x");
        let y = store.create(&dict("who", "y")).expect("create y");
        let held = store.checkout::<Dict>(&y).expect("check y out");
        let other = builder(&other_dir).open().expect("open the other store");
        let z = other
            .create(&dict("who", "z (other store)"))
            .expect("create z");
        let v = unissued(&[x, y, z]);

        // A valid session image (the header does not name its id, so it loads as any id).
        let image = fs::read(other.session_path(&z)).expect("read z");
        let bait = |d: &Path| {
            fs::create_dir_all(d).expect("mkdir sentinel");
            fs::write(d.join(x.as_str()), &image).expect("bait session image");
            fs::write(d.join(v.as_str()), b"bait named like a lock file\n").expect("bait");
            fs::write(
                d.join(format!(".{v}.{BAIT_RAND}.tmp")),
                b"bait named like a dead writer's temporary file\n",
            )
            .expect("bait temp");
        };
        bait(&sentinel);
        bait(&sentinel.join("0"));
        fs::write(sentinel.join("secret.txt"), SECRET).expect("secret");
        fs::write(sentinel.join("marker"), MARKER_TEXT).expect("marker bait");
        for f in ["secret.txt", "marker"] {
            fs::set_permissions(sentinel.join(f), fs::Permissions::from_mode(0o644))
                .expect("chmod sentinel file");
        }
        World {
            _tmp: tmp,
            base,
            dir,
            sentinel,
            other_dir,
            store,
            x,
            held: Some(held),
            z,
            v,
            names: vec![(x, "X"), (y, "Y"), (z, "Z"), (v, "V")],
        }
    }

    fn shard(&self, top: &str) -> PathBuf {
        self.dir.join(top).join("0")
    }

    /// The directories outside the store that must see no event.
    fn watched(&self) -> Vec<PathBuf> {
        vec![
            self.sentinel.clone(),
            self.sentinel.join("0"),
            self.other_dir.clone(),
            self.other_dir.join("sessions").join("0"),
            self.other_dir.join("locks").join("0"),
        ]
    }

    fn outside(&self) -> BTreeMap<PathBuf, Detail> {
        snapshot_except(&self.base, &self.dir)
    }

    fn name(&mut self, id: SessionId, name: &'static str) {
        self.names.push((id, name));
    }

    /// `path` relative to the world, with ids replaced by their names.
    fn rel(&self, path: &Path) -> String {
        let mut s = path
            .strip_prefix(&self.base)
            .unwrap_or(path)
            .display()
            .to_string();
        for (id, name) in &self.names {
            s = s.replace(id.as_str(), name);
        }
        s
    }

    /// Texts that mention absolute paths (inotify events), as [`rel`](Self::rel) would say.
    fn rel_all(&self, texts: Vec<String>) -> Vec<String> {
        let base = format!("{}/", self.base.display());
        texts
            .into_iter()
            .map(|t| self.rel(Path::new(&t.replace(&base, ""))))
            .collect()
    }

    /// The names of `ids`, sorted.
    fn syms(&self, ids: &[SessionId]) -> Vec<String> {
        let mut names: Vec<String> = ids.iter().map(|i| self.sym(i)).collect();
        names.sort();
        names
    }

    fn sym(&self, id: &SessionId) -> String {
        self.names
            .iter()
            .find(|(i, _)| i == id)
            .map_or_else(|| "?".to_string(), |(_, n)| (*n).to_string())
    }

    /// An error as a transcript entry: the variant and the path or id it names.
    fn describe(&self, e: &Error) -> String {
        match e {
            Error::UnsafePath { path, .. } => {
                assert!(
                    e.to_string().contains(&path.display().to_string()),
                    "the message does not name the path: {e}"
                );
                format!("UnsafePath {}", self.rel(path))
            }
            Error::Io { op, path, source } => {
                format!("Io {op} {} ({:?})", self.rel(path), source.kind())
            }
            Error::Corrupt { path, kind } => format!("Corrupt {} ({kind})", self.rel(path)),
            Error::Config { path, .. } => format!("Config {}", self.rel(path)),
            Error::NotFound { id } => format!("NotFound {}", self.sym(id)),
            Error::Deleted { id } => format!("Deleted {}", self.sym(id)),
            Error::Expired { id } => format!("Expired {}", self.sym(id)),
            Error::Busy { id } => format!("Busy {}", self.sym(id)),
            Error::LockTimeout { id, .. } => format!("LockTimeout {}", self.sym(id)),
            Error::LockLost { id, path } => {
                format!("LockLost {} {}", self.sym(id), self.rel(path))
            }
            other => format!("{other:?}"),
        }
    }

    fn outcome<T>(&self, r: Result<T, Error>, ok: impl FnOnce(T) -> String) -> String {
        match r {
            Ok(v) => ok(v),
            Err(e) => format!("err {}", self.describe(&e)),
        }
    }
}

fn builder(dir: &Path) -> sessiondir::StoreBuilder {
    Store::builder(dir)
        .fan_out(1)
        .lock_timeout(Duration::from_secs(2))
}

fn gc_line(r: GcReport) -> String {
    format!(
        "ok scanned={} deleted={} busy={} damaged={}",
        r.scanned, r.deleted, r.skipped_busy, r.damaged
    )
}

fn tidy_line(r: TidyReport) -> String {
    format!(
        "ok temps={} orphan_locks={} busy={} failed={}",
        r.temp_files_removed, r.orphan_locks_removed, r.skipped_busy, r.failed
    )
}

/// A transcript under construction: one "operation: outcome" line per operation.
#[derive(Default)]
struct Transcript(Vec<String>);

impl Transcript {
    /// Records `r`: `ok(value)` or `err <the error as World::describe says>`.
    fn add<T>(&mut self, w: &World, op: &str, r: Result<T, Error>, ok: impl FnOnce(T) -> String) {
        let outcome = w.outcome(r, ok);
        self.0.push(format!("{op}: {outcome}"));
    }
}

fn ok<T>(_: T) -> String {
    "ok".into()
}

/// Runs every store operation once, in a fixed order, through `store`, and returns the
/// transcript. `reopen_at` is the path a new opener names.
fn run_everything(w: &mut World, store: &Store, reopen_at: &Path) -> Vec<String> {
    let mut t = Transcript::default();
    let x = w.x;
    let data = |d: Option<Dict>| format!("ok {:?}", d.map(who));
    let snap = |s: Option<sessiondir::Snapshot<Dict>>| format!("ok {:?}", s.map(|s| who(s.data)));

    if let Some(mut co) = w.held.take() {
        co.data_mut().insert("checked_in", "after the plant");
        let r = co.check_in().map_err(Error::from);
        t.add(w, "checkin Y (checked out before)", r, ok);
    }
    let r = store.create(&dict("who", "c"));
    if let Ok(c) = &r {
        w.name(*c, "C");
    }
    t.add(w, "create", r, |_| "ok C".into());
    t.add(w, "load X", store.load::<Dict>(&x), data);
    t.add(w, "snapshot X", store.snapshot::<Dict>(&x), snap);
    t.add(w, "inspect X", store.inspect::<Dict>(&x), snap);
    t.add(w, "exists X", store.exists(&x), |b| format!("ok {b}"));
    let r = store.info(&x).map(|i| i.map(|i| i.generation));
    t.add(w, "info X", r, |g| format!("ok {g:?}"));
    t.add(w, "is_checked_out X", store.is_checked_out(&x), |b| {
        format!("ok {b}")
    });
    match store.checkout::<Dict>(&x) {
        Ok(mut co) => {
            t.0.push(format!("checkout X: ok {}", who(co.data().clone())));
            co.data_mut().insert("visits", 1i64);
            t.add(w, "checkin X", co.check_in().map_err(Error::from), ok);
        }
        Err(e) => t.add(w, "checkout X", Err::<(), _>(e), ok),
    }
    let r = store.try_checkout::<Dict>(&x).map(Checkout::release);
    t.add(w, "try_checkout X", r, ok);
    let generation = |i: sessiondir::SessionInfo| format!("ok {}", i.generation);
    t.add(w, "touch X", store.touch(&x), generation);
    t.add(
        w,
        "set_expiry X",
        store.set_expiry(&x, Expiry::Never),
        generation,
    );
    let r: Result<Vec<SessionId>, Error> = store.ids().collect();
    t.add(w, "ids", r, |ids| format!("ok {:?}", w.syms(&ids)));
    let (good, bad): (Vec<_>, Vec<_>) = store.sessions().partition(Result::is_ok);
    let bad: Vec<String> = bad
        .into_iter()
        .filter_map(Result::err)
        .map(|e| w.describe(&e))
        .collect();
    t.0.push(format!("sessions: ok {} errors {bad:?}", good.len()));
    let r = store.cycle_id(&x);
    let target = match &r {
        Ok(x2) => {
            w.name(*x2, "X2");
            *x2
        }
        Err(_) => x,
    };
    t.add(w, "cycle_id X", r, |_| "ok X2".into());
    let r = store.delete(&target);
    t.add(w, &format!("delete {}", w.sym(&target)), r, |b| {
        format!("ok {b}")
    });
    t.add(w, "delete_expired", store.delete_expired(), gc_line);
    after_the_last_write();
    t.add(
        w,
        "delete_idle(0)",
        store.delete_idle(Duration::ZERO),
        gc_line,
    );
    let r: Result<Vec<SessionId>, Error> = store.ids().collect();
    t.add(w, "ids after gc", r, |ids| format!("ok {:?}", w.syms(&ids)));
    t.add(w, "tidy", store.tidy(), tidy_line);
    let stats = store.lock_stats();
    t.0.push(format!("lock_stats: ok timeouts={}", stats.timeouts));
    t.add(w, "close", store.clone().close(), tidy_line);
    t.add(w, "reopen", builder(reopen_at).open(), ok);
    t.0
}

/// Returns once the wall clock is 2 ms past now, so that `delete_idle(0)` finds every session
/// written so far idle (idleness is measured in whole milliseconds: a session written in the
/// current millisecond is not idle yet).
fn after_the_last_write() {
    let now = std::time::SystemTime::now();
    crate::common::wait_until(Duration::from_secs(5), "the clock to move 2 ms", || {
        now.elapsed().is_ok_and(|d| d >= Duration::from_millis(2))
    });
}

/// The "who" entry of a session's data (which session's data it really is).
fn who(d: Dict) -> String {
    d.get_str("who").unwrap_or("-").to_string()
}

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

/// What is planted inside the store, pointing outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plant {
    /// sessions/0 → the sentinel directory (which holds a session image named like X).
    SessionShard,
    /// locks/0 → the sentinel directory (which holds files named like X and V).
    LockShard,
    /// sessions/ → the sentinel directory (sessions/0 is then sentinel/0).
    SessionsDir,
    /// locks/ → the sentinel directory.
    LocksDir,
    /// X's lock file → sentinel/secret.txt; a lock-file name for V → sentinel/V.
    LockFile,
    /// Temporary-file names `.X.<r>.tmp` → sentinel/secret.txt, `.V.<r>.tmp` → the sentinel's
    /// own `.V.<r>.tmp`, `.X.<r2>.tmp` → the directory sentinel/0.
    TempNames,
    /// X's session file → the other store's session Z.
    SessionFile,
    /// The marker → sentinel/marker (a valid marker text).
    Marker,
}

fn plant(w: &World, p: Plant) {
    let sessions = w.shard("sessions");
    let locks = w.shard("locks");
    let (x, v) = (w.x.as_str(), w.v.as_str());
    match p {
        Plant::SessionShard => plant_symlink(&sessions, &w.sentinel),
        Plant::LockShard => plant_symlink(&locks, &w.sentinel),
        Plant::SessionsDir => plant_symlink(&w.dir.join("sessions"), &w.sentinel),
        Plant::LocksDir => plant_symlink(&w.dir.join("locks"), &w.sentinel),
        Plant::LockFile => {
            plant_symlink(
                &lock_path_of(&w.store, &w.x),
                &w.sentinel.join("secret.txt"),
            );
            symlink(w.sentinel.join(v), locks.join(v)).expect("plant");
        }
        Plant::TempNames => {
            let temp = |id: &str, r: &str| sessions.join(format!(".{id}.{r}.tmp"));
            symlink(w.sentinel.join("secret.txt"), temp(x, BAIT_RAND)).expect("plant");
            let bait = w.sentinel.join(format!(".{v}.{BAIT_RAND}.tmp"));
            symlink(bait, temp(v, BAIT_RAND)).expect("plant");
            symlink(w.sentinel.join("0"), temp(x, "dirlink1")).expect("plant");
        }
        Plant::SessionFile => {
            let z = w.other_dir.join("sessions").join("0").join(w.z.as_str());
            plant_symlink(&w.store.session_path(&w.x), &z);
        }
        Plant::Marker => plant_symlink(&w.dir.join("sessiondir.store"), &w.sentinel.join("marker")),
    }
}

/// What one scenario did.
struct Outcome {
    plant: Plant,
    transcript: Vec<String>,
    /// inotify events outside the store while the operations ran.
    events: Vec<String>,
    /// Differences between the outside before and after.
    changed: Vec<String>,
}

impl Outcome {
    #[track_caller]
    fn assert_outside_untouched(&self) {
        assert!(
            self.changed.is_empty() && self.events.is_empty(),
            "{:?}: outside the store, changed: {:#?}\nevents: {:#?}\ntranscript: {:#?}",
            self.plant,
            self.changed,
            self.events,
            self.transcript
        );
    }

    #[track_caller]
    fn assert_transcript<S: AsRef<str>>(&self, want: &[S]) {
        let want: Vec<String> = want.iter().map(|s| s.as_ref().to_string()).collect();
        assert_eq!(self.transcript, want, "{:?}", self.plant);
    }
}

/// What differs between two snapshots of the outside, paths named as in transcripts.
fn diff(
    w: &World,
    before: &BTreeMap<PathBuf, Detail>,
    after: &BTreeMap<PathBuf, Detail>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (path, b) in before {
        match after.get(path) {
            None => out.push(format!("removed {}", w.rel(path))),
            Some(a) if a != b => out.push(format!("changed {}: {b:?} -> {a:?}", w.rel(path))),
            Some(_) => {}
        }
    }
    for path in after.keys().filter(|p| !before.contains_key(*p)) {
        out.push(format!("created {}", w.rel(path)));
    }
    out
}

/// Which operations a scenario runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Run {
    /// [`run_everything`].
    Everything,
    /// [`run_maintenance`].
    Maintenance,
}

/// Builds a world, plants `p`, runs the operations `run` names through the handle opened
/// before the plant (and a reopen), and reports what happened inside and outside the store.
fn scenario(p: Plant, run: Run) -> (World, Outcome) {
    let mut w = World::new();
    if run == Run::Maintenance {
        drop(w.held.take());
    }
    plant(&w, p);
    let before = w.outside();
    let watch = Watch::new(&w.watched());
    let (w, transcript) = within(SCENARIO_LIMIT, &format!("{p:?}"), move || {
        let store = w.store.clone();
        let dir = w.dir.clone();
        let t = match run {
            Run::Everything => run_everything(&mut w, &store, &dir),
            Run::Maintenance => run_maintenance(&w, &store),
        };
        (w, t)
    });
    let events = w.rel_all(watch.events());
    let changed = diff(&w, &before, &w.outside());
    let outcome = Outcome {
        plant: p,
        transcript,
        events,
        changed,
    };
    (w, outcome)
}

/// The operations that walk the whole store and remove files, unattended (cron, `close`).
fn run_maintenance(w: &World, store: &Store) -> Vec<String> {
    let mut t = Transcript::default();
    let r: Result<Vec<SessionId>, Error> = store.ids().collect();
    t.add(w, "ids", r, |ids| format!("ok {:?}", w.syms(&ids)));
    t.0.push(format!("sessions: {}", store.sessions().count()));
    t.add(w, "delete_expired", store.delete_expired(), gc_line);
    after_the_last_write();
    t.add(
        w,
        "delete_idle(0)",
        store.delete_idle(Duration::ZERO),
        gc_line,
    );
    t.add(w, "tidy", store.tidy(), tidy_line);
    t.add(w, "close", store.clone().close(), tidy_line);
    t.0
}

const DIRECTORY_PLANTS: [Plant; 4] = [
    Plant::SessionShard,
    Plant::LockShard,
    Plant::SessionsDir,
    Plant::LocksDir,
];

/// The path each directory plant replaced, relative to the world.
fn planted_path(p: Plant) -> &'static str {
    match p {
        Plant::SessionShard => "store/sessions/0",
        Plant::LockShard => "store/locks/0",
        Plant::SessionsDir => "store/sessions",
        Plant::LocksDir => "store/locks",
        Plant::LockFile | Plant::TempNames | Plant::SessionFile => "-",
        Plant::Marker => "store/sessiondir.store",
    }
}

// ---- A directory replaced by a symlink under an open store ----------------------------------

#[test]
fn maintenance_never_follows_a_directory_replaced_under_an_open_store() {
    // gc, tidy and listing walk the whole store and remove files, unattended. A shard, or the
    // sessions/ or locks/ directory, replaced by a symlink after the store was opened must
    // not lead them outside: the sentinel holds bait named like a dead writer's temporary file,
    // like an orphaned lock file and like a live session, which they would otherwise remove.
    // Failed before the fixes in src/iter.rs, src/tidy.rs and src/gc.rs (each removed bait).
    let want_session_side = [
        "ids: ok []",
        "sessions: 0",
        "delete_expired: ok scanned=0 deleted=0 busy=0 damaged=0",
        "delete_idle(0): ok scanned=0 deleted=0 busy=0 damaged=0",
        "tidy: ok temps=0 orphan_locks=0 busy=0 failed=1",
        "close: ok temps=0 orphan_locks=0 busy=0 failed=1",
    ];
    // The sessions are listed (their files are where they belong), but gc refuses to lock
    // them through the replaced lock directory: counted as damaged, left in place.
    let want_lock_side = [
        "ids: ok [\"X\", \"Y\"]",
        "sessions: 2",
        "delete_expired: ok scanned=2 deleted=0 busy=0 damaged=0",
        "delete_idle(0): ok scanned=2 deleted=0 busy=0 damaged=2",
        "tidy: ok temps=0 orphan_locks=0 busy=0 failed=1",
        "close: ok temps=0 orphan_locks=0 busy=0 failed=1",
    ];
    for p in DIRECTORY_PLANTS {
        let (w, o) = scenario(p, Run::Maintenance);
        o.assert_outside_untouched();
        match p {
            Plant::SessionShard | Plant::SessionsDir => o.assert_transcript(&want_session_side),
            _ => o.assert_transcript(&want_lock_side),
        }
        // The refused sessions are intact where they really are.
        let aside = w.dir.join(format!(
            "{}.moved",
            planted_path(p).trim_start_matches("store/")
        ));
        assert!(aside.is_dir(), "{p:?}: {}", aside.display());
        let files = crate::common::all_files(&aside).len();
        assert!(
            files >= 2,
            "{p:?}: {files} files left in {}",
            aside.display()
        );
    }
}

#[test]
#[ignore = "known gap (see the report of issue 5): request operations of a handle opened \
            before a store directory was replaced by a symlink follow it; needs dirfd-relative \
            opens in src/format.rs, src/lock.rs, src/atomic.rs"]
fn requests_never_follow_a_directory_replaced_under_an_open_store() {
    // What the issue asks: nothing outside the store is created, read or changed, whatever
    // was planted, and a refusal is a typed error naming the path. Today a handle opened
    // before the plant writes sessions and lock files into the sentinel, reads its bait as
    // session X, truncates bait used as a lock file and removes bait on cycle and delete.
    for p in DIRECTORY_PLANTS {
        let (_w, o) = scenario(p, Run::Everything);
        o.assert_outside_untouched();
        for line in &o.transcript {
            let refused = line.contains(": err ");
            assert!(
                !refused || line.contains(": err UnsafePath store/"),
                "{p:?}: refused without naming an unsafe path: {line}"
            );
        }
    }
}

#[test]
fn a_directory_replaced_by_a_symlink_before_open_is_refused() {
    // An opener that comes after the plant (a restarted server, the admin tool) refuses the
    // store with a typed error naming the symlink, writes nothing and reads nothing outside.
    for p in [
        Plant::SessionShard,
        Plant::LockShard,
        Plant::SessionsDir,
        Plant::LocksDir,
        Plant::Marker,
    ] {
        let mut w = World::new();
        drop(w.held.take());
        plant(&w, p);
        let outside = w.outside();
        let inside = snapshot_except(&w.dir, Path::new("/nonexistent"));
        let watch = Watch::new(&w.watched());
        let dir = w.dir.clone();
        let results = within(SCENARIO_LIMIT, &format!("open after {p:?}"), move || {
            vec![
                builder(&dir).open().map(drop),
                Store::open(&dir).map(drop),
                Store::builder(&dir)
                    .create_if_missing(false)
                    .open()
                    .map(drop),
                Store::builder(&dir).allow_shared_dir(true).open().map(drop),
            ]
        });
        for r in results {
            let line = w.outcome(r, |()| "ok".into());
            assert_eq!(line, format!("err UnsafePath {}", planted_path(p)), "{p:?}");
        }
        assert_eq!(watch.events(), Vec::<String>::new(), "{p:?}: read outside");
        assert!(
            diff(&w, &outside, &w.outside()).is_empty(),
            "{p:?}: changed outside"
        );
        let after = snapshot_except(&w.dir, Path::new("/nonexistent"));
        assert!(
            diff(&w, &inside, &after).is_empty(),
            "{p:?}: a refused open wrote"
        );
    }
}

/// The transcript of a store with nothing in the way of session X: every operation works.
const ALL_WELL: [&str; 24] = [
    "checkin Y (checked out before): ok",
    "create: ok C",
    "load X: ok Some(\"x\")",
    "snapshot X: ok Some(\"x\")",
    "inspect X: ok Some(\"x\")",
    "exists X: ok true",
    "info X: ok Some(1)",
    "is_checked_out X: ok false",
    "checkout X: ok x",
    "checkin X: ok",
    "try_checkout X: ok",
    "touch X: ok 3",
    "set_expiry X: ok 4",
    "ids: ok [\"C\", \"X\", \"Y\"]",
    "sessions: ok 3 errors []",
    "cycle_id X: ok X2",
    "delete X2: ok true",
    "delete_expired: ok scanned=2 deleted=0 busy=0 damaged=0",
    "delete_idle(0): ok scanned=2 deleted=2 busy=0 damaged=0",
    "ids after gc: ok []",
    "tidy: ok temps=0 orphan_locks=0 busy=0 failed=0",
    "lock_stats: ok timeouts=0",
    "close: ok temps=0 orphan_locks=0 busy=0 failed=0",
    "reopen: ok",
];

/// [`ALL_WELL`] with the line starting with each `prefix` replaced by its `line`, or dropped
/// if that is empty.
fn all_well_but(changes: &[(&str, String)]) -> Vec<String> {
    let mut t: Vec<String> = ALL_WELL.iter().map(|l| (*l).to_string()).collect();
    for (prefix, line) in changes {
        let at = t
            .iter()
            .position(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line starts with {prefix:?}"));
        t[at].clone_from(line);
    }
    t.retain(|l| !l.is_empty());
    t
}

/// `(op, "op: err UnsafePath <path>")` for [`all_well_but`].
fn refused<'a>(op: &'a str, path: &str) -> (&'a str, String) {
    (op, format!("{op}: err UnsafePath {path}"))
}

#[test]
fn a_lock_file_symlink_is_refused_and_never_followed() {
    // X's lock file → sentinel/secret.txt; a lock-file name for the never-issued V →
    // sentinel/V (which tidy would remove as an orphaned lock if it followed it).
    let (w, o) = scenario(Plant::LockFile, Run::Everything);
    o.assert_outside_untouched();
    let lock = "store/locks/0/X";
    let want = all_well_but(&[
        refused("is_checked_out X", lock),
        refused("checkout X", lock),
        ("checkin X", String::new()),
        refused("try_checkout X", lock),
        refused("touch X", lock),
        refused("set_expiry X", lock),
        refused("cycle_id X", lock),
        ("delete X2", format!("delete X: err UnsafePath {lock}")),
        (
            "delete_expired",
            "delete_expired: ok scanned=3 deleted=0 busy=0 damaged=0".into(),
        ),
        // X cannot be locked through the symlink: counted as damaged, left in place.
        (
            "delete_idle(0)",
            "delete_idle(0): ok scanned=3 deleted=2 busy=0 damaged=1".into(),
        ),
        ("ids after gc", "ids after gc: ok [\"X\"]".into()),
        // V's lock-file name is judged (no session V) and refused: counted as failed.
        (
            "tidy",
            "tidy: ok temps=0 orphan_locks=0 busy=0 failed=1".into(),
        ),
        (
            "close",
            "close: ok temps=0 orphan_locks=0 busy=0 failed=1".into(),
        ),
    ]);
    o.assert_transcript(&want);
    // Both symlinks are still there, unchanged: refused, not "repaired".
    let x_lock = lock_path_of(&w.store, &w.x);
    assert_eq!(
        fs::read_link(&x_lock).ok(),
        Some(w.sentinel.join("secret.txt"))
    );
    let v_lock = w.shard("locks").join(w.v.as_str());
    assert_eq!(
        fs::read_link(&v_lock).ok(),
        Some(w.sentinel.join(w.v.as_str()))
    );
}

#[test]
fn temp_file_names_that_are_symlinks_are_never_followed_by_tidy() {
    // `.X.<r>.tmp` → sentinel/secret.txt (X is live and unlocked: tidy can take its lock),
    // `.V.<r>.tmp` → the sentinel's own `.V.<r>.tmp` (V has no lock file: "dead writer"),
    // `.X.<r2>.tmp` → the directory sentinel/0. Tidy must not delete or truncate a target,
    // must not delete through the link, and leaves the links (they are not files it made).
    let (w, o) = scenario(Plant::TempNames, Run::Everything);
    o.assert_outside_untouched();
    let want = all_well_but(&[
        (
            "tidy",
            "tidy: ok temps=0 orphan_locks=0 busy=0 failed=3".into(),
        ),
        (
            "close",
            "close: ok temps=0 orphan_locks=0 busy=0 failed=3".into(),
        ),
    ]);
    o.assert_transcript(&want);
    let shard = w.shard("sessions");
    let bait = format!(".{}.{BAIT_RAND}.tmp", w.v);
    for (name, target) in [
        (
            format!(".{}.{BAIT_RAND}.tmp", w.x),
            w.sentinel.join("secret.txt"),
        ),
        (bait.clone(), w.sentinel.join(&bait)),
        (format!(".{}.dirlink1.tmp", w.x), w.sentinel.join("0")),
    ] {
        assert_eq!(
            fs::read_link(shard.join(&name)).ok(),
            Some(target),
            "{name}"
        );
    }
    assert_eq!(
        fs::read(w.sentinel.join("secret.txt")).expect("secret"),
        SECRET
    );
}

#[test]
fn a_session_file_symlink_to_another_store_is_never_followed() {
    // X's session file → the other store's session Z. Reads and writes of X refuse it with
    // the path; delete removes the link itself (inside the store), never Z; Z is not even
    // opened (no inotify event on the other store).
    let (w, o) = scenario(Plant::SessionFile, Run::Everything);
    o.assert_outside_untouched();
    let file = "store/sessions/0/X";
    let want = all_well_but(&[
        refused("load X", file),
        refused("snapshot X", file),
        refused("inspect X", file),
        refused("exists X", file),
        refused("info X", file),
        refused("checkout X", file),
        ("checkin X", String::new()),
        refused("try_checkout X", file),
        refused("touch X", file),
        refused("set_expiry X", file),
        // A symlink is not listed as a session.
        ("ids: ", "ids: ok [\"C\", \"Y\"]".into()),
        ("sessions", "sessions: ok 2 errors []".into()),
        refused("cycle_id X", file),
        // The link is removed, with X's lock file; Z stays (the outside snapshot says so).
        ("delete X2", "delete X: ok true".into()),
    ]);
    o.assert_transcript(&want);
    assert_eq!(
        fs::symlink_metadata(w.store.session_path(&w.x))
            .ok()
            .map(|_| ()),
        None
    );
    let other = builder(&w.other_dir).open().expect("open the other store");
    let z = other.load::<Dict>(&w.z).expect("load z").map(who);
    assert_eq!(z.as_deref(), Some("z (other store)"));
}

#[test]
fn a_marker_symlink_is_refused_at_open_and_never_read() {
    // The marker → sentinel/marker, a valid marker text. A handle opened before works on (it
    // read the marker at open); a new opener refuses the store without reading the target.
    let (_w, o) = scenario(Plant::Marker, Run::Everything);
    o.assert_outside_untouched();
    let want = all_well_but(&[refused("reopen", "store/sessiondir.store")]);
    o.assert_transcript(&want);
}

#[test]
fn a_store_root_given_as_a_symlink_is_used_and_nothing_outside_it_is_touched() {
    // The user may name the store through a symlink (the root only, unlike a symlink inside,
    // see a_directory_replaced_by_a_symlink_before_open_is_refused). Every operation works
    // through it, everything lands in the real directory, the link itself is unchanged.
    let mut w = World::new();
    let link = w.base.join("root-link");
    symlink(&w.dir, &link).expect("root symlink");
    let before = w.outside();
    let watch = Watch::new(&w.watched());
    let (w, transcript) = within(SCENARIO_LIMIT, "root symlink", move || {
        let store = builder(&link)
            .open()
            .expect("open through the root symlink");
        assert_eq!(store.dir(), link, "the root is kept as named");
        assert!(store.session_path(&w.x).starts_with(&link));
        let t = run_everything(&mut w, &store, &link);
        (w, t)
    });
    let o = Outcome {
        plant: Plant::Marker,
        transcript,
        events: w.rel_all(watch.events()),
        changed: diff(&w, &before, &w.outside()),
    };
    o.assert_outside_untouched();
    o.assert_transcript(&ALL_WELL);
    assert!(w.dir.join("sessiondir.store").is_file());
}

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
            let temp = name.starts_with('.') && name.ends_with(".tmp");
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
            "hostile::umask_zero_child",
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
    // The marker, and a session file and a lock file for a, b (cycled), c and big.
    assert_eq!(files.len(), 1 + 4 + 4, "{files:?}");

    // A file mode that lets the group read: exactly 0640 and 0750, never more.
    let (dirs, files) = modes_below(&tmp.path().join("group"));
    for (path, mode) in &dirs {
        assert_eq!(*mode, 0o750, "{}", path.display());
    }
    for (path, mode) in &files {
        assert_eq!(*mode, 0o640, "{}", path.display());
    }
    assert_eq!((dirs.len(), files.len()), (2 + 3 + 3, 1 + 4 + 4));
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
                // The root is not re-checked by tidy (it only walks the shards).
                let report = ts.store.tidy().expect("tidy");
                let skipped = if rel.contains('/') { 1 } else { 4 };
                assert_eq!(report.failed, skipped, "{rel} {mode:o}: {report:?}");
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

// ---------------------------------------------------------------------------------------------
// Ids: cases invalid_ids.rs does not have
// ---------------------------------------------------------------------------------------------

const BAD_LENGTH: &str = "a session id is exactly 32 ASCII characters";
const BAD_ALPHABET: &str = "a session id uses only the characters a-z and 2-7";

/// `(what, input, reason)` for inputs invalid_ids.rs does not try. Every one that is 32 bytes
/// long is refused for its alphabet: the length check cannot be what saves us.
fn more_malformed_ids(valid: &str) -> Vec<(&'static str, String, &'static str)> {
    assert_eq!(valid.len(), 32);
    let head = |n: usize| valid[..n].to_string();
    let pad = |s: &str| format!("{s:a<32}");
    let letter = valid
        .find(|c: char| c.is_ascii_lowercase())
        .expect("a valid id has a letter");
    let mixed: String = valid
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i % 2 == 0 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect();
    let first_upper = format!(
        "{}{}{}",
        &valid[..letter],
        valid[letter..=letter].to_ascii_uppercase(),
        &valid[letter + 1..]
    );
    let percent_all: String = valid.bytes().map(|b| format!("%{b:02x}")).collect();
    vec![
        // Lengths around an otherwise valid id.
        ("valid + NUL (33 bytes)", format!("{valid}\0"), BAD_LENGTH),
        ("valid + CR (33 bytes)", format!("{valid}\r"), BAD_LENGTH),
        ("valid twice (64 bytes)", valid.repeat(2), BAD_LENGTH),
        (
            "percent-encoded valid id (96 bytes)",
            percent_all,
            BAD_LENGTH,
        ),
        // Percent-encoding is never decoded.
        (
            "%2F upper-case traversal",
            pad("..%2F..%2F..%2Fetc%2Fpasswd"),
            BAD_ALPHABET,
        ),
        ("%00 at the end", format!("{}%00", head(29)), BAD_ALPHABET),
        (
            "double-encoded %252e%252e%252f",
            pad("%252e%252e%252f"),
            BAD_ALPHABET,
        ),
        (
            "overlong UTF-8 %c0%ae",
            pad("%c0%ae%c0%ae%c0%af"),
            BAD_ALPHABET,
        ),
        (
            "%61 (decodes to a valid id)",
            format!("%61{}", &valid[1..30]),
            BAD_ALPHABET,
        ),
        // Backslashes and other path syntax.
        (
            "backslash traversal",
            pad("..\\..\\..\\windows\\win.ini"),
            BAD_ALPHABET,
        ),
        ("all backslashes", "\\".repeat(32), BAD_ALPHABET),
        (
            "backslash first",
            format!("\\{}", &valid[1..]),
            BAD_ALPHABET,
        ),
        ("UNC prefix", pad("\\\\server\\share\\"), BAD_ALPHABET),
        (
            "absolute path",
            format!("{:/<32}", "/etc/passwd"),
            BAD_ALPHABET,
        ),
        ("home directory", format!("~{}", &valid[1..]), BAD_ALPHABET),
        (
            "dot first (hidden file)",
            format!(".{}", &valid[1..]),
            BAD_ALPHABET,
        ),
        (
            "colon (stream / drive)",
            format!("{}:", head(31)),
            BAD_ALPHABET,
        ),
        // Whitespace that keeps the byte length at 32.
        ("trailing space", format!("{} ", head(31)), BAD_ALPHABET),
        ("trailing CR", format!("{}\r", head(31)), BAD_ALPHABET),
        ("vertical tab", format!("{}\x0b", head(31)), BAD_ALPHABET),
        ("form feed", format!("{}\x0c", head(31)), BAD_ALPHABET),
        (
            "no-break space (2 bytes)",
            format!("{}\u{a0}", head(30)),
            BAD_ALPHABET,
        ),
        (
            "ideographic space (3 bytes)",
            format!("{}\u{3000}", head(29)),
            BAD_ALPHABET,
        ),
        (
            "line separator (3 bytes)",
            format!("{}\u{2028}", head(29)),
            BAD_ALPHABET,
        ),
        (
            "byte-order mark first (3 bytes)",
            format!("\u{feff}{}", head(29)),
            BAD_ALPHABET,
        ),
        // Case: the alphabet is lower case only.
        ("alternating case", mixed, BAD_ALPHABET),
        ("first letter upper-case", first_upper, BAD_ALPHABET),
        // Homoglyphs and case-folding traps, 32 bytes each.
        (
            "Cyrillic е (2 bytes)",
            format!("{}е", head(30)),
            BAD_ALPHABET,
        ),
        ("Greek ο (2 bytes)", format!("{}ο", head(30)), BAD_ALPHABET),
        (
            "Kelvin sign K (3 bytes)",
            format!("{}\u{212a}", head(29)),
            BAD_ALPHABET,
        ),
        ("long s ſ (2 bytes)", format!("{}ſ", head(30)), BAD_ALPHABET),
        (
            "dotless ı (2 bytes)",
            format!("{}ı", head(30)),
            BAD_ALPHABET,
        ),
        (
            "superscript ² (2 bytes)",
            format!("{}²", head(30)),
            BAD_ALPHABET,
        ),
        (
            "fullwidth digit ２ (3 bytes)",
            format!("{}２", head(29)),
            BAD_ALPHABET,
        ),
        (
            "mathematical bold 𝐚 (4 bytes)",
            format!("{}𝐚", head(28)),
            BAD_ALPHABET,
        ),
        // Control characters.
        ("escape", format!("{}\x1b", head(31)), BAD_ALPHABET),
        ("bell", format!("\x07{}", &valid[1..]), BAD_ALPHABET),
    ]
}

#[test]
fn more_malformed_ids_are_refused_and_touch_nothing() {
    let ts = TestStore::new();
    let valid = ts.store.create(&Dict::new()).expect("create");
    let before = tree_snapshot(&ts.dir);
    let cases = more_malformed_ids(valid.as_str());
    assert_eq!(cases.len(), 37);
    for (what, input, reason) in &cases {
        match SessionId::parse(input) {
            Err(Error::InvalidId {
                input: got,
                reason: why,
            }) => {
                assert_eq!(why, *reason, "{what}");
                let cut: String = input.chars().take(80).collect();
                assert_eq!(got, cut, "{what}");
            }
            other => panic!("{what}: {input:?} gave {other:?}"),
        }
    }
    // Exactly 32 characters of the alphabet are accepted, whatever they are.
    for ok in [
        valid.as_str().to_string(),
        "abcdefghijklmnopqrstuvwxyz234567".into(),
        "2".repeat(32),
        "7".repeat(32),
        "z".repeat(32),
    ] {
        let id = SessionId::parse(&ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        assert_eq!(id.as_str(), ok);
    }
    assert_eq!(tree_snapshot(&ts.dir), before, "parsing touched the store");
}

#[test]
fn never_issued_ids_in_every_shard_are_not_found_and_create_nothing() {
    // invalid_ids.rs runs the main operations on four never-issued ids; this one puts one in
    // every shard (so every shard directory is looked into) and adds the operations it does
    // not run: inspect, is_checked_out, the lock statistics, listing and a reopen.
    let ts = TestStore::with(|b| b.lock_timeout(Duration::from_secs(2)));
    let store = &ts.store;
    let real = store.create(&dict("who", "real")).expect("create");
    let mut per_shard: BTreeMap<u32, SessionId> = BTreeMap::new();
    // The shard comes from the first four characters: vary the fourth.
    for c in "abcdefghijklmnopqrstuvwxyz234567".chars() {
        let id = SessionId::parse(&format!("qqq{c}{}", "q".repeat(28))).expect("valid");
        if id != real {
            per_shard.entry(store.shard_of(&id)).or_insert(id);
        }
    }
    assert_eq!(per_shard.len(), 4, "one never-issued id per shard");
    let before = tree_snapshot(&ts.dir);
    let stats = store.lock_stats();
    for id in per_shard.values() {
        let not_found = |op: &str, r: Result<(), Error>| match r {
            Err(Error::NotFound { id: got }) => assert_eq!(&got, id, "{op}"),
            other => panic!("{op} {id}: expected NotFound, got {other:?}"),
        };
        assert!(store.load::<Dict>(id).expect("load").is_none());
        assert!(store.snapshot::<Dict>(id).expect("snapshot").is_none());
        assert!(store.inspect::<Dict>(id).expect("inspect").is_none());
        assert!(!store.exists(id).expect("exists"));
        assert_eq!(store.info(id).expect("info"), None);
        assert!(!store.is_checked_out(id).expect("is_checked_out"));
        assert!(!store.delete(id).expect("delete"));
        not_found("checkout", store.checkout::<Dict>(id).map(drop));
        not_found("try_checkout", store.try_checkout::<Dict>(id).map(drop));
        not_found("touch", store.touch(id).map(drop));
        not_found("set_expiry", store.set_expiry(id, Expiry::Never).map(drop));
        not_found("cycle_id", store.cycle_id(id).map(drop));
        assert_eq!(tree_snapshot(&ts.dir), before, "operations on {id} wrote");
    }
    // No lock was taken for any of them (the answer came before any lock).
    assert_eq!(store.lock_stats(), stats);
    let ids: Vec<SessionId> = store.ids().map(|r| r.expect("listing")).collect();
    assert_eq!(ids, vec![real]);
    let reopened = Store::open(&ts.dir).expect("reopen");
    assert!(
        reopened
            .load::<Dict>(&per_shard[&0])
            .expect("load")
            .is_none()
    );
    assert_eq!(tree_snapshot(&ts.dir), before);
}
