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

// Planted symlinks, operation by operation: nothing outside the store read or changed.
mod symlinks;
// Owner-only modes under umask 0; shared or foreign-owned directories refused.
mod permissions;
// Hostile ids that invalid_ids does not cover.
mod ids;

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

/// A gc report as a transcript entry; refused paths (if any) relative to the world, each
/// checked to name its path.
fn gc_line(w: &World, r: GcReport) -> String {
    format!(
        "ok scanned={} deleted={} busy={} damaged={}{}",
        r.scanned,
        r.deleted,
        r.skipped_busy,
        r.damaged,
        refused_part(w, &r.refused)
    )
}

fn tidy_line(w: &World, r: TidyReport) -> String {
    format!(
        "ok temps={} orphan_locks={} busy={} failed={}{}",
        r.temp_files_removed,
        r.orphan_locks_removed,
        r.skipped_busy,
        r.failed,
        refused_part(w, &r.refused)
    )
}

fn refused_part(w: &World, refused: &[sessiondir::Refused]) -> String {
    if refused.is_empty() {
        return String::new();
    }
    // Sorted: tidy meets them in directory order, which differs between file systems.
    let mut paths: Vec<String> = refused
        .iter()
        .map(|r| {
            assert!(
                r.to_string().contains(&r.path.display().to_string()),
                "{r:?}"
            );
            w.rel(&r.path)
        })
        .collect();
    paths.sort();
    format!(" refused={}", paths.join(","))
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
    t.add(w, "delete_expired", store.delete_expired(), |r| {
        gc_line(w, r)
    });
    after_the_last_write();
    t.add(
        w,
        "delete_idle(0)",
        store.delete_idle(Duration::ZERO),
        |r| gc_line(w, r),
    );
    let r: Result<Vec<SessionId>, Error> = store.ids().collect();
    t.add(w, "ids after gc", r, |ids| format!("ok {:?}", w.syms(&ids)));
    t.add(w, "tidy", store.tidy(), |r| tidy_line(w, r));
    let stats = store.lock_stats();
    t.0.push(format!("lock_stats: ok timeouts={}", stats.timeouts));
    t.add(w, "close", store.clone().close(), |r| tidy_line(w, r));
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
