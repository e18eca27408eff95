//! The settings both backends share: [`Durability`], [`Expiry`], and the lock, expiry and
//! size settings that [`StoreBuilder`](crate::StoreBuilder) and the Redis backend's builder
//! both offer ([`Settings`], with one set of builder methods for both).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::observer::Observer;

/// How hard a write (check-in, create, touch, cycle, delete) works to survive a power loss.
///
/// Every level replaces a session file atomically (a check-in swaps in the session's spare,
/// filled beforehand, or renames a complete temporary file over it: design.md §3.6, §4.1), so a
/// *process* crash (even SIGKILL) never leaves a torn session at any level. The levels differ
/// only in what survives an operating-system crash or power loss:
///
/// | level | syscalls added to a write | after power loss |
/// |---|---|---|
/// | `None` | none | the session may be an earlier version, the one being written, or damaged (an empty file after a rename, on file systems that do not order data before rename; a half-overwritten spare whose lost swap made it live again), which loads as [`Error::Corrupt`](crate::Error::Corrupt): never wrong data without an error |
/// | `FileData` | `fdatasync(temp)` before `rename` (this level always renames: a swap would leave the overwritten spare undurably named) | the session is the previous or the new version, never empty; a just-deleted session may come back |
/// | `FileAndDirectory` | `fdatasync` of the spare or temporary file before the swap or `rename`, then `open(dir)`, `fsync(dir)`, `close(dir)` after every swap, `rename` and `unlink` | the write or deletion is durable once the call returns |
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Durability {
    /// No syncing: what PHP's and Django's file stores do. The fastest.
    #[default]
    None,
    /// `fdatasync` the temporary file before renaming it into place.
    FileData,
    /// `fdatasync` the new version before it is swapped or renamed into place, and `fsync` the
    /// shard directory after every swap, rename or unlink.
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

/// The settings every backend's builder offers, with their defaults.
#[derive(Clone)]
pub(crate) struct Settings {
    /// How long a check-out waits for a holder.
    pub lock_timeout: Duration,
    /// The longest pause between two attempts of a waiting check-out.
    pub poll_delay: Duration,
    /// The expiry of a session made by `create`.
    pub default_expiry: Expiry,
    /// The largest encoded payload accepted on write and on read.
    pub max_session_size: u64,
    /// Receives lock-wait notifications.
    pub observer: Option<Arc<dyn Observer>>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            lock_timeout: Duration::from_secs(30),
            poll_delay: Duration::from_millis(50),
            default_expiry: Expiry::Never,
            max_session_size: 1 << 20,
            observer: None,
        }
    }
}

/// The builder methods of [`Settings`], written once for every backend's builder: `$field` is
/// the path from the builder to its `Settings` (e.g. `config.settings`), `$min_poll` the
/// shortest poll delay it accepts.
macro_rules! settings_methods {
    ($($field:ident).+, $min_poll:expr) => {
        /// How long a check-out (and delete, cycle, touch) waits for a holder before
        /// [`Error::LockTimeout`](crate::Error::LockTimeout). Default 30 s.
        pub fn lock_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.$($field).+.lock_timeout = timeout;
            self
        }

        /// The longest a waiting check-out sleeps between two attempts when no release
        /// wakes it (the WebStack `delay`); the sleeps start at 1 ms and double up to this
        /// value. Waiters are normally woken by the release itself (see the backend's docs),
        /// so this is the fallback. Default 50 ms.
        pub fn poll_delay(mut self, delay: std::time::Duration) -> Self {
            self.$($field).+.poll_delay = delay.max($min_poll);
            self
        }

        /// Expiry given to sessions by `create`. Default
        /// [`Expiry::Never`](crate::Expiry::Never).
        pub fn default_expiry(mut self, expiry: crate::Expiry) -> Self {
            self.$($field).+.default_expiry = expiry;
            self
        }

        /// Shorthand for `default_expiry(Expiry::Idle(ttl))`: a sliding time-to-live.
        pub fn idle_expiry(self, ttl: std::time::Duration) -> Self {
            self.default_expiry(crate::Expiry::Idle(ttl))
        }

        /// Largest payload (encoded session data) accepted on write and on read. Default
        /// 1 MiB; at most 4 GiB - 1 (the header's length field is 32 bits).
        pub fn max_session_size(mut self, bytes: u64) -> Self {
            self.$($field).+.max_session_size = bytes.min(u64::from(u32::MAX));
            self
        }

        /// Receives lock-wait notifications ("waiting for session X"); the library never
        /// prints.
        pub fn observer(mut self, observer: std::sync::Arc<dyn crate::Observer>) -> Self {
            self.$($field).+.observer = Some(observer);
            self
        }
    };
}
pub(crate) use settings_methods;
