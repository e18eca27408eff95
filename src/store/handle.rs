//! [`Store`]: the handle applications share between threads, and the state its clones share.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use super::config::Config;
use super::layout::Layout;
use crate::fs::FileSystem;
use crate::id::SessionId;
use crate::lock::Locks;
use crate::observer::LockStats;

/// A session directory, shared by every thread and process that opens it.
///
/// Cheap to clone (one `Arc`), `Send + Sync`. Clones share the in-process lock queue, the
/// release-event watcher and the lock statistics.
#[derive(Clone)]
pub struct Store {
    pub(crate) shared: Arc<Shared>,
}

/// State shared by a store's clones.
pub(crate) struct Shared {
    pub layout: Layout,
    pub config: Config,
    /// The lock protocol's state: local queue, barging table, kernel-queue helpers, counters.
    pub locks: Locks,
    /// Whether check-ins re-validate the lock and the session's version before renaming.
    pub fencing: bool,
    /// Whether check-ins go through the session's spare file and `RENAME_EXCHANGE`
    /// ([`StoreBuilder::reuse_inodes`](crate::StoreBuilder::reuse_inodes)); cleared for good
    /// when the file system refuses the exchange.
    pub spares: AtomicBool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.dir())
            .field("fan_out", &self.fan_out())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// The store directory (absolute).
    pub fn dir(&self) -> &Path {
        self.shared.layout.root()
    }

    /// The file system the store is on (a network or FUSE one only if the builder allowed it).
    pub fn file_system(&self) -> FileSystem {
        self.shared.layout.file_system()
    }

    /// Whether check-ins are fenced (see [`StoreBuilder::fencing`](crate::StoreBuilder::fencing)).
    pub fn fencing(&self) -> bool {
        self.shared.fencing
    }

    /// The number of shard directories.
    pub fn fan_out(&self) -> u32 {
        self.shared.layout.fan_out()
    }

    /// Where the file of session `id` lives (whether or not it exists).
    pub fn session_path(&self, id: &SessionId) -> PathBuf {
        self.shared.layout.data_path(id).to_path_buf()
    }

    /// Where the lock file of session `id` lives (whether or not it exists): what a holder
    /// `flock`s, for operators (`fuser`, `lsof`) and `sessiondir show`.
    pub fn lock_path(&self, id: &SessionId) -> PathBuf {
        self.shared.layout.lock_path(id).to_path_buf()
    }

    /// Which shard directory (`0..fan_out`) holds session `id`.
    pub fn shard_of(&self, id: &SessionId) -> u32 {
        self.shared.layout.shard_of(id)
    }

    /// How check-outs through this store (and its clones) got their locks so far.
    pub fn lock_stats(&self) -> LockStats {
        self.shared.locks.stats()
    }
}
