//! Test support shared by every test binary (`it`, `web`, `adapters`, `backends` and the
//! command's `cli`), one file per concept. Each binary includes this folder with
//! `#[path = "../support/mod.rs"] mod support;` and its own `common.rs` re-exports what its
//! tests use, next to what only that binary needs.
//!
//! Only what every binary's package can build goes here unconditionally: std, `sessiondir`,
//! `tempfile` and `walkdir`. The Redis server needs the `redis` feature of this package (the
//! command's package has no such feature, and no `redis` client of its own).

// Not every binary uses every helper.
#![allow(dead_code)]

// Bounded waits: poll a condition, fail the test naming what it waited for.
pub mod wait;
// Fresh stores in temporary directories.
pub mod store;
// What is on disk: file listings, temporary files, exact snapshots of a tree.
pub mod tree;
// Child processes: killed and reaped on drop, this test binary re-run as a child, the child
// side's guards, report lines on stdout.
pub mod child;
// A private `redis-server` on loopback, one per test (the command's package, which has no
// features, never builds it: its main.rs allows the condition it cannot know).
#[cfg(feature = "redis")]
pub mod redis;
