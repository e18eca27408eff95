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
        let store = f(Store::builder(&dir).fan_out(4)).open().expect("open store");
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
        assert!(start.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
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
