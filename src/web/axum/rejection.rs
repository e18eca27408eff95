//! [`SessionRejection`]: why a session extractor failed, and the response it makes.

use std::fmt;
use std::time::Duration;

use ::axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::RETRY_AFTER;

use crate::{Backend, Error};

use super::slot::Slot;

/// Why a session extractor (or [`SessionMut::cycle_id`](super::SessionMut::cycle_id)) failed.
///
/// As a response it is a 503 or a 500 with a short plain-text body that names no path or id;
/// handlers that want to log the details can extract `Result<SessionMut<T>, SessionRejection>`
/// and match.
#[derive(Debug)]
#[non_exhaustive]
pub enum SessionRejection {
    /// No [`SessionLayer`](super::SessionLayer) for this session type wraps the route: 500.
    MissingLayer,
    /// Another [`SessionMut`](super::SessionMut) of the same request holds the session: 500
    /// (a bug in the application; waiting would wait for itself).
    AlreadyCheckedOut,
    /// Another request held the session for the whole lock timeout
    /// ([`Error::LockTimeout`]): 503 Service Unavailable with `Retry-After`.
    Unavailable {
        /// The store's error.
        error: Error,
        /// The `Retry-After` sent to the client.
        retry_after: Duration,
    },
    /// The store failed (a damaged session file, data that does not decode as `T`, an I/O
    /// error): 500.
    Store {
        /// The store's error.
        error: Error,
    },
    /// The request presented an id that a login ([`SessionMut::cycle_id`](super::SessionMut::cycle_id))
    /// moved to a new id before the request arrived, so it may not have the session (it may
    /// carry a stolen or planted cookie), and handing it a fresh session would replace the
    /// client's newer cookie: 409 Conflict, no cookie. Also refused: `cycle_id` on a session
    /// this request reached through a forwarding record (its response may not tell the new
    /// id). A browser racing its own login simply retries with the new cookie.
    Moved,
    /// The blocking task running the store call panicked or the runtime is shutting down: 500.
    TaskFailed,
}

impl SessionRejection {
    /// Maps a store error: a lock timeout is a 503, anything else a 500.
    pub(crate) fn from_store<T, B: Backend>(error: Error, slot: &Slot<T, B>) -> Self {
        match error {
            Error::LockTimeout { .. } => SessionRejection::Unavailable {
                error,
                retry_after: slot.settings.retry_after,
            },
            error => SessionRejection::Store { error },
        }
    }

    /// The store's error, if this came from one.
    pub fn store_error(&self) -> Option<&Error> {
        match self {
            SessionRejection::Unavailable { error, .. } | SessionRejection::Store { error } => {
                Some(error)
            }
            _ => None,
        }
    }
}

impl fmt::Display for SessionRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionRejection::MissingLayer => {
                f.write_str("no SessionLayer for this session type wraps the route")
            }
            SessionRejection::AlreadyCheckedOut => {
                f.write_str("the session is already held by another SessionMut of this request")
            }
            SessionRejection::Unavailable { error, .. } | SessionRejection::Store { error } => {
                write!(f, "session unavailable: {error}")
            }
            SessionRejection::Moved => {
                f.write_str("the session moved to a new id before this request arrived")
            }
            SessionRejection::TaskFailed => f.write_str("the blocking session task failed"),
        }
    }
}

impl std::error::Error for SessionRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.store_error().map(|e| e as _)
    }
}

impl IntoResponse for SessionRejection {
    fn into_response(self) -> Response {
        match self {
            SessionRejection::Unavailable { retry_after, .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                [(RETRY_AFTER, retry_after_seconds(retry_after).to_string())],
                "the session is busy; retry later\n",
            )
                .into_response(),
            SessionRejection::Moved => (
                StatusCode::CONFLICT,
                "the session moved to a new id (a login); retry\n",
            )
                .into_response(),
            _ => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the session could not be loaded\n",
            )
                .into_response(),
        }
    }
}

/// Whole seconds for `Retry-After`, at least 1.
fn retry_after_seconds(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}
