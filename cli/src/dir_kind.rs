//! What a `--dir` argument is, when it is not what a command needs: the message a newcomer
//! reads instead of one sentence for every case.
//!
//! The library says only that a directory holds no store (`sessiondir.store` is missing) or that
//! a system call failed on it; which of the usual mistakes it was (a typo'd path, an empty
//! directory, a file) is told here, from one `lstat` of the path and one directory read.

use std::path::Path;

/// The store's marker file; its absence is what the library reports.
const MARKER: &str = "sessiondir.store";

/// What is at a path given as `--dir`, when it is not a usable directory or store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirKind {
    /// Nothing: no such file or directory.
    Missing,
    /// A file (or anything else that is not a directory).
    NotADirectory,
    /// An empty directory.
    Empty,
    /// A directory with other files but no store marker.
    Foreign,
    /// A directory with the store marker, or a path that cannot be inspected (the library's own
    /// error then says why).
    Other,
}

impl DirKind {
    /// Inspects `dir` without changing anything.
    pub fn of(dir: &Path) -> DirKind {
        let meta = match std::fs::metadata(dir) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return DirKind::Missing,
            Err(_) => return DirKind::Other,
        };
        if !meta.is_dir() {
            return DirKind::NotADirectory;
        }
        if std::fs::symlink_metadata(dir.join(MARKER)).is_ok() {
            return DirKind::Other;
        }
        match std::fs::read_dir(dir).map(|mut entries| entries.next().is_none()) {
            Ok(true) => DirKind::Empty,
            Ok(false) => DirKind::Foreign,
            Err(_) => DirKind::Other,
        }
    }

    /// Why an admin command finds no store at `dir`, or `None` when the library's own error
    /// says it better.
    pub fn no_store(self, dir: &Path) -> Option<String> {
        let why = match self {
            DirKind::Missing => "it does not exist (the admin commands never create a store; \
                                 an application's Store::open does)"
                .to_owned(),
            DirKind::NotADirectory => "it is a file, not a directory".to_owned(),
            DirKind::Empty => {
                format!(
                    "it is an empty directory ({MARKER} is missing: no store was created there)"
                )
            }
            DirKind::Foreign => {
                format!("it is a directory of other files, not a store ({MARKER} is missing)")
            }
            DirKind::Other => return None,
        };
        Some(format!(
            "no sessiondir store at --dir {}: {why}",
            dir.display()
        ))
    }

    /// Why a command that probes an existing directory (`doctor`) cannot use `dir`, given as
    /// `flag`, or `None` when it is a directory.
    pub fn not_a_directory(self, flag: &str, dir: &Path) -> Option<String> {
        let dir = dir.display();
        match self {
            DirKind::Missing => Some(format!(
                "{flag} {dir} does not exist (doctor probes an existing directory: create it on \
                 the file system to check)"
            )),
            DirKind::NotADirectory => {
                Some(format!("{flag} {dir} is a file, not a directory to probe"))
            }
            _ => None,
        }
    }
}
