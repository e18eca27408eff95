//! Nothing but a home for the examples that need only the library (see `Cargo.toml`):
//! `cargo run --release -p sessiondir-examples --example workers`.
