//! Integration tests of the `sessiondir` command-line tool: the real binary, run as a child
//! process against stores prepared (and checked) with the library.

// The test support all test binaries share (tests/support/ of the library's package).
// This package has no `redis` feature: the support's Redis server is never built here.
#[allow(unexpected_cfgs)]
#[path = "../../../tests/support/mod.rs"]
mod support;
// Running the real binary with a deadline, temporary stores, JSON parsing.
mod common;

// Listing sessions: text table, JSON lines, filters, checked-out sessions.
mod ls;
// One session's header and data.
mod show;
// A session written by a web-framework adapter, as the command shows it.
mod framework_sessions;
// Deleting one session; holders and timeouts.
mod rm;
// Garbage collection of expired and idle sessions.
mod gc;
// Leftovers of crashed writers, and store statistics.
mod tidy_stats;
// The live change stream.
mod watch;
// A missing or foreign --dir, usage errors, a reader that closes the pipe.
mod errors;
// The benchmark's harness contract.
mod bench;
// Probing a directory (and a second path to it) for working locks and fresh reads.
mod doctor;
// Crash-and-load torture: a short verified run, and the verifier catching damage.
mod torture;
