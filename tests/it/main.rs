//! sessiondir's integration tests: one test binary, one module per area.
//!
//! Cross-process tests re-run this very binary as a child process (see `child`), so the
//! children are real OS processes using the public API, as a web server's workers would.

// The test support all test binaries share (tests/support/).
#[path = "../support/mod.rs"]
mod support;
// What these tests use of it, and header patching and lock paths of their own.
mod common;

// Child-process entry point and the tests that need real processes.
mod child;
// Threads and processes incrementing shared sessions: totals must be exact.
mod concurrency;
// SIGKILLed holders and writers: locks released, sessions intact, leftovers tidied.
mod crash;
// Delete, gc and cycle racing with holders and waiters in other processes.
mod races;

// The public API, operation by operation, one file per concept.
mod api {
    // What the API tests share: a session type, sample data, file bytes, times, modes.
    mod helpers;

    // Ids: create never takes one, from_bytes and create_with_id, the ids the store issues.
    mod ids;
    // Round trips through create, load, info, snapshot and check-out; the error helpers.
    mod round_trips;
    // The check-out life cycle: check-in, drop, release, save, failed check-in, contention.
    mod checkout;
    // Expiry: fixed and idle, touch, set_expiry, the builder's default.
    mod expiry;
    // delete, cycle_id and Checkout::cycle_id.
    mod delete_cycle;
    // ids() and sessions(): every session once, nothing planted among them.
    mod listing;
    // delete_expired and delete_idle.
    mod gc;
    // tidy and close: orphan locks and dead writers' temporary files.
    mod tidy;
    // Modes, the fan-out, shared directories, durability levels.
    mod settings;
}
// Hostile and malformed ids: typed errors, nothing on disk touched.
mod invalid_ids;
// Damaged session files: typed errors naming the path, other sessions unaffected.
mod corrupt_files;
// Disk full, file-size limits, and session or lock files changed under a live store.
mod faults;
// Fuzz targets' seeds and past crashes (fuzz/), replayed through the real store.
mod fuzz_regressions;
// Hostile neighbours: planted symlinks (nothing outside the store created, read or changed),
// owner-only modes under umask 0, shared directories refused, more hostile ids.
mod hostile;
// Check-ins through the spare file: no inode churn, readers safe across swaps and kills.
mod spares;
// Random operation sequences checked against an in-memory model.
mod model;
// Bugs found in review, each pinned by a test that failed before its fix.
mod regressions;
