//! [`RedisBuilder`]: configuring and connecting a [`RedisStore`].

use std::sync::Arc;
use std::time::Duration;

use super::pool::Pool;
use super::{Inner, RedisStore};
use crate::error::Error;
use crate::observer::Counters;
use crate::settings::Settings;

impl RedisStore {
    /// Connects to `url` (`redis://host:port/db`, `redis+unix:///path`) with default settings.
    pub fn open(url: &str) -> Result<RedisStore, Error> {
        Self::builder(url).open()
    }

    /// Starts configuring a store on the server at `url`.
    pub fn builder(url: &str) -> RedisBuilder {
        RedisBuilder {
            url: url.to_owned(),
            prefix: "sessiondir:".to_owned(),
            settings: Settings::default(),
            lease: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            io_timeout: Duration::from_secs(5),
        }
    }
}

/// Configures and opens a [`RedisStore`]. Get one from [`RedisStore::builder`].
///
/// ```no_run
/// use std::time::Duration;
/// use sessiondir::redis::RedisStore;
///
/// let store = RedisStore::builder("redis://127.0.0.1:6379/0")
///     .prefix("myapp:session:")
///     .lease(Duration::from_secs(10))
///     .lock_timeout(Duration::from_secs(5))
///     .idle_expiry(Duration::from_secs(30 * 60))
///     .open()?;
/// # Ok::<(), sessiondir::Error>(())
/// ```
#[must_use]
pub struct RedisBuilder {
    url: String,
    prefix: String,
    settings: Settings,
    lease: Duration,
    connect_timeout: Duration,
    io_timeout: Duration,
}

impl RedisBuilder {
    crate::settings::settings_methods!(settings, Duration::from_millis(1));

    /// Prefix of every key (default `"sessiondir:"`); lets applications share a database.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long a check-out holds the session without extending its lease (default 30 s).
    /// A holder past its lease loses the session to the next check-out, and its check-in is
    /// refused with [`Error::Conflict`].
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_millis(1));
        self
    }

    /// Time allowed to open a connection (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Time allowed for one command's reply (default 5 s); past it the command fails with
    /// [`Error::Redis`] instead of hanging on a dead server.
    pub fn io_timeout(mut self, timeout: Duration) -> Self {
        self.io_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Connects (one `PING`, so a wrong address fails here) and returns the store.
    pub fn open(self) -> Result<RedisStore, Error> {
        let client = redis::Client::open(self.url.as_str()).map_err(|source| Error::Redis {
            op: "parse the address",
            key: self.url.clone(),
            source,
        })?;
        let pool = Pool::new(client, self.connect_timeout, self.io_timeout);
        let server = pool.describe();
        let store = RedisStore {
            inner: Arc::new(Inner {
                pool,
                server,
                prefix: self.prefix,
                settings: self.settings,
                lease: self.lease,
                counters: Counters::default(),
            }),
        };
        store.run("connect to", "", |con| {
            redis::cmd("PING").query::<String>(con)
        })?;
        Ok(store)
    }
}
