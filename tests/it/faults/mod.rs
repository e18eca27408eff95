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
// A full disk (ENOSPC, no inodes) on a real tmpfs, and RLIMIT_FSIZE in a child process.
mod space;
// The session file deleted, truncated or replaced under a holder.
mod session_file;
// The lock file removed or replaced under a holder.
mod lock_file;

/// Sizes of the two versions of the faulted session and of its neighbour.
const OLD_LEN: usize = 16 * 1024;
const NEW_LEN: usize = 64 * 1024;
const NEIGHBOUR_LEN: usize = 8 * 1024;

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

/// Asserts that `e`'s message names `path`, once.
#[track_caller]
fn names(what: &str, e: &impl std::fmt::Display, path: &Path) {
    let msg = e.to_string();
    let shown = path.display().to_string();
    assert!(
        msg.contains(&shown),
        "{what}: the message does not name {shown}: {msg}"
    );
    assert_eq!(
        msg.matches(&shown).count(),
        1,
        "{what}: the message names {shown} more than once: {msg}"
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
