//! Probing a directory for what the store relies on: locks that exclude, renames that the next
//! reader sees, handles that do not go stale — on one mount, and between two mounts of one
//! share (two "hosts").
//!
//! A local file system passes by construction; a network or FUSE file system passes or fails
//! depending on the file system and its mount options (`docs/shared-filesystems.md` has what
//! was measured). [`Doctor::run`] works in a scratch directory of its own inside the directory
//! (`.sessiondir-doctor-<random>`), removed afterwards (and scratch directories that interrupted
//! runs left behind are removed by the next run once they are an hour old); it never touches
//! anything else there, so it may be run on a live store. It checks, in order:
//!
//! 1. **file-system**: what `statfs` says the directory is (local, or shared with other hosts).
//! 2. **same-share** (with a second mount): a file written through one mount shows up
//!    through the other. If it never does, the rest is skipped: the two paths are not one share.
//!    If both paths are on one device (a symlink, a bind mount, or NFS sharing one client
//!    cache between two mounts of an export), it warns: the checks then compare a mount with
//!    itself, not two hosts.
//! 3. **lock-exclusion**: an exclusive `flock` through one open file excludes one through a
//!    second open, within each mount and in each direction between the mounts, and closing the
//!    first releases it.
//! 4. **rename-visibility**: a file replaced by rename (the store's check-in) alternately
//!    through each mount under the lock, then read at once, under the lock, through the other:
//!    every read must return the latest version, whole (its length changes every round).
//!    Attribute and entry caches fail this, and a store there loses updates although its locks
//!    exclude. `ESTALE` is retried (as the store retries it) and counted.
//! 5. **store**: the real thing — a store opened through each mount (fenced), two threads on
//!    each checking one session out and in; the counter must equal the check-ins exactly, with
//!    no error and no [`Conflict`](crate::Error::Conflict).
//!
//! The probe's own waits are bounded (5 s for a file to show up or a lock to come free, 10 s
//! per check-out, after which that thread stops); a system call that hangs on a dead mount
//! can still block it.

use std::fs::File;
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::Store;
use crate::error::Error;
use crate::fs::atomic::{self, Target};
use crate::fs::netfs::{self, FileSystem};
use crate::id::SessionId;
use crate::lock::flock;
use crate::settings::Durability;

/// How long a file written through one mount may take to show up through the other before the
/// two are judged not to be one share, and how long a released lock may take to be free.
const SETTLE: Duration = Duration::from_secs(5);

/// How long the store check's threads wait for a session before giving up (and stopping).
const STORE_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// Scratch directories of interrupted runs older than this are removed by the next run.
const ABANDONED: Duration = Duration::from_secs(3600);

/// The prefix of the probe's scratch directories.
const SCRATCH_PREFIX: &str = ".sessiondir-doctor-";

/// A probe of one directory, and optionally of a second mount of the same share.
///
/// ```no_run
/// use sessiondir::doctor::{Doctor, Verdict};
///
/// let diagnosis = Doctor::new("/mnt/share-on-host-a/sessions")
///     .other_mount("/mnt/share-on-host-b/sessions")
///     .run()?;
/// for check in &diagnosis.checks {
///     println!("{:?} {}: {}", check.verdict, check.name, check.detail);
/// }
/// assert_eq!(diagnosis.verdict(), Verdict::Pass);
/// # Ok::<(), sessiondir::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Doctor {
    dir: PathBuf,
    other: Option<PathBuf>,
    rounds: u32,
    increments: u64,
}

impl Doctor {
    /// Probes `dir`, which must exist (an empty directory, or a store's directory).
    pub fn new(dir: impl AsRef<Path>) -> Self {
        Doctor {
            dir: dir.as_ref().to_path_buf(),
            other: None,
            rounds: 40,
            increments: 25,
        }
    }

    /// Also probes between `dir` and `other`: the same directory of the same share, mounted a
    /// second time (on this host, standing for another host, or on another host's path if it
    /// is visible here).
    pub fn other_mount(mut self, other: impl AsRef<Path>) -> Self {
        self.other = Some(other.as_ref().to_path_buf());
        self
    }

    /// Replacements in the rename-visibility check (default 40, at least 2).
    pub fn rounds(mut self, rounds: u32) -> Self {
        self.rounds = rounds.max(2);
        self
    }

    /// Check-ins per thread in the store check (default 25, at least 1).
    pub fn increments(mut self, increments: u64) -> Self {
        self.increments = increments.max(1);
        self
    }

    /// Runs the checks. `Err` only if the probe could not start (a missing directory, no
    /// permission to create its scratch directory); a check that fails is a
    /// [`Verdict::Fail`] in the diagnosis.
    pub fn run(&self) -> Result<Diagnosis, Error> {
        let file_system = netfs::file_system(&self.dir)?;
        let other_file_system = match &self.other {
            Some(o) => Some(netfs::file_system(o)?),
            None => None,
        };
        let abandoned = remove_abandoned(&self.dir);
        let scratch = Scratch::create(&self.dir, self.other.as_deref())?;
        let mut diagnosis = Diagnosis {
            dir: self.dir.clone(),
            other: self.other.clone(),
            file_system,
            other_file_system,
            checks: vec![file_system_check(file_system, other_file_system)],
        };
        let joined = match &scratch.b {
            Some(b) => {
                let check = same_share(&scratch.a, b);
                let ok = check.verdict != Verdict::Fail;
                diagnosis.checks.push(check);
                ok
            }
            None => true,
        };
        if joined {
            let mounts = scratch.mounts();
            diagnosis.checks.push(lock_exclusion(&mounts));
            diagnosis
                .checks
                .push(rename_visibility(&mounts, self.rounds));
            diagnosis
                .checks
                .push(store_counter(&mounts, self.increments));
        }
        match scratch.remove() {
            Err(e) => diagnosis.checks.push(Check::warn(
                "cleanup",
                format!("could not remove the scratch directory: {e}"),
            )),
            Ok(()) if abandoned > 0 => diagnosis.checks.push(Check::pass(
                "cleanup",
                format!(
                    "removed {abandoned} scratch directories that interrupted runs left behind"
                ),
            )),
            Ok(()) => {}
        }
        Ok(diagnosis)
    }
}

/// How a check came out, worst last (so the worst of several is their maximum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    /// As a store needs it.
    Pass,
    /// Works, but something deserves a look (a retry storm, a check that could not be made).
    Warn,
    /// A store here would lose updates or fail: do not use this directory as it is mounted.
    Fail,
}

impl Verdict {
    /// `"pass"`, `"warn"` or `"fail"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Warn => "warn",
            Verdict::Fail => "fail",
        }
    }
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Its name: `file-system`, `same-share`, `lock-exclusion`, `rename-visibility`, `store`
    /// or `cleanup`.
    pub name: &'static str,
    /// How it came out.
    pub verdict: Verdict,
    /// What was seen, with numbers, and for a failure what to change.
    pub detail: String,
}

impl Check {
    fn pass(name: &'static str, detail: String) -> Self {
        Check {
            name,
            verdict: Verdict::Pass,
            detail,
        }
    }

    fn warn(name: &'static str, detail: String) -> Self {
        Check {
            name,
            verdict: Verdict::Warn,
            detail,
        }
    }

    fn fail(name: &'static str, detail: String) -> Self {
        Check {
            name,
            verdict: Verdict::Fail,
            detail,
        }
    }
}

/// What [`Doctor::run`] found.
#[derive(Debug, Clone)]
pub struct Diagnosis {
    /// The directory probed.
    pub dir: PathBuf,
    /// The second mount, if one was given.
    pub other: Option<PathBuf>,
    /// The directory's file system.
    pub file_system: FileSystem,
    /// The second mount's file system.
    pub other_file_system: Option<FileSystem>,
    /// The checks made, in order (see the module docs).
    pub checks: Vec<Check>,
}

impl Diagnosis {
    /// The worst verdict of all checks.
    pub fn verdict(&self) -> Verdict {
        self.checks
            .iter()
            .map(|c| c.verdict)
            .max()
            .unwrap_or(Verdict::Pass)
    }
}

/// The probe's own directory inside `dir`, and the same directory seen through the other mount.
struct Scratch {
    a: PathBuf,
    b: Option<PathBuf>,
    removed: bool,
}

impl Scratch {
    fn create(dir: &Path, other: Option<&Path>) -> Result<Self, Error> {
        let name = format!("{SCRATCH_PREFIX}{}", SessionId::generate()?);
        let a = dir.join(&name);
        std::fs::create_dir(&a).map_err(|e| Error::io("create scratch directory", &a, e))?;
        Ok(Scratch {
            b: other.map(|o| o.join(&name)),
            a,
            removed: false,
        })
    }

    /// The scratch directory through each mount: `[a, b]`, or `[a, a]` with one mount (two
    /// opens of one path still have to exclude each other).
    fn mounts(&self) -> [&Path; 2] {
        [&self.a, self.b.as_deref().unwrap_or(&self.a)]
    }

    fn remove(mut self) -> Result<(), Error> {
        self.removed = true;
        netfs::retry_stale(|| {
            std::fs::remove_dir_all(&self.a)
                .map_err(|e| Error::io("remove scratch directory", &self.a, e))
        })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !self.removed {
            let _ = std::fs::remove_dir_all(&self.a);
        }
    }
}

/// Removes scratch directories of earlier runs that were interrupted (killed before their
/// cleanup) and are older than [`ABANDONED`]; returns how many. Best effort: a directory
/// that cannot be read or removed is left alone.
fn remove_abandoned(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let is_ours = name.to_str().is_some_and(|n| {
            n.strip_prefix(SCRATCH_PREFIX)
                .is_some_and(|id| SessionId::parse(id).is_ok())
        });
        let old = entry
            .metadata()
            .ok()
            .filter(std::fs::Metadata::is_dir)
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > ABANDONED);
        if is_ours && old && std::fs::remove_dir_all(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

fn file_system_check(a: FileSystem, b: Option<FileSystem>) -> Check {
    const NAME: &str = "file-system";
    let what = |fs: FileSystem| {
        if fs.shared {
            format!("{} (may be shared with other hosts)", fs.name)
        } else {
            format!("{} (local)", fs.name)
        }
    };
    match b {
        Some(b) if b.name != a.name => Check::warn(
            NAME,
            format!(
                "the two mounts are different file systems: {} and {}",
                what(a),
                what(b)
            ),
        ),
        Some(_) => Check::pass(NAME, format!("{}, through both mounts", what(a))),
        None if a.shared => Check::warn(
            NAME,
            format!(
                "{}: a store here needs allow_network_fs and runs fenced; this probe saw one \
                 mount only, so run it again with a second mount of the same share \
                 (another host's view) to check between hosts",
                what(a)
            ),
        ),
        None => Check::pass(NAME, what(a)),
    }
}

/// Writes `content` to `path` the way a check-in does: temporary file, rename.
fn replace(path: &Path, content: &[u8]) -> Result<(), Error> {
    // The temporary file's name carries an id; any fixed one will do here.
    let owner = SessionId::from_bytes([7; crate::id::ID_BYTES]);
    atomic::write(
        path,
        Target::Replace,
        &atomic::temp_prefix(&owner),
        content,
        0o600,
        Durability::None,
        || Ok(()),
    )
    .map_err(atomic::Failure::into_error)
}

/// What reading a probe file gave.
enum Seen {
    Content(Vec<u8>),
    Missing,
}

/// Reads a probe file whole, retrying `ESTALE` as the store does (counted in `stale`).
fn read_probe(path: &Path, stale: &mut u64) -> Result<Seen, Error> {
    netfs::retry_stale_counted(
        || match std::fs::read(path) {
            Ok(bytes) => Ok(Seen::Content(bytes)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(Seen::Missing),
            Err(e) => Err(Error::io("read", path, e)),
        },
        stale,
    )
}

fn same_share(a: &Path, b: &Path) -> Check {
    const NAME: &str = "same-share";
    let file = "share-marker";
    let nonce = match SessionId::generate() {
        Ok(id) => id.to_string(),
        Err(e) => return Check::fail(NAME, e.to_string()),
    };
    if let Err(e) = replace(&a.join(file), nonce.as_bytes()) {
        return Check::fail(NAME, e.to_string());
    }
    let start = Instant::now();
    let mut stale = 0;
    let waited = loop {
        if let Ok(Seen::Content(s)) = read_probe(&b.join(file), &mut stale)
            && s == nonce.as_bytes()
        {
            break start.elapsed();
        }
        if start.elapsed() > SETTLE {
            return Check::fail(
                NAME,
                format!(
                    "a file written as {} never showed up as {} within {} s: these are not two \
                     mounts of one directory (the other checks were skipped)",
                    a.join(file).display(),
                    b.join(file).display(),
                    SETTLE.as_secs()
                ),
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let device = |p: &Path| std::fs::metadata(p).map(|m| m.dev()).ok();
    if device(a).is_some() && device(a) == device(b) {
        return Check::warn(
            NAME,
            "both paths are one mount (the same device): the checks below compare it with \
             itself, not with another host's view (a symlink or bind mount; on NFS, mount the \
             second with nosharecache to get a client cache of its own)"
                .into(),
        );
    }
    if waited < Duration::from_millis(100) {
        Check::pass(
            NAME,
            "two mounts (different devices); a file written through the first was at once \
             visible through the second"
                .into(),
        )
    } else {
        Check::warn(
            NAME,
            format!(
                "a file written through the first mount showed up through the second only \
                 after {} ms: the second mount caches directory entries",
                waited.as_millis()
            ),
        )
    }
}

/// Opens (creating if needed) the probe's lock file through `dir`.
fn open_lock(dir: &Path) -> Result<File, Error> {
    let path = dir.join("lock");
    if let Some(file) = flock::create(&path, 0o600)? {
        return Ok(file);
    }
    flock::open(&path)?.ok_or_else(|| {
        Error::io(
            "open lock file",
            &path,
            std::io::Error::from(ErrorKind::NotFound),
        )
    })
}

/// Locks `file` (nobody else should hold it), polling for up to [`SETTLE`].
fn lock_within(file: &File, path: &Path) -> Result<Option<Duration>, Error> {
    let start = Instant::now();
    while start.elapsed() < SETTLE {
        if flock::try_lock(file, path)? {
            return Ok(Some(start.elapsed()));
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    Ok(None)
}

/// Opens the probe's lock file through `dir` and locks it (nobody else should hold it).
fn take_lock(dir: &Path) -> Result<File, String> {
    let path = dir.join("lock");
    let file = open_lock(dir).map_err(|e| e.to_string())?;
    match lock_within(&file, &path) {
        Ok(Some(_)) => Ok(file),
        Ok(None) => Err(format!(
            "the probe's lock {} stayed refused for {} s although nobody held it",
            path.display(),
            SETTLE.as_secs()
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// Runs `f` holding the probe's lock through `dir`.
fn under_lock<R>(dir: &Path, f: impl FnOnce() -> Result<R, Error>) -> Result<R, String> {
    let _lock = take_lock(dir)?;
    f().map_err(|e| e.to_string())
}

/// A lock held through `holder` must refuse a second open through `other`, and closing it
/// must free it there: returns how long that took, or what went wrong.
fn exclusion_between(holder: (&Path, &str), other: (&Path, &str)) -> Result<Duration, String> {
    let held = take_lock(holder.0)?;
    let path = other.0.join("lock");
    let second = open_lock(other.0).map_err(|e| e.to_string())?;
    if flock::try_lock(&second, &path).map_err(|e| e.to_string())? {
        return Err(format!(
            "a lock held through the {} did not exclude a second open through the {}: two \
             hosts would both hold a session and lose updates (the mount does not forward \
             locks: e.g. bindfs without --enable-lock-forwarding, NFS with nolock or \
             local_lock)",
            holder.1, other.1
        ));
    }
    drop(held);
    lock_within(&second, &path)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| {
            format!(
                "a lock released through the {} was still refused through the {} after {} s",
                holder.1,
                other.1,
                SETTLE.as_secs()
            )
        })
}

fn lock_exclusion(mounts: &[&Path; 2]) -> Check {
    const NAME: &str = "lock-exclusion";
    let pairs: &[(usize, usize)] = if mounts[0] == mounts[1] {
        &[(0, 1)]
    } else {
        &[(0, 0), (1, 1), (0, 1), (1, 0)]
    };
    let label = ["first mount", "second mount"];
    let mut slowest = Duration::ZERO;
    for &(x, y) in pairs {
        match exclusion_between((mounts[x], label[x]), (mounts[y], label[y])) {
            Ok(t) => slowest = slowest.max(t),
            Err(problem) => return Check::fail(NAME, problem),
        }
    }
    let scope = if pairs.len() == 1 {
        "between two opens of one file"
    } else {
        "within each mount and between the mounts in both directions"
    };
    Check::pass(
        NAME,
        format!(
            "flock excluded {scope}; a released lock was free again within {} µs",
            slowest.as_micros()
        ),
    )
}

/// The probe file's content for `round`: the round number, padded like a small session to a
/// length that changes every round (a cache serving a stale size shows).
fn round_content(round: u32) -> Vec<u8> {
    let mut content = format!("{round}\n").into_bytes();
    content.resize(1000 + (round % 61) as usize, b'.');
    content
}

fn round_of(content: &[u8]) -> Option<u32> {
    let line = content.split(|&b| b == b'\n').next()?;
    std::str::from_utf8(line).ok()?.parse().ok()
}

/// What the rename-visibility reads saw.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Tally {
    reads: u64,
    /// An older round's version.
    old: u64,
    /// No file at all.
    missing: u64,
    /// The right round's number, but not its exact bytes (a stale size, a torn read).
    mismatched: u64,
    /// `ESTALE` failures that a retry got past.
    stale_handles: u64,
}

impl Tally {
    fn record(&mut self, seen: Seen, want: u32) {
        self.reads += 1;
        match seen {
            Seen::Missing => self.missing += 1,
            Seen::Content(c) if c == round_content(want) => {}
            Seen::Content(c) if round_of(&c).is_some_and(|r| r < want) => self.old += 1,
            Seen::Content(_) => self.mismatched += 1,
        }
    }

    fn check(&self, rounds: u32, between: &str) -> Check {
        const NAME: &str = "rename-visibility";
        let Tally {
            reads,
            old,
            missing,
            mismatched,
            stale_handles,
        } = *self;
        let done = format!("{rounds} replacements by rename {between}");
        if old + missing + mismatched > 0 {
            return Check::fail(
                NAME,
                format!(
                    "{done}: of {reads} reads under the lock, {old} returned an older version, \
                     {missing} found no file and {mismatched} other bytes than were written, \
                     although the version was complete and its writer had released the lock: \
                     the mount caches attributes or directory entries, so a check-out would \
                     read an old session under its lock and lose updates (JuiceFS: mount with \
                     --attr-cache=0 --entry-cache=0 --dir-entry-cache=0 \
                     --negative-entry-cache=0; GlusterFS: see docs/shared-filesystems.md)"
                ),
            );
        }
        if stale_handles > 0 {
            return Check::warn(
                NAME,
                format!(
                    "{done}: all {reads} reads saw the latest version, but {stale_handles} \
                     failed first with ESTALE and were retried"
                ),
            );
        }
        Check::pass(
            NAME,
            format!("{done}: all {reads} reads saw the latest version"),
        )
    }
}

fn rename_visibility(mounts: &[&Path; 2], rounds: u32) -> Check {
    const NAME: &str = "rename-visibility";
    let file = "visible";
    let mut tally = Tally::default();
    let outcome = (|| -> Result<(), String> {
        replace(&mounts[0].join(file), &round_content(0)).map_err(|e| e.to_string())?;
        for round in 1..=rounds {
            let (w, r) = ((round % 2) as usize, ((round + 1) % 2) as usize);
            // The writer: lock, read the current version (the one before), replace, unlock.
            let (before, stale) = under_lock(mounts[w], || {
                let mut stale = 0;
                let before = read_probe(&mounts[w].join(file), &mut stale)?;
                replace(&mounts[w].join(file), &round_content(round))?;
                Ok((before, stale))
            })?;
            tally.stale_handles += stale;
            tally.record(before, round - 1);
            // The reader, through the other mount, right after, under the lock as a
            // check-out reads.
            let (after, stale) = under_lock(mounts[r], || {
                let mut stale = 0;
                let after = read_probe(&mounts[r].join(file), &mut stale)?;
                Ok((after, stale))
            })?;
            tally.stale_handles += stale;
            tally.record(after, round);
        }
        Ok(())
    })();
    if let Err(e) = outcome {
        return Check::fail(NAME, e);
    }
    let between = if mounts[0] == mounts[1] {
        "through one mount"
    } else {
        "alternately through each mount, each read at once through the other"
    };
    tally.check(rounds, between)
}

/// What the store check's threads did, and what the counter said afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StoreOutcome {
    attempted: u64,
    checked_in: u64,
    conflicts: u64,
    first_error: Option<String>,
    /// The counter read through each mount.
    counted: Result<(u64, u64), String>,
    /// Waits ended by a release event, by polling.
    woken: (u64, u64),
}

impl StoreOutcome {
    fn check(&self, what: &str) -> Check {
        const NAME: &str = "store";
        let counted = match &self.counted {
            Ok((x, y)) if x == y => *x,
            Ok((x, y)) => {
                return Check::fail(
                    NAME,
                    format!("{what}: the first mount reads {x}, the second {y}"),
                );
            }
            Err(e) => return Check::fail(NAME, format!("{what}: {e}")),
        };
        let failed = self.attempted - self.checked_in.min(self.attempted);
        let mut problems = Vec::new();
        if counted != self.checked_in {
            problems.push(format!(
                "{} check-ins succeeded but the counter says {counted}: {} updates lost",
                self.checked_in,
                self.checked_in.abs_diff(counted)
            ));
        }
        if failed > 0 {
            problems.push(format!(
                "{failed} of {} failed, {} of them refused as conflicts (fencing caught a \
                 second holder or an old version); first: {}",
                self.attempted,
                self.conflicts,
                self.first_error.as_deref().unwrap_or("?")
            ));
        }
        if !problems.is_empty() {
            return Check::fail(NAME, format!("{what}: {}", problems.join("; ")));
        }
        Check::pass(
            NAME,
            format!(
                "{what}: the counter is exactly {counted}; waits ended by a release event {} \
                 times, by polling {} times",
                self.woken.0, self.woken.1
            ),
        )
    }
}

fn store_counter(mounts: &[&Path; 2], increments: u64) -> Check {
    const NAME: &str = "store";
    const THREADS: usize = 2;
    let open = |root: &Path, create: bool| {
        Store::builder(root)
            .allow_network_fs(true)
            .create_if_missing(create)
            .lock_timeout(STORE_LOCK_TIMEOUT)
            .open()
    };
    let setup = (|| -> Result<(Store, Store, SessionId), Error> {
        let a = open(&mounts[0].join("store"), true)?;
        let id = a.create(&0u64)?;
        let b = open(&mounts[1].join("store"), false)?;
        Ok((a, b, id))
    })();
    let (a, b, id) = match setup {
        Ok(x) => x,
        Err(e) => return Check::fail(NAME, e.to_string()),
    };
    let results: Vec<(u64, u64, Option<String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = [&a, &b]
            .into_iter()
            .flat_map(|store| std::iter::repeat_n(store, THREADS))
            .map(|store| {
                scope.spawn(|| {
                    let (mut ok, mut conflicts, mut first_error) = (0u64, 0u64, None);
                    for _ in 0..increments {
                        let outcome = store.checkout::<u64>(&id).and_then(|mut s| {
                            *s.data_mut() += 1;
                            s.check_in().map_err(|e| e.into_parts().0)
                        });
                        match outcome {
                            Ok(()) => ok += 1,
                            Err(e) => {
                                let timed_out = matches!(e, Error::LockTimeout { .. });
                                if matches!(e, Error::Conflict { .. } | Error::LockLost { .. }) {
                                    conflicts += 1;
                                }
                                first_error.get_or_insert_with(|| e.to_string());
                                // A lock that never comes free would cost every attempt the
                                // whole timeout: one is enough to know.
                                if timed_out {
                                    break;
                                }
                            }
                        }
                    }
                    (ok, conflicts, first_error)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or((0, 0, Some("a probe thread panicked".into())))
            })
            .collect()
    });
    let read = |store: &Store| match store.load::<u64>(&id) {
        Ok(Some(n)) => Ok(n),
        Ok(None) => Err("the session vanished".to_string()),
        Err(e) => Err(e.to_string()),
    };
    let counted = read(&a).and_then(|x| read(&b).map(|y| (x, y)));
    let woken = [a.lock_stats(), b.lock_stats()]
        .iter()
        .fold((0, 0), |(e, p), s| (e + s.event, p + s.poll));
    let outcome = StoreOutcome {
        attempted: increments.saturating_mul((2 * THREADS) as u64),
        checked_in: results.iter().map(|r| r.0).sum(),
        conflicts: results.iter().map(|r| r.1).sum(),
        first_error: results.iter().find_map(|r| r.2.clone()),
        counted,
        woken,
    };
    let fenced = if a.fencing() { "fenced" } else { "not fenced" };
    let _ = a.delete(&id);
    let stores = if mounts[0] == mounts[1] {
        "2 stores"
    } else {
        "one store through each mount"
    };
    outcome.check(&format!(
        "{stores}, {THREADS} threads each, {increments} check-ins per thread of one session \
         ({fenced})"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_directory_passes_every_check() {
        let dir = tempfile::tempdir().unwrap();
        let d = Doctor::new(dir.path())
            .rounds(6)
            .increments(5)
            .run()
            .unwrap();
        assert_eq!(d.verdict(), Verdict::Pass, "{:#?}", d.checks);
        let names: Vec<_> = d.checks.iter().map(|c| c.name).collect();
        assert_eq!(
            names,
            [
                "file-system",
                "lock-exclusion",
                "rename-visibility",
                "store"
            ]
        );
        assert!(
            std::fs::read_dir(dir.path()).unwrap().next().is_none(),
            "the scratch directory is removed"
        );
    }

    #[test]
    fn two_paths_that_are_not_one_share_fail_same_share_and_skip_the_rest() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        // A second path to the same directory would pass: this one is another directory.
        std::fs::create_dir_all(b.path()).unwrap();
        let d = Doctor::new(a.path()).other_mount(b.path()).run();
        // The scratch directory does not exist under b at all: same-share cannot see it.
        let d = d.unwrap();
        assert_eq!(d.verdict(), Verdict::Fail);
        let names: Vec<_> = d.checks.iter().map(|c| c.name).collect();
        assert_eq!(names, ["file-system", "same-share"]);
    }

    #[test]
    fn a_symlinked_second_path_is_one_mount_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let d = Doctor::new(&real)
            .other_mount(&link)
            .rounds(6)
            .increments(5)
            .run()
            .unwrap();
        let verdicts: Vec<_> = d.checks.iter().map(|c| (c.name, c.verdict)).collect();
        assert_eq!(
            verdicts,
            [
                ("file-system", Verdict::Pass),
                ("same-share", Verdict::Warn),
                ("lock-exclusion", Verdict::Pass),
                ("rename-visibility", Verdict::Pass),
                ("store", Verdict::Pass),
            ],
            "{:#?}",
            d.checks
        );
        assert!(
            d.checks[1].detail.contains("one mount"),
            "{}",
            d.checks[1].detail
        );
    }

    #[test]
    fn stale_missing_and_resized_reads_fail_rename_visibility() {
        let mut t = Tally::default();
        t.record(Seen::Content(round_content(3)), 3);
        assert_eq!(t.check(3, "x").verdict, Verdict::Pass);
        let mut old = t.clone();
        old.record(Seen::Content(round_content(2)), 3);
        let mut missing = t.clone();
        missing.record(Seen::Missing, 3);
        // The right round number at the wrong length: a cached size.
        let mut resized = t.clone();
        let mut short = round_content(3);
        short.truncate(900);
        resized.record(Seen::Content(short), 3);
        for (bad, field) in [(old, "old"), (missing, "missing"), (resized, "mismatched")] {
            let c = bad.check(3, "x");
            assert_eq!(c.verdict, Verdict::Fail, "{field}: {c:?}");
            assert_eq!(bad.reads, 2);
        }
        let retried = Tally {
            stale_handles: 4,
            ..t
        };
        assert_eq!(retried.check(3, "x").verdict, Verdict::Warn);
    }

    #[test]
    fn the_store_check_fails_on_any_loss_error_or_disagreement() {
        let fine = StoreOutcome {
            attempted: 100,
            checked_in: 100,
            conflicts: 0,
            first_error: None,
            counted: Ok((100, 100)),
            woken: (90, 0),
        };
        assert_eq!(fine.check("w").verdict, Verdict::Pass);
        let lost = StoreOutcome {
            counted: Ok((50, 50)),
            ..fine.clone()
        };
        assert!(lost.check("w").detail.contains("50 updates lost"));
        let refused = StoreOutcome {
            checked_in: 60,
            conflicts: 40,
            first_error: Some("conflict".into()),
            counted: Ok((60, 60)),
            ..fine.clone()
        };
        let c = refused.check("w");
        assert!(
            c.detail.contains("40 of 100 failed, 40 of them refused"),
            "{c:?}"
        );
        let disagree = StoreOutcome {
            counted: Ok((100, 99)),
            ..fine.clone()
        };
        let unreadable = StoreOutcome {
            counted: Err("gone".into()),
            ..fine.clone()
        };
        for bad in [lost, refused, disagree, unreadable] {
            assert_eq!(bad.check("w").verdict, Verdict::Fail, "{bad:?}");
        }
    }

    #[test]
    fn scratch_directories_of_interrupted_runs_are_removed_once_old() {
        let dir = tempfile::tempdir().unwrap();
        let id = SessionId::generate().unwrap();
        let old = dir.path().join(format!("{SCRATCH_PREFIX}{id}"));
        std::fs::create_dir(&old).unwrap();
        std::fs::write(old.join("visible"), b"x").unwrap();
        let young = dir.path().join(format!(
            "{SCRATCH_PREFIX}{}",
            SessionId::generate().unwrap()
        ));
        std::fs::create_dir(&young).unwrap();
        let not_ours = dir.path().join(format!("{SCRATCH_PREFIX}not-an-id"));
        std::fs::create_dir(&not_ours).unwrap();
        let two_hours_ago = std::time::SystemTime::now() - Duration::from_secs(7200);
        for p in [&old, &not_ours] {
            File::open(p).unwrap().set_modified(two_hours_ago).unwrap();
        }
        let d = Doctor::new(dir.path())
            .rounds(2)
            .increments(1)
            .run()
            .unwrap();
        assert!(!old.exists(), "an hour-old scratch directory is removed");
        assert!(young.exists(), "a recent one may belong to a running probe");
        assert!(not_ours.exists(), "a name that is not ours stays");
        let cleanup = d
            .checks
            .iter()
            .find(|c| c.name == "cleanup")
            .expect("reported");
        assert!(cleanup.detail.contains("removed 1"), "{cleanup:?}");
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let e = Doctor::new(&missing).run().unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
    }

    #[test]
    fn round_contents_parse_back() {
        let c = round_content(17);
        assert_eq!(c.len(), 1017);
        assert_eq!(round_of(&c), Some(17));
        assert_eq!(round_of(b"x\n"), None);
        assert_ne!(round_content(1).len(), round_content(2).len());
    }
}
