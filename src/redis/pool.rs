//! A small pool of synchronous Redis connections, shared by a store's clones.
//!
//! Connections are taken for one command (or one script call) and given back; one that failed
//! with an I/O error is dropped instead, since its protocol state is unknown. Idle connections
//! are capped; a burst of threads opens more and the extras are closed on return. No thread,
//! no timer: a pool crate (r2d2, deadpool) would add both for nothing this needs.

use std::sync::Mutex;
use std::time::Duration;

use redis::{Client, Connection, ConnectionLike, RedisError, RedisResult};

/// Idle connections kept for reuse.
const MAX_IDLE: usize = 32;

pub(crate) struct Pool {
    client: Client,
    idle: Mutex<Vec<Connection>>,
    connect_timeout: Duration,
    io_timeout: Duration,
}

impl Pool {
    pub fn new(client: Client, connect_timeout: Duration, io_timeout: Duration) -> Self {
        Pool {
            client,
            idle: Mutex::new(Vec::new()),
            connect_timeout,
            io_timeout,
        }
    }

    /// The server address, as `redis://host:port/db` (for error messages).
    pub fn describe(&self) -> String {
        let info = self.client.get_connection_info();
        format!("redis://{}/{}", info.addr(), info.redis_settings().db())
    }

    /// A connection: an idle one, or a new one (with the connect and I/O timeouts set).
    pub fn take(&self) -> RedisResult<Connection> {
        let reused = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        if let Some(con) = reused {
            return Ok(con);
        }
        let con = self
            .client
            .get_connection_with_timeout(self.connect_timeout)?;
        con.set_read_timeout(Some(self.io_timeout))?;
        con.set_write_timeout(Some(self.io_timeout))?;
        Ok(con)
    }

    /// Gives a connection back, unless the last use left it in an unknown state.
    pub fn give_back(&self, con: Connection, last: Option<&RedisError>) {
        if last.is_some_and(|e| e.is_io_error() || e.is_unrecoverable_error()) || !con.is_open() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(con);
        }
    }

    /// Runs `f` on a pooled connection.
    pub fn run<R>(&self, f: impl FnOnce(&mut Connection) -> RedisResult<R>) -> RedisResult<R> {
        let mut con = self.take()?;
        let result = f(&mut con);
        self.give_back(con, result.as_ref().err());
        result
    }

    /// The read timeout every pooled connection gets back after a waiter used it for a
    /// subscription with shorter timeouts.
    pub fn io_timeout(&self) -> Duration {
        self.io_timeout
    }
}
