//! Tests of `sessiondir::axum`: one test binary, one module per area.
//!
//! Most tests serve the app of `app` in this process on a port of the OS's choosing and talk
//! to it over real HTTP (ureq). The end-to-end tests re-run this very binary as worker
//! processes (see `child`) serving one shared session directory.

// The test support all test binaries share (tests/support/).
#[path = "../support/mod.rs"]
mod support;
// What these tests use of it, an in-process server, an HTTP client and a cookie parser.
mod common;

// The application under test, and the worker-process entry point that serves it.
mod app;
mod child;

// Real worker processes, real HTTP, one cookie: exact totals with the check-out extractor,
// lost updates without it.
mod workers;
// Cookie attributes; invalid, unknown and expired ids never adopted; no file for readers.
mod cookies;
// Success, error status, panic, failed check-in and lock timeout: what is written, what is not.
mod outcomes;
// The read-only extractor never waits for a holder.
mod reads;
// A SessionMut that changes nothing writes nothing, yet keeps a sliding session alive.
mod unchanged;
// cycle_id: new id, new cookie, old id gone.
mod cycle;
// The login race: requests in flight across a cycle_id follow it and never clear the new
// cookie; requests arriving later with the old cookie are not let in.
mod login_race;
// Logout: SessionMut::delete removes the session and the cookie.
mod logout;
// GcTask: expired sessions deleted on an interval, reports logged, stopped with the app.
mod gc_task;
// The same layer over the Redis backend (feature `redis`), against a real redis-server.
#[cfg(feature = "redis")]
mod redis;
