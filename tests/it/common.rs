//! Helpers shared by the integration tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sessiondir::Store;

/// A fresh store in its own temporary directory (removed on drop).
pub struct TestStore {
    pub store: Store,
    pub dir: PathBuf,
    _tmp: tempfile::TempDir,
}

impl TestStore {
    pub fn new() -> Self {
        Self::with(|b| b)
    }

    /// A fresh store configured by `f` (fan-out 4 keeps directory walks small).
    pub fn with(f: impl FnOnce(sessiondir::StoreBuilder) -> sessiondir::StoreBuilder) -> Self {
        let tmp = tempfile::tempdir().expect("create temp dir");
        let dir = tmp.path().join("store");
        let store = f(Store::builder(&dir).fan_out(4))
            .open()
            .expect("open store");
        TestStore {
            store,
            dir,
            _tmp: tmp,
        }
    }
}

/// Waits until `cond` holds, polling every millisecond, failing the test after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Every file below `dir` (recursively), as paths.
pub fn all_files(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| !e.file_type().is_dir())
        .map(|e| e.into_path())
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

// ---- Snapshots of the store tree and header patching (api, invalid_ids, corrupt_files, model) ----

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
pub fn tree_snapshot(dir: &Path) -> std::collections::BTreeMap<PathBuf, EntryState> {
    fn walk(root: &Path, path: &Path, out: &mut std::collections::BTreeMap<PathBuf, EntryState>) {
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
    let mut out = std::collections::BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Recomputes the header checksum (bytes 56..60, CRC-32 IEEE of bytes 0..56) of a session file
/// image after a test changed header fields on purpose.
pub fn fix_header_crc(file: &mut [u8]) {
    let crc = compute_header_crc(file);
    file[56..60].copy_from_slice(&crc.to_le_bytes());
}

/// The header CRC: CRC-32 of bytes 0..56 and 60..64 (docs/design.md, section 2).
pub fn compute_header_crc(file: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&file[..56]);
    h.update(&file[60..64]);
    h.finalize()
}

/// The lock file of session `id`: `<dir>/locks/<shard>/<id>`, next to its session file's shard.
pub fn lock_path_of(store: &Store, id: &sessiondir::SessionId) -> PathBuf {
    let data = store.session_path(id);
    let shard = data
        .parent()
        .and_then(Path::file_name)
        .expect("session path has a shard directory");
    store.dir().join("locks").join(shard).join(id.as_str())
}
