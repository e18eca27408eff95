//! Tests of the web framework adapters (`sessiondir::tower`, `sessiondir::actix`, and the axum
//! layer where they meet), one binary with a module per area. Built only with the three
//! features: `cargo test --features tower-sessions,actix-session,axum --test adapters`.

// The test support all test binaries share (tests/support/).
#[path = "../support/mod.rs"]
mod support;
// Temporary stores, directory snapshots, and the `Adapter` trait with its two implementations.
mod common;
// The adapters' shared contract, written once and run against every adapter.
mod conformance;
// tower-sessions specifics: the id mapping, collisions, save of unstored records, the real
// `Session` type, error mapping, expiry dates.
mod tower;
// actix-session specifics: invalid keys, update of missing or undecodable sessions, texts kept
// byte for byte, the real middleware.
mod actix;
// The shared representation: `Store::load::<Dict>`, `sessiondir show`, tower → actix.
mod interop;
// Sliding idle expiry kept alive by lock-free reads, over HTTP (axum + `Store::load`, actix's
// `OnEveryRequest`), without a rewrite.
mod sliding;
// One record format: tower, actix and the axum layer read each other's sessions (axum over
// HTTP).
mod shared_record;
// Every Rust snippet in README is compiled (by the README doctest in src/lib.rs).
mod readme;
