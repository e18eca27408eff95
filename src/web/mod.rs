//! The web-framework adapters, each behind its feature, each built on the public API only:
//!
//! * [`tower`] (feature `tower-sessions`): a `tower_sessions_core::SessionStore`;
//! * [`actix`] (feature `actix-session`): an `actix_session::storage::SessionStore`;
//! * [`axum`] (feature `axum`): a layer and extractors that hold a session checked out for a
//!   whole request;
//! * `json_record`: how the tower and actix adapters store their JSON records.

#[cfg(feature = "actix-session")]
pub mod actix;
#[cfg(feature = "axum")]
pub mod axum;
#[cfg(any(feature = "tower-sessions", feature = "actix-session"))]
mod json_record;
#[cfg(feature = "tower-sessions")]
pub mod tower;
