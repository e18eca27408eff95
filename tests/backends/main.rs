//! Tests of the two backends behind one API (`sessiondir::Backend`): the directory store and
//! the Redis store (feature `redis`), each Redis test against its own `redis-server` on
//! loopback. `cargo test --features redis --test backends`.

// A redis-server per test, and fresh stores of both kinds.
mod common;
// The core contract, written once over `Backend` and run against both stores.
mod conformance;
// Redis specifics: leases and fencing, a SIGSTOPped holder, worker processes, server TTLs,
// damaged values, an unreachable server.
mod redis_lease;
