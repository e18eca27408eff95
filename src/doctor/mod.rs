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

mod locks;
mod mounts;
mod probe_file;
mod renames;
mod scratch;
mod store_check;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::Error;
use crate::fs::netfs::{self, FileSystem};

use locks::lock_exclusion;
use mounts::{file_system_check, same_share};
use renames::rename_visibility;
use scratch::{Scratch, remove_abandoned};
use store_check::store_counter;

/// How long a file written through one mount may take to show up through the other before the
/// two are judged not to be one share, and how long a released lock may take to be free.
const SETTLE: Duration = Duration::from_secs(5);

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
    fn a_missing_directory_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let e = Doctor::new(&missing).run().unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
    }
}
