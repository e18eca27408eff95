//! Helpers: what the shared test support (`tests/support/`) offers these tests, re-exported
//! under the names they use (a real `redis-server` on loopback for each test, and whether this
//! machine has one: without it the Redis tests say so once and skip, except under CI, where
//! they fail; a directory store in a temporary directory, bounded waits), and a short read both
//! modules use.

use sessiondir::{Backend, Dict, SessionId};

pub use crate::support::redis::{RedisServer, redis_available};
pub use crate::support::store::TestStore;
pub use crate::support::wait::wait_until;

/// The `n` of session `id` (0 if it has none), read without a lock.
pub fn n_of<B: Backend>(store: &B, id: &SessionId) -> i64 {
    store
        .load::<Dict>(id)
        .expect("load")
        .expect("session exists")
        .get_i64("n")
        .unwrap_or(0)
}
