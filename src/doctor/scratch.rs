//! The probe's scratch directory, and the removal of those that interrupted runs left behind.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::Error;
use crate::fs::netfs;
use crate::id::SessionId;

/// Scratch directories of interrupted runs older than this are removed by the next run.
pub(super) const ABANDONED: Duration = Duration::from_secs(3600);

/// The prefix of the probe's scratch directories.
pub(super) const SCRATCH_PREFIX: &str = ".sessiondir-doctor-";

/// The probe's own directory inside `dir`, and the same directory seen through the other mount.
pub(super) struct Scratch {
    pub(super) a: PathBuf,
    pub(super) b: Option<PathBuf>,
    removed: bool,
}

impl Scratch {
    pub(super) fn create(dir: &Path, other: Option<&Path>) -> Result<Self, Error> {
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
    pub(super) fn mounts(&self) -> [&Path; 2] {
        [&self.a, self.b.as_deref().unwrap_or(&self.a)]
    }

    pub(super) fn remove(mut self) -> Result<(), Error> {
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
pub(super) fn remove_abandoned(dir: &Path) -> usize {
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

#[cfg(test)]
mod tests {
    use std::fs::File;

    use super::*;
    use crate::doctor::Doctor;

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
}
