//! The disk primitives: the only renames and unlinks ([`atomic`]), the paths that resolve
//! beneath the store's root through no symlink ([`beneath`]), the safe opens of files inside
//! the store ([`open`]), and what the file system under the store is ([`netfs`]).
//!
//! This wing depends on nothing above it (only the crate's error, id and settings types);
//! the store and the lock protocol build on it. `clippy.toml` keeps renames and unlinks here.

pub(crate) mod atomic;
pub(crate) mod beneath;
pub(crate) mod netfs;
pub(crate) mod open;
pub(crate) mod pin;

pub use atomic::Failure;
pub use netfs::{FileSystem, file_system};
