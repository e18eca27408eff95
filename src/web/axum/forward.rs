//! The login race: what a request does when the session its cookie names has just been moved
//! to a new id by [`SessionMut::cycle_id`](super::SessionMut::cycle_id) (design §11, "The
//! login race").
//!
//! A cycle leaves a forwarding record old id → new id for a minute
//! ([`Backend::forwarded`]). When an extractor finds no live session under the presented id it
//! looks for one:
//!
//! * **The request arrived before the cycle** (its id was the session's id then): it follows
//!   the record and gets the session under its new id, checked out or read like any other.
//!   Its response never tells the new id (no `Set-Cookie`): only the login's response does, so
//!   a request that was in flight across the login learns nothing it could keep.
//! * **It arrived after the cycle**: the old id is no credential any more (a stolen cookie, a
//!   planted one, or the browser's own request sent just before the login's answer came).
//!   It gets no session, and no cookie either way: a reader sees an empty session, a writer is
//!   refused with [`SessionRejection::Moved`] (409) instead of being handed a fresh session
//!   whose cookie would replace the login's.
//! * **No record** (never cycled, or over a minute ago): the id is dead, as before.

use crate::{Backend, SessionId};

use super::rejection::SessionRejection;
use super::slot::{Slot, blocking};

/// At most this many cycles are followed in a row (a login, then a privilege change...).
pub(crate) const MAX_HOPS: u32 = 4;

/// What became of a presented (or followed) id that names no live session.
pub(crate) enum Gone {
    /// Cycled to this id while the request was in flight: follow.
    Follow(SessionId),
    /// Cycled before the request arrived: no session, and no cookie change.
    Moved,
    /// Deleted, expired, unknown.
    Dead,
}

/// Looks up `id`'s forwarding record and judges it against the request's arrival.
pub(crate) async fn gone<T, B: Backend>(
    slot: &Slot<T, B>,
    id: SessionId,
) -> Result<Gone, SessionRejection> {
    let store = slot.store.clone();
    let forward = blocking(move || store.forwarded(&id))
        .await?
        .map_err(|e| SessionRejection::from_store(e, slot))?;
    Ok(match forward {
        // Strictly before: a request arriving in the cycle's own millisecond is late.
        Some(f) if slot.arrived < f.cycled => Gone::Follow(f.to),
        Some(_) => Gone::Moved,
        None => Gone::Dead,
    })
}
