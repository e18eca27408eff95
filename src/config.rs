//! Store settings: [`StoreBuilder`], [`Durability`] and [`Expiry`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::error::Error;
use crate::observer::Observer;
use crate::store::Store;

/// How hard a write (check-in, create, touch, cycle, delete) works to survive a power loss.
///
/// Every level renames a complete temporary file over the session file, so a *process* crash
/// (even SIGKILL) never leaves a torn session at any level. The levels differ only in what
/// survives an operating-system crash or power loss:
///
/// | level | syscalls added to a write | after power loss |
/// |---|---|---|
/// | `None` | none | the session may be the previous version, or (rarely, on file systems that do not order data before rename) empty, which loads as [`Error::Corrupt`] |
/// | `FileData` | `fdatasync(temp)` before `rename` | the session is the previous or the new version, never empty; a just-deleted session may come back |
/// | `FileAndDirectory` | `fdatasync(temp)` before `rename`, then `open(dir)`, `fsync(dir)`, `close(dir)` after `rename`/`unlink` | the write or deletion is durable once the call returns |
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Durability {
    /// No syncing: what PHP's and Django's file stores do. The fastest.
    #[default]
    None,
    /// `fdatasync` the temporary file before renaming it into place.
    FileData,
    /// `FileData`, and `fsync` the shard directory after every rename or unlink.
    FileAndDirectory,
}

/// When a session expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// Never; only an explicit delete or [`delete_idle`](crate::Store::delete_idle) removes it.
    Never,
    /// A sliding lifetime: every check-in and every [`touch`](crate::Store::touch) moves the
    /// expiry to "now + this duration".
    Idle(Duration),
    /// A fixed point in time, unaffected by check-ins and touches.
    At(SystemTime),
}

/// Settings shared by all handles of one store.
#[derive(Clone)]
pub(crate) struct Config {
    pub lock_timeout: Duration,
    pub poll_delay: Duration,
    pub durability: Durability,
    pub fan_out: Option<u32>,
    pub default_expiry: Expiry,
    pub file_mode: u32,
    pub max_session_size: u64,
    pub allow_shared_dir: bool,
    pub allow_network_fs: bool,
    pub fencing: Option<bool>,
    pub create_if_missing: bool,
    pub observer: Option<Arc<dyn Observer>>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            lock_timeout: Duration::from_secs(30),
            poll_delay: Duration::from_millis(50),
            durability: Durability::None,
            fan_out: None,
            default_expiry: Expiry::Never,
            file_mode: 0o600,
            max_session_size: 1 << 20,
            allow_shared_dir: false,
            allow_network_fs: false,
            fencing: None,
            create_if_missing: true,
            observer: None,
        }
    }
}

impl Config {
    /// Directory mode derived from the file mode: each class that may read files may also
    /// enter directories (0600 → 0700, 0640 → 0750).
    pub fn dir_mode(&self) -> u32 {
        let m = self.file_mode & 0o777;
        m | 0o700 | ((m & 0o044) >> 2)
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
    pub(crate) dir: PathBuf,
    pub(crate) config: Config,
}

impl StoreBuilder {
    pub(crate) fn new(dir: &Path) -> Self {
        StoreBuilder {
            dir: dir.to_path_buf(),
            config: Config::default(),
        }
    }

    /// How long [`Store::checkout`] (and delete, cycle, touch) wait for a holder before
    /// [`Error::LockTimeout`]. Default 30 s.
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.config.lock_timeout = timeout;
        self
    }

    /// The longest a polling waiter sleeps between two attempts (the WebStack `delay`).
    /// Waiters normally queue in the kernel's lock queue and are woken by the release itself;
    /// they poll only when that cannot be set up (no helper thread could be started), and then
    /// also wake on the release's inotify event. Polls back off from 1 ms up to this value.
    /// Default 50 ms.
    pub fn poll_delay(mut self, delay: Duration) -> Self {
        self.config.poll_delay = delay.max(Duration::from_micros(100));
        self
    }

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

    /// Expiry given to sessions by [`Store::create`]. Default [`Expiry::Never`].
    pub fn default_expiry(mut self, expiry: Expiry) -> Self {
        self.config.default_expiry = expiry;
        self
    }

    /// Shorthand for `default_expiry(Expiry::Idle(ttl))`: a sliding time-to-live.
    pub fn idle_expiry(self, ttl: Duration) -> Self {
        self.default_expiry(Expiry::Idle(ttl))
    }

    /// Permission bits for session files (directories get the matching `x` bits). Default
    /// 0600; the process umask still applies. Bits for "others" are refused at open.
    pub fn file_mode(mut self, mode: u32) -> Self {
        self.config.file_mode = mode & 0o777;
        self
    }

    /// Largest payload (encoded session data) accepted on write and on read. Default 1 MiB;
    /// at most 4 GiB - 1 (the header's length field is 32 bits).
    pub fn max_session_size(mut self, bytes: u64) -> Self {
        self.config.max_session_size = bytes.min(u64::from(u32::MAX));
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

    /// Whether [`open`](Self::open) may create the store. Default true; admin tools set it to
    /// false so that a mistyped path is an error ([`Error::Config`]) instead of a new, empty
    /// store.
    pub fn create_if_missing(mut self, create: bool) -> Self {
        self.config.create_if_missing = create;
        self
    }

    /// Receives lock-wait notifications ("waiting for session X"); the library never prints.
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.config.observer = Some(observer);
        self
    }

    /// Opens the store, creating the directory and its layout if missing.
    pub fn open(self) -> Result<Store, Error> {
        Store::open_with(self)
    }
}
