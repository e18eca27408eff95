//! Tests of the two backends behind one API (`sessiondir::Backend`): the directory store and
//! the Redis store (feature `redis`), each Redis test against its own `redis-server` on
//! loopback. `cargo test --features redis --test backends`.

// The test support all test binaries share (tests/support/).
#[path = "../support/mod.rs"]
mod support;
// What these tests use of it: a redis-server per test, directory stores, bounded waits.
mod common;
// The core contract, written once over `Backend` and run against both stores.
mod conformance;
// Redis specifics: leases and fencing, a SIGSTOPped holder, worker processes, server TTLs,
// damaged values, an unreachable server.
mod redis_lease;
