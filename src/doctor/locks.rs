//! The lock-exclusion check, and the probe's lock that the rename-visibility check reads under.

use std::fs::File;
use std::io::ErrorKind;
use std::path::Path;
use std::time::{Duration, Instant};

use super::{Check, SETTLE};
use crate::error::Error;
use crate::fs::beneath::StorePath;
use crate::lock::flock;

/// Opens (creating if needed) the probe's lock file through `dir`.
fn open_lock(dir: &Path) -> Result<File, Error> {
    let path = StorePath::in_own_dir(&dir.join("lock")).map_err(|e| Error::io("open", dir, e))?;
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
pub(super) fn under_lock<R>(dir: &Path, f: impl FnOnce() -> Result<R, Error>) -> Result<R, String> {
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

pub(super) fn lock_exclusion(mounts: &[&Path; 2]) -> Check {
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
