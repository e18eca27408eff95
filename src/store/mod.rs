//! The session directory: [`Store`], the backend that keeps each session in its own file.
//!
//! Built on the lock protocol ([`crate::lock`]) and the disk primitives ([`crate::fs`]); the
//! Redis backend ([`crate::redis`], feature `redis`) is its sibling behind the same
//! [`Backend`](crate::Backend) API.
//!
//! * [`handle`]: the `Store` handle and the state its clones share;
//! * [`builder`] and [`config`]: opening a store and the settings it keeps;
//! * [`layout`]: where everything lives in the directory, and creating it safely;
//! * [`sessions`]: create, the lock-free reads, check-out, delete, cycle, touch;
//! * [`locked`]: the held check-out and every write made under its lock;
//! * [`forward`]: the short-lived records `cycle_id` leaves under the old id;
//! * [`backend`]: `Store` behind the [`Backend`](crate::Backend) trait;
//! * [`walk`], [`gc`], [`tidy`], [`watch`]: listing, garbage collection, clean-up of crashed
//!   writers' leftovers, and change events.

mod backend;
mod builder;
mod config;
mod forward;
mod gc;
mod handle;
mod layout;
mod locked;
mod sessions;
mod tidy;
mod walk;
mod watch;

pub use builder::StoreBuilder;
pub use forward::FORWARD_LIFETIME;
pub use gc::GcPolicy;
pub use handle::Store;
pub use tidy::TidyReport;
pub use walk::SessionIds;
pub use watch::{Change, ChangeKind, Watch};
