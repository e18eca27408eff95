//! [`StoreBuilder`]: configuring and opening a [`Store`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use super::config::Config;
use super::handle::{Shared, Store};
use super::layout::Layout;
use crate::error::Error;
use crate::lock::{LockSettings, Locks};
use crate::settings::Durability;

impl Store {
    /// Opens the store at `dir` with default settings, creating it if missing.
    pub fn open(dir: impl AsRef<Path>) -> Result<Store, Error> {
        Self::builder(dir).open()
    }

    /// Starts configuring a store at `dir`.
    pub fn builder(dir: impl AsRef<Path>) -> StoreBuilder {
        StoreBuilder {
            dir: dir.as_ref().to_path_buf(),
            config: Config::default(),
        }
    }
}

/// Configures and opens a [`Store`]. Get one from [`Store::builder`].
///
/// ```no_run
/// use std::time::Duration;
/// use sessiondir::{Durability, Store};
///
/// let store = Store::builder("/var/lib/myapp/sessions")
///     .lock_timeout(Duration::from_secs(5))
///     .idle_expiry(Duration::from_secs(30 * 60))
///     .durability(Durability::FileData)
///     .open()?;
/// # Ok::<(), sessiondir::Error>(())
/// ```
#[must_use]
pub struct StoreBuilder {
    dir: PathBuf,
    config: Config,
}

impl StoreBuilder {
    crate::settings::settings_methods!(config.settings, Duration::from_micros(100));

    /// What each write syncs; see [`Durability`]. Default [`Durability::None`].
    pub fn durability(mut self, durability: Durability) -> Self {
        self.config.durability = durability;
        self
    }

    /// Number of shard directories (1 to 4096) used when the store is *created*. An existing
    /// store keeps the fan-out it was created with; asking for a different one is
    /// [`Error::Config`]. Default 256 (about 4,000 files per directory at a million sessions).
    pub fn fan_out(mut self, shards: u32) -> Self {
        self.config.fan_out = Some(shards);
        self
    }

    /// Permission bits for session files (directories get the matching `x` bits). Default
    /// 0600; the process umask still applies. Bits for "others" are refused at open.
    pub fn file_mode(mut self, mode: u32) -> Self {
        self.config.file_mode = mode & 0o777;
        self
    }

    /// Accept a store directory that users other than its owner may write to. Default false:
    /// anyone who can write the directory can read, replace or delete every session in it.
    pub fn allow_shared_dir(mut self, allow: bool) -> Self {
        self.config.allow_shared_dir = allow;
        self
    }

    /// Accept a store on a network or FUSE file system (NFS, SMB, CephFS, JuiceFS, GlusterFS,
    /// ...). Default false: [`open`](Self::open) refuses with
    /// [`Error::UnsupportedFileSystem`], because whether such a mount excludes `flock` across
    /// hosts and shows a renamed file at once depends on its options; see
    /// `docs/shared-filesystems.md` and run `sessiondir doctor` first. Opting in turns
    /// [`fencing`](Self::fencing) on unless set.
    pub fn allow_network_fs(mut self, allow: bool) -> Self {
        self.config.allow_network_fs = allow;
        self
    }

    /// Fencing at check-in (default: on exactly when the store is on a network or FUSE file
    /// system). Right before renaming, the check-in re-validates the lock (its file still
    /// linked *and* still the one at the lock path) and reads the session file's header: if it
    /// is not the version this check-out read, another holder wrote meanwhile (a lock the file
    /// system failed to exclude), and the check-in is refused with
    /// [`Error::Conflict`](crate::Error::Conflict), writing nothing. Costs 4 syscalls per
    /// check-in (13 → 17). What it narrows and what it cannot close: design §13.
    pub fn fencing(mut self, on: bool) -> Self {
        self.config.fencing = Some(on);
        self
    }

    /// Whether check-ins reuse inodes (default true): each session keeps a spare file, a
    /// check-in overwrites the spare in place and swaps it with the live file by
    /// `renameat2(RENAME_EXCHANGE)`, so a steady check-in creates and frees no inode (design
    /// §4.2). Used only where it is safe and supported: a local file system, no fencing,
    /// [`Durability::None`] or [`Durability::FileAndDirectory`]; a file system that refuses the
    /// exchange turns it off for this handle at the first check-in. `false`: every check-in
    /// renames a new temporary file over the session file, as the other cases do.
    pub fn reuse_inodes(mut self, on: bool) -> Self {
        self.config.reuse_inodes = on;
        self
    }

    /// Whether [`open`](Self::open) may create the store. Default true; admin tools set it to
    /// false so that a mistyped path is an error ([`Error::Config`]) instead of a new, empty
    /// store.
    pub fn create_if_missing(mut self, create: bool) -> Self {
        self.config.create_if_missing = create;
        self
    }

    /// Opens the store, creating the directory and its layout if missing.
    pub fn open(self) -> Result<Store, Error> {
        let StoreBuilder { dir, config } = self;
        if config.file_mode & 0o007 != 0 && !config.allow_shared_dir {
            return Err(Error::Config {
                path: dir,
                reason: format!(
                    "file mode {:o} lets every user read sessions (use allow_shared_dir to accept that)",
                    config.file_mode
                ),
            });
        }
        let layout = Layout::open(&dir, &config)?;
        let fencing = config.fencing.unwrap_or(layout.file_system().shared);
        // FileData makes no directory durable, so the exchange that turned the old version into
        // the spare may not survive a power loss while the spare is already being overwritten:
        // that level keeps renaming new files (design §4.2).
        let spares = config.reuse_inodes
            && !fencing
            && !layout.file_system().shared
            && config.durability != Durability::FileData;
        let locks = Locks::new(LockSettings {
            timeout: config.settings.lock_timeout,
            poll_delay: config.settings.poll_delay,
            file_mode: config.file_mode,
            observer: config.settings.observer.clone(),
        });
        Ok(Store {
            shared: Arc::new(Shared {
                layout,
                config,
                locks,
                fencing,
                spares: AtomicBool::new(spares),
            }),
        })
    }
}
