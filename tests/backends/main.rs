//! Tests of the two backends behind one API (`sessiondir::Backend`): the directory store and
//! the Redis store (feature `redis`), each Redis test against its own `redis-server` on
//! loopback. `cargo test --features redis --test backends`.

// The test support all test binaries share (tests/support/).
#[path = "../support/mod.rs"]
mod support;
// What these tests use of it: a redis-server per test, directory stores, bounded waits.
mod common;
// The core contract, written once over `Backend` and run against both stores: one file per
// concept, each running its tests as `dir::*` and `redis::*`.
mod conformance {
    // The harness: a fresh store of each backend behind one `Fixture` trait, and the macro
    // that runs a file's tests against both.
    mod fixture;
    // What the tests share: a waits-recording observer, sample data, short reads.
    mod helpers;

    // create and create_with_id, and what load, exists, info and snapshot then return.
    mod create;
    // Check-in and save write a generation each; drop, release and into_data write nothing.
    mod checkin;
    // Busy and LockTimeout, waiters after the holder, no lost update, reads never waiting.
    mod contention;
    // delete and Checkout::delete, cycle_id and Checkout::cycle_id, and what waiters see.
    mod delete_cycle;
    // Idle expiry (and delete_expired), touch, set_expiry.
    mod expiry;
    // Reads and unchanged check-ins keep a sliding session alive without a write.
    mod sliding;
    // ids() lists exactly the live sessions; delete_idle skips fresh and held ones.
    mod listing_gc;
    // Data of the wrong type is a decode error naming the location; invalid ids refused.
    mod errors;
}
// Redis specifics: leases and fencing, a SIGSTOPped holder, worker processes, server TTLs,
// damaged values, an unreachable server.
mod redis_lease;
// A machine without redis-server: one message and a skip, or, under CI, a failure.
mod missing_redis;
