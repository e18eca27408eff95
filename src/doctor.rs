//! Probing a directory for what the store relies on: locks that exclude, renames that the next
//! reader sees, handles that do not go stale — on one mount, and between two mounts of one
//! share (two "hosts").
//!
//! A local file system passes by construction; a network or FUSE file system passes or fails
//! depending on the file system and its mount options (`docs/shared-filesystems.md` has what
//! was measured). [`Doctor::run`] works in a scratch directory of its own inside the directory
//! (`.sessiondir-doctor-<random>`), removed afterwards, and never touches anything else there,
//! so it may be run on a live store. It checks, in order:
//!
//! 1. **file-system**: what `statfs` says the directory is (local, or shared with other hosts).
//! 2. **same-share** (with a second mount): a file written through one mount shows up
//!    through the other. If it never does, the rest is skipped: the two paths are not one share.
//! 3. **lock-exclusion**: an exclusive `flock` through one open file excludes one through a
//!    second open, in each direction between the mounts, and closing the first releases it.
//! 4. **rename-visibility**: a file replaced by rename (the store's check-in) alternately
//!    through each mount, under the lock, then read at once through the other: every read must
//!    return the latest version. Attribute and entry caches fail this, and a store there loses
//!    updates although its locks exclude. `ESTALE` is retried and counted.
//! 5. **store**: the real thing — a store opened through each mount (fenced), two threads on
//!    each checking one session out and in; the counter must equal the check-ins exactly, with
//!    no error and no [`Conflict`](crate::Error::Conflict).
//!
//! Every wait is bounded; a check that cannot complete fails with the reason.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::atomic::{self, Target};
use crate::config::Durability;
use crate::error::Error;
use crate::id::SessionId;
use crate::lock;
use crate::netfs::{self, FileSystem};
use crate::store::Store;

/// How long a file written through one mount may take to show up through the other before the
/// two are judged not to be one share, and how long a released lock may take to be free.
const SETTLE: Duration = Duration::from_secs(5);

/// How long the store check's threads wait for a session before giving up.
const STORE_LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// How many times a read that failed with `ESTALE` is tried in all.
const STALE_ATTEMPTS: u32 = 4;

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
        if let Err(e) = scratch.remove() {
            diagnosis.checks.push(Check::warn(
                "cleanup",
                format!("could not remove the scratch directory: {e}"),
            ));
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
        let name = format!(".sessiondir-doctor-{}", SessionId::generate()?);
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
        &owner,
        content,
        0o600,
        Durability::None,
        || Ok(()),
    )
    .map_err(atomic::Failure::into_error)
}

/// What reading a probe file gave.
enum Seen {
    Content(String),
    Missing,
}

/// Reads a probe file whole, retrying `ESTALE` (counted in `stale`).
fn read_probe(path: &Path, stale: &mut u64) -> Result<Seen, Error> {
    let mut attempt = 1;
    loop {
        let result = File::open(path).and_then(|mut f| {
            let mut s = String::new();
            f.read_to_string(&mut s).map(|_| s)
        });
        match result {
            Ok(s) => return Ok(Seen::Content(s)),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Seen::Missing),
            Err(e) if e.raw_os_error() == Some(libc::ESTALE) && attempt < STALE_ATTEMPTS => {
                *stale += 1;
                attempt += 1;
            }
            Err(e) => return Err(Error::io("read", path, e)),
        }
    }
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
    loop {
        if let Ok(Seen::Content(s)) = read_probe(&b.join(file), &mut stale)
            && s == nonce
        {
            let waited = start.elapsed();
            return if waited < Duration::from_millis(100) {
                Check::pass(
                    NAME,
                    "a file written through the first mount was at once visible through the \
                     second"
                        .into(),
                )
            } else {
                Check::warn(
                    NAME,
                    format!(
                        "a file written through the first mount showed up through the second \
                         only after {} ms: the second mount caches directory entries",
                        waited.as_millis()
                    ),
                )
            };
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
    }
}

/// Opens (creating if needed) the probe's lock file through `dir`.
fn open_lock(dir: &Path) -> Result<File, Error> {
    let path = dir.join("lock");
    if let Some(file) = lock::create(&path, 0o600)? {
        return Ok(file);
    }
    lock::open(&path)?.ok_or_else(|| {
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
        if lock::try_lock(file, path)? {
            return Ok(Some(start.elapsed()));
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    Ok(None)
}

fn lock_exclusion(mounts: &[&Path; 2]) -> Check {
    const NAME: &str = "lock-exclusion";
    let pairs: &[(usize, usize)] = if mounts[0] == mounts[1] {
        &[(0, 1)]
    } else {
        &[(0, 0), (0, 1), (1, 0)]
    };
    let label = ["first mount", "second mount"];
    let mut slowest = Duration::ZERO;
    for &(x, y) in pairs {
        let outcome = (|| -> Result<Option<String>, Error> {
            let holder = open_lock(mounts[x])?;
            let other = open_lock(mounts[y])?;
            let path = mounts[x].join("lock");
            if lock_within(&holder, &path)?.is_none() {
                return Ok(Some(format!(
                    "an unheld lock through the {} stayed refused for {} s",
                    label[x],
                    SETTLE.as_secs()
                )));
            }
            if lock::try_lock(&other, &mounts[y].join("lock"))? {
                return Ok(Some(format!(
                    "a lock held through the {} did not exclude a second open through the {}: \
                     two hosts would both hold a session and lose updates (the mount does not \
                     forward locks: e.g. bindfs without --enable-lock-forwarding, NFS with \
                     nolock or local_lock)",
                    label[x], label[y]
                )));
            }
            drop(holder);
            match lock_within(&other, &mounts[y].join("lock"))? {
                Some(t) => {
                    slowest = slowest.max(t);
                    Ok(None)
                }
                None => Ok(Some(format!(
                    "a lock released through the {} was still refused through the {} after {} s",
                    label[x],
                    label[y],
                    SETTLE.as_secs()
                ))),
            }
        })();
        match outcome {
            Ok(None) => {}
            Ok(Some(problem)) => return Check::fail(NAME, problem),
            Err(e) => return Check::fail(NAME, e.to_string()),
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

/// The probe file's content for `round`: the round number, padded like a small session.
fn round_content(round: u32) -> Vec<u8> {
    let mut content = format!("{round}\n").into_bytes();
    content.resize(1024, b'.');
    content
}

fn round_of(content: &str) -> Option<u32> {
    content.split('\n').next()?.parse().ok()
}

fn rename_visibility(mounts: &[&Path; 2], rounds: u32) -> Check {
    const NAME: &str = "rename-visibility";
    let file = "visible";
    let (mut old, mut missing, mut stale_handles, mut reads) = (0u64, 0u64, 0u64, 0u64);
    let mut tally = |content: Result<Seen, Error>, want: u32| -> Result<(), Error> {
        reads += 1;
        match content? {
            Seen::Missing => missing += 1,
            Seen::Content(s) if round_of(&s) == Some(want) => {}
            Seen::Content(s) if round_of(&s).is_some_and(|r| r < want) => old += 1,
            Seen::Content(s) => {
                return Err(Error::io(
                    "read",
                    Path::new(file),
                    std::io::Error::other(format!(
                        "round {want}: unexpected content {:?}",
                        s.lines().next().unwrap_or("")
                    )),
                ));
            }
        }
        Ok(())
    };
    let outcome = (|| -> Result<(), Error> {
        replace(&mounts[0].join(file), &round_content(0))?;
        for round in 1..=rounds {
            let (w, r) = ((round % 2) as usize, ((round + 1) % 2) as usize);
            // The writer: lock, read the current version (the one before), replace, unlock.
            let lock = open_lock(mounts[w])?;
            if lock_within(&lock, &mounts[w].join("lock"))?.is_none() {
                return Err(Error::io(
                    "lock",
                    &mounts[w].join("lock"),
                    std::io::Error::other("the probe's own lock stayed refused"),
                ));
            }
            let mut stale = 0;
            let before = read_probe(&mounts[w].join(file), &mut stale);
            stale_handles += stale;
            tally(before, round - 1)?;
            replace(&mounts[w].join(file), &round_content(round))?;
            drop(lock);
            // The reader, through the other mount, right after.
            let mut stale = 0;
            let after = read_probe(&mounts[r].join(file), &mut stale);
            stale_handles += stale;
            tally(after, round)?;
        }
        Ok(())
    })();
    if let Err(e) = outcome {
        return Check::fail(NAME, e.to_string());
    }
    let between = if mounts[0] == mounts[1] {
        "through one mount"
    } else {
        "alternately through each mount, each read at once through the other"
    };
    if old + missing > 0 {
        return Check::fail(
            NAME,
            format!(
                "{rounds} replacements by rename {between}: {old} of {reads} reads returned an \
                 older version and {missing} found no file, although the version was complete \
                 and the lock released: the mount caches attributes or directory entries, so a \
                 check-out would read an old session under its lock and lose updates (JuiceFS: \
                 mount with --attr-cache=0 --entry-cache=0 --dir-entry-cache=0 \
                 --negative-entry-cache=0; GlusterFS: see docs/shared-filesystems.md)"
            ),
        );
    }
    if stale_handles > 0 {
        return Check::warn(
            NAME,
            format!(
                "{rounds} replacements by rename {between}: all {reads} reads saw the latest \
                 version, but {stale_handles} failed first with ESTALE and were retried"
            ),
        );
    }
    Check::pass(
        NAME,
        format!(
            "{rounds} replacements by rename {between}: all {reads} reads saw the latest version"
        ),
    )
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
                                if matches!(e, Error::Conflict { .. } | Error::LockLost { .. }) {
                                    conflicts += 1;
                                }
                                first_error.get_or_insert_with(|| e.to_string());
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
    let attempted = increments * (2 * THREADS) as u64;
    let checked_in: u64 = results.iter().map(|r| r.0).sum();
    let conflicts: u64 = results.iter().map(|r| r.1).sum();
    let failed = attempted - checked_in;
    let first_error = results.iter().find_map(|r| r.2.clone());
    let seen_a = a.load::<u64>(&id);
    let seen_b = b.load::<u64>(&id);
    let stats = [a.lock_stats(), b.lock_stats()];
    let (event, poll) = stats
        .iter()
        .fold((0, 0), |(e, p), s| (e + s.event, p + s.poll));
    let fenced = if a.fencing() { "fenced" } else { "not fenced" };
    let _ = a.delete(&id);
    let what = format!(
        "{} stores x {THREADS} threads x {increments} check-ins of one session ({fenced})",
        if mounts[0] == mounts[1] {
            "2"
        } else {
            "one store through each mount, 2"
        }
    );
    let counted = match (&seen_a, &seen_b) {
        (Ok(Some(x)), Ok(Some(y))) if x == y => *x,
        (Ok(Some(x)), Ok(Some(y))) => {
            return Check::fail(
                NAME,
                format!("{what}: the first mount reads {x}, the second {y}"),
            );
        }
        (Err(e), _) | (_, Err(e)) => return Check::fail(NAME, format!("{what}: {e}")),
        _ => return Check::fail(NAME, format!("{what}: the session vanished")),
    };
    if counted != checked_in || failed > 0 {
        let mut problems = Vec::new();
        if counted != checked_in {
            problems.push(format!(
                "{checked_in} check-ins succeeded but the counter says {counted}: {} updates lost",
                checked_in.abs_diff(counted)
            ));
        }
        if failed > 0 {
            problems.push(format!(
                "{failed} of {attempted} failed, {conflicts} of them refused as conflicts \
                 (fencing caught a second holder or an old version); first: {}",
                first_error.as_deref().unwrap_or("?")
            ));
        }
        return Check::fail(NAME, format!("{what}: {}", problems.join("; ")));
    }
    Check::pass(
        NAME,
        format!(
            "{what}: the counter is exactly {counted}; waits ended by a release event {event} \
             times, by polling {poll} times"
        ),
    )
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
    fn a_symlinked_second_path_is_one_share() {
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
        assert_eq!(d.verdict(), Verdict::Pass, "{:#?}", d.checks);
        assert_eq!(d.checks.len(), 5);
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
        assert_eq!(c.len(), 1024);
        assert_eq!(round_of(std::str::from_utf8(&c).unwrap()), Some(17));
        assert_eq!(round_of("x\n"), None);
    }
}
