//! An [`actix_session::storage::SessionStore`] (actix-session 0.11) on a session directory:
//! [`ActixStore`].
//!
//! ```no_run
//! use actix_session::SessionMiddleware;
//! use actix_web::cookie::Key;
//! use sessiondir::Store;
//! use sessiondir::actix::ActixStore;
//!
//! let store = ActixStore::new(Store::open("/var/lib/myapp/sessions")?);
//! let secret = Key::generate(); // in production: the same key for every worker, from config
//! // In `HttpServer::new(move || App::new().wrap(...))`:
//! let middleware = SessionMiddleware::new(store.clone(), secret.clone());
//! # drop(middleware);
//! # Ok::<(), sessiondir::Error>(())
//! ```
//!
//! ## What is guaranteed
//!
//! * **No store call runs on the executor's threads.** Every call to the [`Store`] runs in
//!   `actix_web::rt::task::spawn_blocking` (Tokio's blocking pool); a failed blocking task is
//!   an error, never a panic. The calls must be made inside a Tokio runtime, as actix-web's
//!   always are.
//! * **Keys are sessiondir ids.** `save` creates the session with [`Store::create`]'s rules (a
//!   new id from the OS CSPRNG, never over an existing session) and returns the id as the
//!   [`SessionKey`]. A key that does not parse as a [`SessionId`] (a forged or foreign cookie)
//!   is treated as missing: `load` gives `None`, `update_ttl` and `delete` do nothing,
//!   `update` saves the state as a new session. No path is built from it and no file is
//!   touched.
//! * **`load` returns `None` for a missing or expired session** and takes no lock: it never
//!   waits for a concurrent `update`, and never sees half a file. It does not extend the
//!   session (actix-session's `TtlExtensionPolicy` decides that, through `update_ttl`).
//! * **`update` is an atomic check-in** (check out, waiting for a concurrent `update` or
//!   `delete` of the same session up to the store's lock timeout; replace state and expiry;
//!   rename). If the session no longer exists (expired, deleted, never there) the state is
//!   saved as a new session and the new key returned, which is what actix-session's
//!   middleware expects (its Redis store does the same). A session whose file does not decode
//!   as a session dictionary (which `load` reported as a deserialization error, so the
//!   middleware started afresh) is deleted and replaced the same way.
//! * **`update_ttl`** (what `TtlExtensionPolicy::OnEveryRequest` calls on every request that
//!   did not change the state) neither waits nor rewrites when the ttl is the session's own:
//!   sessions are stored with the sliding [`Expiry::Idle`]\(ttl), and extending one is
//!   [`Store::mark_active`], which records the activity in the file's modification time at
//!   most once per quarter ttl (design §3.7). A different ttl rewrites the header's expiry
//!   under the lock. For a missing or expired key it does nothing and succeeds: there is
//!   nothing to extend, and the middleware will start a new session on the next request.
//! * **`delete` takes the lock** ([`Store::delete`]): it waits for a concurrent `update` and
//!   never removes a session from under it. Deleting a missing session is not an error.
//! * **Errors are mapped once** from [`ActixStoreError`] into actix-session's: data that is not
//!   a session record is `LoadError::Deserialization` (the middleware then starts an empty
//!   session), everything else `Other`; each is an [`anyhow::Error`] whose context says what
//!   failed and whose cause is sessiondir's error, naming the file or id and the reason.
//!
//! ## What is not
//!
//! * **No lock across a request.** actix-session loads the state before the handler and
//!   updates it after; the trait has no way to hold the lock in between. Two concurrent
//!   requests on one session therefore still end "last writer wins": each update is atomic (no
//!   torn file, no mixed version), but one request's changes can overwrite the other's. For a
//!   session checked out for the whole request (no lost update across worker processes), see
//!   the `axum` feature: `sessiondir::axum`, a layer with a check-out extractor.
//! * **A delete can be undone by a concurrent update.** If one request purges a session
//!   (logout) while another request on it is still running, the second one's `update` finds
//!   it gone and saves its state as a new session, whose key goes back to that client in a
//!   cookie. Only a lock held across both requests could order them.
//! * **Expired files stay until collected**: an expired session loads as missing, and `update`
//!   moves the state to a new key without removing the old file; run
//!   [`Store::delete_expired`] (or `sessiondir gc --expired`) periodically.
//! * **TTL**: the header keeps milliseconds; a zero or negative ttl has already passed (the
//!   session loads as missing), and one too long for `SystemTime` never expires.
//!
//! ## Storage
//!
//! The state (`HashMap<String, String>` of JSON texts) is stored as a [`Dict`] whose every
//! entry is `key -> Value::Text(<the JSON text>)`, the texts byte for byte as actix-session
//! gave them (never parsed), the same representation as the `tower-sessions` adapter's: this
//! adapter loads a tower session given its sessiondir id
//! (`sessiondir::tower::TowerStore::session_id`), and `sessiondir show` and
//! [`Store::load::<Dict>`](Store::load) read both. Native [`Dict`] entries (an axum handler's
//! [`Dict::increment`], say) load as their JSON text: the one record format of
//! [`Dict::get_as`]. The ttl becomes the header's sliding
//! [`Expiry::Idle`]\(ttl) (a zero or negative ttl: [`Expiry::At`]\(now), already passed).

use std::collections::HashMap;
use std::path::PathBuf;

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::cookie::time::Duration;

use super::json_record;
use crate::{Dict, Error, Expiry, SessionId, Store};

/// An actix-session session store on a sessiondir [`Store`].
///
/// Cheap to clone (the store is one `Arc`). See the [module documentation](self) for the
/// contract and the record format.
///
/// # Panics
///
/// Its methods use Tokio's `spawn_blocking`, which panics outside a Tokio runtime; actix-web
/// (through actix-rt) always runs them inside one.
#[derive(Clone, Debug)]
pub struct ActixStore {
    store: Store,
}

impl ActixStore {
    /// A session store for actix-session on `store`.
    pub fn new(store: Store) -> Self {
        ActixStore { store }
    }

    /// The underlying sessiondir store (for maintenance: `tidy`, `gc`, statistics).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Runs `op` on Tokio's blocking pool, never on the executor's threads.
    async fn run<T, F>(&self, op: F) -> Result<T, ActixStoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, ActixStoreError> + Send + 'static,
    {
        let store = self.store.clone();
        actix_web::rt::task::spawn_blocking(move || op(&store))
            .await
            .map_err(ActixStoreError::Task)?
    }
}

impl SessionStore for ActixStore {
    /// The session's state, or `None` if the key is invalid, missing or expired. Lock-free.
    async fn load(
        &self,
        session_key: &SessionKey,
    ) -> Result<Option<HashMap<String, String>>, LoadError> {
        let Some(id) = parse(session_key) else {
            return Ok(None);
        };
        let state = self
            .run(move |store| {
                // Not `load`: a read extends a session only if the middleware's policy asks for
                // it (`update_ttl`), so this read honours recorded activity but records none.
                let Some(dict) = store
                    .inspect::<Dict>(&id)?
                    .filter(|snapshot| !snapshot.info.is_expired())
                    .map(|snapshot| snapshot.data)
                else {
                    return Ok(None);
                };
                json_record::texts_from_dict(&dict).map(Some).map_err(|e| {
                    ActixStoreError::NotARecord {
                        path: store.session_path(&id),
                        detail: e.to_string(),
                    }
                })
            })
            .await?;
        Ok(state)
    }

    /// Creates a session (new id from the OS CSPRNG, never overwriting) and returns its key.
    async fn save(
        &self,
        session_state: HashMap<String, String>,
        ttl: &Duration,
    ) -> Result<SessionKey, SaveError> {
        let dict = json_record::dict_from_texts(session_state);
        let ttl = *ttl;
        let id = self
            .run(move |store| Ok(store.create_with_expiry(&dict, expires_after(&ttl))?))
            .await?;
        Ok(key_of(&id)?)
    }

    /// Replaces the state with an atomic check-in; a session that no longer exists is saved as
    /// a new one and its new key returned.
    async fn update(
        &self,
        session_key: SessionKey,
        session_state: HashMap<String, String>,
        ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        let id = parse(&session_key);
        let dict = json_record::dict_from_texts(session_state);
        let ttl = *ttl;
        let created = self
            .run(move |store| update_blocking(store, id, dict, &ttl))
            .await?;
        match created {
            None => Ok(session_key),
            Some(id) => Ok(key_of(&id)?),
        }
    }

    /// Extends the session by `ttl` from now without touching the state: lock-free and without
    /// a rewrite when `ttl` is the session's own ([`Store::mark_active`]), else the header's
    /// expiry rewritten under the lock. A missing, expired or invalid key: nothing to extend,
    /// `Ok(())`.
    async fn update_ttl(&self, session_key: &SessionKey, ttl: &Duration) -> anyhow::Result<()> {
        let Some(id) = parse(session_key) else {
            return Ok(());
        };
        let ttl = *ttl;
        self.run(move |store| {
            let expiry = expires_after(&ttl);
            match store.mark_active(&id)? {
                None => return Ok(()),
                Some(info) if info.expiry() == expiry => return Ok(()),
                Some(_) => {}
            }
            match store.set_expiry(&id, expiry) {
                Ok(_) => Ok(()),
                Err(e) if e.is_gone() => Ok(()),
                Err(e) => Err(e.into()),
            }
        })
        .await
        .map_err(|e| e.into_anyhow("extend the ttl of"))
    }

    /// Deletes the session, waiting for a concurrent `update` of it first. A missing or invalid
    /// key: `Ok(())`.
    async fn delete(&self, session_key: &SessionKey) -> anyhow::Result<()> {
        let Some(id) = parse(session_key) else {
            return Ok(());
        };
        self.run(move |store| Ok(store.delete(&id).map(drop)?))
            .await
            .map_err(|e| e.into_anyhow("delete"))
    }
}

/// `update` under the store's lock. `Ok(None)`: updated in place; `Ok(Some(id))`: saved as the
/// new session `id`. The expiry counts from when the lock was obtained.
fn update_blocking(
    store: &Store,
    id: Option<SessionId>,
    dict: Dict,
    ttl: &Duration,
) -> Result<Option<SessionId>, ActixStoreError> {
    if let Some(id) = id {
        match store.checkout::<Dict>(&id) {
            Ok(mut checkout) => {
                *checkout.data_mut() = dict;
                checkout.set_expiry(expires_after(ttl));
                checkout.check_in().map_err(Error::from)?;
                return Ok(None);
            }
            // Expired, deleted (before or while we waited) or never there: save as new.
            Err(e) if e.is_gone() => {}
            // Not a session dictionary: `load` said so and the middleware started afresh;
            // remove the undecodable file (under its lock) and save as new.
            Err(Error::Decode { .. }) => {
                store.delete(&id)?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Some(store.create_with_expiry(&dict, expires_after(ttl))?))
}

/// The sessiondir id a key names, if it is one; `None` for anything else, without building a
/// path from it.
fn parse(key: &SessionKey) -> Option<SessionId> {
    SessionId::parse(key.as_ref()).ok()
}

/// The key of session `id` (its 32 characters; always accepted by actix-session).
fn key_of(id: &SessionId) -> Result<SessionKey, ActixStoreError> {
    SessionKey::try_from(id.as_str().to_owned()).map_err(|e| ActixStoreError::Key {
        id: *id,
        reason: format!("{:#}", anyhow::Error::new(e)),
    })
}

/// `ttl` as the header's expiry: sliding by `ttl`; a zero or negative ttl has already passed
/// (now), and one too long for the header's milliseconds never ends.
fn expires_after(ttl: &Duration) -> Expiry {
    match std::time::Duration::try_from(*ttl) {
        Ok(ttl) if !ttl.is_zero() && ttl.as_millis() < u128::from(u64::MAX / 2) => {
            Expiry::Idle(ttl)
        }
        Ok(ttl) if !ttl.is_zero() => Expiry::Never,
        _ => json_record::expires_after(std::time::Duration::ZERO),
    }
}

/// What can go wrong in [`ActixStore`]; converted once into actix-session's errors, as the
/// cause of an [`anyhow::Error`] with context.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ActixStoreError {
    /// The store failed; the error names the session's file or id and the cause.
    #[error(transparent)]
    Store(#[from] Error),
    /// The session file holds a dictionary that is not a session record (an entry with no
    /// JSON form: a non-finite float).
    #[error("session file {} is not a web framework session record: {detail}", path.display())]
    NotARecord {
        /// The session file.
        path: PathBuf,
        /// Which entry, and what is wrong with it.
        detail: String,
    },
    /// The blocking task running the store call panicked or was cancelled.
    #[error("the blocking task of a session store call failed: {0}")]
    Task(#[source] actix_web::rt::task::JoinError),
    /// actix-session refused a sessiondir id as a key (it accepts any string under 4064
    /// bytes, so this does not happen).
    #[error("actix-session refused session id {id} as a key: {reason}")]
    Key {
        /// The id.
        id: SessionId,
        /// actix-session's reason.
        reason: String,
    },
}

impl ActixStoreError {
    /// Data that is not a session record, as opposed to a store that failed.
    fn is_undecodable(&self) -> bool {
        matches!(
            self,
            ActixStoreError::NotARecord { .. } | ActixStoreError::Store(Error::Decode { .. })
        )
    }

    /// Data that could not be encoded.
    fn is_unencodable(&self) -> bool {
        matches!(self, ActixStoreError::Store(Error::Encode { .. }))
    }

    /// The one conversion: this error as the cause, "sessiondir: cannot <doing> the session"
    /// as the context.
    fn into_anyhow(self, doing: &str) -> anyhow::Error {
        anyhow::Error::new(self).context(format!("sessiondir: cannot {doing} the session"))
    }
}

impl From<ActixStoreError> for LoadError {
    fn from(error: ActixStoreError) -> Self {
        if error.is_undecodable() {
            LoadError::Deserialization(error.into_anyhow("decode"))
        } else {
            LoadError::Other(error.into_anyhow("load"))
        }
    }
}

impl From<ActixStoreError> for SaveError {
    fn from(error: ActixStoreError) -> Self {
        if error.is_unencodable() {
            SaveError::Serialization(error.into_anyhow("encode"))
        } else {
            SaveError::Other(error.into_anyhow("save"))
        }
    }
}

impl From<ActixStoreError> for UpdateError {
    fn from(error: ActixStoreError) -> Self {
        if error.is_unencodable() {
            UpdateError::Serialization(error.into_anyhow("encode"))
        } else {
            UpdateError::Other(error.into_anyhow("update"))
        }
    }
}
