//! What is on disk below a store: file listings, writers' temporary files, and exact
//! snapshots of a tree (to prove that nothing was created, removed or written).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Every file below `dir` (recursively), as paths: anything that is not a directory, symlinks
/// included (never followed). Nothing if `dir` does not exist.
pub fn all_files(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| !e.file_type().is_dir())
        .map(|e| e.into_path())
        .collect()
}

/// The files below `dir` whose names do not start with a dot: below `<store>/sessions` the
/// session files, below `<store>/locks` the lock files (writers' temporary files excluded).
pub fn named_files(dir: &Path) -> Vec<PathBuf> {
    all_files(dir)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| !n.starts_with('.'))
        })
        .collect()
}

/// Temporary files (`.<id>.<r>.tmp`) left anywhere in the store.
pub fn temp_files(dir: &Path) -> Vec<PathBuf> {
    all_files(dir)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.') && n.ends_with(".tmp"))
        })
        .collect()
}

/// What one path in the store looks like on disk: enough to tell that nothing changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryState {
    /// "file", "dir", "symlink", "fifo", "socket" or "other".
    pub kind: &'static str,
    pub ino: u64,
    pub mode: u32,
    pub len: u64,
    pub mtime: (i64, i64),
    /// A regular file's bytes, or a symlink's target; empty for anything else.
    pub content: Vec<u8>,
}

/// The state of `path` itself (never following a symlink, never opening a FIFO), or `None`
/// if nothing is there.
pub fn entry_state(path: &Path) -> Option<EntryState> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let meta = std::fs::symlink_metadata(path).ok()?;
    let ft = meta.file_type();
    let (kind, content) = if ft.is_file() {
        ("file", std::fs::read(path).expect("read file for snapshot"))
    } else if ft.is_dir() {
        ("dir", Vec::new())
    } else if ft.is_symlink() {
        let target = std::fs::read_link(path).expect("read symlink for snapshot");
        ("symlink", target.as_os_str().as_bytes().to_vec())
    } else if ft.is_fifo() {
        ("fifo", Vec::new())
    } else if ft.is_socket() {
        ("socket", Vec::new())
    } else {
        ("other", Vec::new())
    };
    Some(EntryState {
        kind,
        ino: meta.ino(),
        mode: meta.mode(),
        len: meta.len(),
        mtime: (meta.mtime(), meta.mtime_nsec()),
        content,
    })
}

/// Every path below `dir` (and `dir` itself), keyed by path relative to `dir`: type, inode,
/// mode, size, mtime and contents. Two equal snapshots mean nothing in the tree changed.
pub fn tree_snapshot(dir: &Path) -> BTreeMap<PathBuf, EntryState> {
    fn walk(root: &Path, path: &Path, out: &mut BTreeMap<PathBuf, EntryState>) {
        let Some(state) = entry_state(path) else {
            return;
        };
        let is_dir = state.kind == "dir";
        let rel = path.strip_prefix(root).expect("below root").to_path_buf();
        out.insert(rel, state);
        if is_dir {
            for entry in std::fs::read_dir(path).expect("list dir for snapshot") {
                walk(root, &entry.expect("dir entry").path(), out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}
