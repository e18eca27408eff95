//! Fresh stores, each in its own temporary directory.

use std::path::PathBuf;

use sessiondir::{Store, StoreBuilder};

/// A fresh store in its own temporary directory (`<tmp>/store`, removed on drop).
pub struct TestStore {
    pub store: Store,
    /// The store's directory.
    pub dir: PathBuf,
    /// The temporary directory holding it, for files a test puts next to the store.
    pub tmp: tempfile::TempDir,
}

impl TestStore {
    pub fn new() -> Self {
        Self::with(|b| b)
    }

    /// A fresh store configured by `f` (fan-out 4 keeps directory walks small).
    pub fn with(f: impl FnOnce(StoreBuilder) -> StoreBuilder) -> Self {
        let tmp = tempfile::tempdir().expect("create temp dir");
        let dir = tmp.path().join("store");
        let store = f(Store::builder(&dir).fan_out(4))
            .open()
            .expect("open store");
        TestStore { store, dir, tmp }
    }
}
