//! A [`tower_sessions_core::SessionStore`] (tower-sessions 0.15) on a session directory:
//! [`TowerStore`].
//!
//! ```
//! use sessiondir::Store;
//! use sessiondir::tower::TowerStore;
//! use tower_sessions_core::session::{Id, Record};
//! use tower_sessions_core::SessionStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let tmp = tempfile::tempdir()?;
//! # let dir = tmp.path().join("sessions");
//! let store = TowerStore::new(Store::open(&dir)?);
//! // With tower-sessions: `SessionManagerLayer::new(store)`. By hand:
//! let mut record = Record {
//!     id: Id::default(),
//!     data: [("user".to_owned(), serde_json::json!("ada"))].into_iter().collect(),
//!     expiry_date: time::OffsetDateTime::now_utc() + time::Duration::hours(1),
//! };
//! store.create(&mut record).await?;
//! let loaded = store.load(&record.id).await?.expect("just created");
//! assert_eq!(loaded.data, record.data);
//! # Ok(())
//! # }
//! ```
//!
//! ## What is guaranteed
//!
//! * **No store call runs on the executor's threads.** Every call to the [`Store`] (all of them
//!   block: file I/O, and check-outs that wait for a holder) runs in
//!   `tokio::task::spawn_blocking`. A call made outside a Tokio runtime is an error
//!   ([`TowerStoreError::NoRuntime`]), and a failed blocking task is an error
//!   ([`TowerStoreError::Task`]), never a panic.
//! * **`create` never overwrites.** It stores the record with
//!   [`Store::create_with_id`]; if the id is taken (by a session, or by one being created or
//!   deleted) it draws a new [`Id`] and tries again, and the caller's record carries the id
//!   that was stored.
//! * **`load` returns `None` for a missing or expired session** and takes no lock: it never
//!   waits for a request that has the session checked out, and never sees half a file.
//! * **`save` is an atomic check-in**: check out (waiting for a concurrent `save` or `delete`
//!   of the same session, up to the store's lock timeout), replace the data and the expiry,
//!   check in with a rename. A record that is not stored (never created, deleted meanwhile, or
//!   expired) is stored as it is, as the trait asks: tower-sessions calls `save`, not `create`,
//!   for a session it loaded earlier in the request.
//! * **`delete` takes the lock** ([`Store::delete`]): it waits for a concurrent `save` and
//!   never removes a session from under it.
//! * **Errors are mapped once**, from [`TowerStoreError`] into tower's error:
//!   `Decode` for data that is not a record, `Encode` for data that cannot be written,
//!   `Backend` for everything else; the message keeps sessiondir's own, which names the file
//!   (or the id) and the cause.
//! * [`ExpiredDeletion::delete_expired`] is [`Store::delete_expired`] (skipping sessions that
//!   are checked out).
//!
//! ## What is not
//!
//! * **No lock across a request.** tower-sessions loads a session when a handler first reads
//!   it and saves it after the handler returned; the trait has no way to hold the lock in
//!   between. Two concurrent requests on one session therefore still end "last writer wins":
//!   each save is atomic (no torn file, no mixed version), but one request's changes can
//!   overwrite the other's. For a session checked out for the whole request (no lost update
//!   across worker processes), use the `axum` feature: `sessiondir::axum`, a layer with a
//!   check-out extractor.
//! * **A delete can be undone by a concurrent save.** The trait asks `save` to store a record
//!   that is not stored, so if one request deletes a session (logout, `flush`) while another
//!   request on the same session is still running, the second one's `save` stores it again
//!   under the same id. Only a lock held across both requests could order them.
//! * **Precision**: the session header keeps the expiry in milliseconds, so a loaded
//!   `expiry_date` is the saved one cut to the millisecond. A session without an expiry (not
//!   made by this adapter) loads with the latest `expiry_date` [`time`] can represent.
//! * **Numbers**: values are stored as JSON text (see below); integers of any size `i64` and
//!   `u64` hold and floats come back exactly (serde_json's `float_roundtrip` feature is on).
//!
//! ## Storage
//!
//! **Ids.** tower-sessions issues its own ids ([`Id`], an `i128` drawn from `rand`'s
//! thread-local CSPRNG). The session's sessiondir id is [`SessionId::from_bytes`] of the 16
//! bytes of the `i128` in big-endian order followed by the four bytes `towr`
//! ([`TowerStore::session_id`]). The mapping is injective (the first 16 bytes are the `i128`),
//! the shard comes from the id's random leading bits as usual, and every tower session's id on
//! disk ends in the same six characters. The cookie carries tower's own rendering of the `Id`;
//! the sessiondir id only names the file.
//!
//! **Data.** A record's data (`HashMap<String, serde_json::Value>`) is stored as a
//! [`Dict`] whose every entry is `key -> Value::Text(<the value as JSON text>)`, the same
//! representation as the `actix-session` adapter's, so `sessiondir show` and
//! [`Store::load::<Dict>`](Store::load) read it, and `sessiondir::actix` loads a tower session
//! by its sessiondir id. (The other way round, an actix session's random id is not the image
//! of any tower [`Id`], so tower cannot name it.) Entries that are native [`Dict`] values (an
//! axum handler's [`Dict::increment`], say) load as the JSON values they stand for: the one
//! record format of [`Dict::get_as`]. The expiry date is the header's [`Expiry::At`].

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use time::{OffsetDateTime, PrimitiveDateTime};
use tower_sessions_core::session::{Id, Record};
use tower_sessions_core::session_store::{self, ExpiredDeletion, SessionStore};

use super::json_record::{self, RecordError};
use crate::{Dict, Error, Expiry, SessionId, Store};

/// The four bytes after the `i128` in a tower session's sessiondir id.
const ID_TAG: [u8; 4] = *b"towr";

/// How many ids `create` draws before giving up (a collision of 128-bit random ids is
/// astronomically unlikely; repeated ones mean the random source is broken).
const CREATE_ATTEMPTS: u32 = 16;

/// How many times `save` goes round when the session keeps being created or deleted under it.
const SAVE_ATTEMPTS: u32 = 16;

/// A tower-sessions session store on a sessiondir [`Store`].
///
/// Cheap to clone (the store is one `Arc`). See the [module documentation](self) for the
/// contract, the id mapping and the record format.
#[derive(Clone, Debug)]
pub struct TowerStore {
    store: Store,
}

impl TowerStore {
    /// A session store for tower-sessions on `store`.
    pub fn new(store: Store) -> Self {
        TowerStore { store }
    }

    /// The underlying sessiondir store (for maintenance: `tidy`, `gc`, statistics).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The sessiondir id under which tower session `id` is stored: [`SessionId::from_bytes`] of
    /// the `i128`'s 16 big-endian bytes followed by the bytes `towr`. Injective.
    pub fn session_id(id: &Id) -> SessionId {
        let mut raw = [0u8; 20];
        raw[..16].copy_from_slice(&id.0.to_be_bytes());
        raw[16..].copy_from_slice(&ID_TAG);
        SessionId::from_bytes(raw)
    }

    /// Runs `op` on Tokio's blocking pool, never on the executor's threads.
    async fn run<T, F>(&self, op: F) -> Result<T, TowerStoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, TowerStoreError> + Send + 'static,
    {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| TowerStoreError::NoRuntime)?;
        let store = self.store.clone();
        runtime
            .spawn_blocking(move || op(&store))
            .await
            .map_err(TowerStoreError::Task)?
    }
}

#[async_trait]
impl SessionStore for TowerStore {
    /// Stores a new session, never over an existing one: on an id collision `record.id` is
    /// replaced by a new [`Id`] and creation is tried again.
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let dict = encode(record)?;
        let expiry = expiry_of(record.expiry_date);
        let first = record.id;
        let stored = self
            .run(move |store| {
                let mut id = first;
                for _ in 0..CREATE_ATTEMPTS {
                    match store.create_with_id(&Self::session_id(&id), &dict, expiry) {
                        Ok(()) => return Ok(id),
                        // Taken, or being created or deleted: draw again, as the trait asks.
                        Err(Error::AlreadyExists { .. }) => id = Id::default(),
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(TowerStoreError::NoFreeId {
                    attempts: CREATE_ATTEMPTS,
                })
            })
            .await?;
        record.id = stored;
        Ok(())
    }

    /// Replaces the session's data and expiry with an atomic check-in, storing the record if
    /// it is not stored (never created, deleted, or expired).
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let dict = encode(record)?;
        let expiry = expiry_of(record.expiry_date);
        let id = Self::session_id(&record.id);
        self.run(move |store| save_blocking(store, &id, dict, expiry))
            .await?;
        Ok(())
    }

    /// The session, or `None` if it is missing or expired. Lock-free: never waits.
    async fn load(&self, session_id: &Id) -> session_store::Result<Option<Record>> {
        let tower_id = *session_id;
        let record = self
            .run(move |store| {
                let id = Self::session_id(&tower_id);
                let Some(snapshot) = store.snapshot::<Dict>(&id)? else {
                    return Ok(None);
                };
                let data = json_record::values_from_dict(&snapshot.data)
                    .map_err(|e| TowerStoreError::from_record(store.session_path(&id), e))?;
                Ok(Some(Record {
                    id: tower_id,
                    data,
                    expiry_date: expiry_date_of(snapshot.info.expires),
                }))
            })
            .await?;
        Ok(record)
    }

    /// Deletes the session, waiting for a concurrent `save` of it first. Deleting a missing
    /// session is not an error.
    async fn delete(&self, session_id: &Id) -> session_store::Result<()> {
        let id = Self::session_id(session_id);
        self.run(move |store| Ok(store.delete(&id).map(drop)?))
            .await?;
        Ok(())
    }
}

#[async_trait]
impl ExpiredDeletion for TowerStore {
    /// [`Store::delete_expired`]: removes expired sessions, skipping checked-out ones.
    async fn delete_expired(&self) -> session_store::Result<()> {
        self.run(|store| Ok(store.delete_expired().map(drop)?))
            .await?;
        Ok(())
    }
}

/// `save` under the store's lock: check out, replace, check in; or create if not stored.
fn save_blocking(
    store: &Store,
    id: &SessionId,
    dict: Dict,
    expiry: Expiry,
) -> Result<(), TowerStoreError> {
    for _ in 0..SAVE_ATTEMPTS {
        match store.checkout::<Dict>(id) {
            Ok(mut checkout) => {
                *checkout.data_mut() = dict;
                checkout.set_expiry(expiry);
                return checkout.check_in().map_err(|e| Error::from(e).into());
            }
            // Never stored, or deleted before or while we waited: store the record as new.
            Err(Error::NotFound { .. } | Error::Deleted { .. }) => {
                match store.create_with_id(id, &dict, expiry) {
                    Ok(()) => return Ok(()),
                    // Someone created it (or is creating or deleting it) meanwhile: go round
                    // and check that version out instead.
                    Err(Error::AlreadyExists { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            // Expired but still on disk (until gc): remove it under its lock, then go round
            // and create the record afresh.
            Err(Error::Expired { .. }) => {
                store.delete(id)?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(TowerStoreError::Contended {
        id: *id,
        attempts: SAVE_ATTEMPTS,
    })
}

/// The record's data as the stored [`Dict`].
fn encode(record: &Record) -> Result<Dict, TowerStoreError> {
    json_record::dict_from_values(&record.data)
        .map_err(|e| TowerStoreError::from_record(PathBuf::new(), e))
}

/// A tower expiry date as the header's expiry rule. Dates before 1970 have passed already;
/// a date `SystemTime` cannot hold never comes.
fn expiry_of(date: OffsetDateTime) -> Expiry {
    let Ok(secs) = u64::try_from(date.unix_timestamp()) else {
        return Expiry::At(UNIX_EPOCH);
    };
    match UNIX_EPOCH.checked_add(Duration::new(secs, date.nanosecond())) {
        Some(at) => Expiry::At(at),
        None => Expiry::Never,
    }
}

/// The header's expiry as a tower expiry date; none (or one beyond `time`'s range) is the
/// latest date `time` represents.
fn expiry_date_of(expires: Option<SystemTime>) -> OffsetDateTime {
    expires
        .and_then(|at| {
            let since_epoch = at.duration_since(UNIX_EPOCH).unwrap_or_default();
            let nanos = i128::try_from(since_epoch.as_nanos()).ok()?;
            OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
        })
        .unwrap_or_else(|| PrimitiveDateTime::MAX.assume_utc())
}

/// What can go wrong in [`TowerStore`]; converted once into tower's
/// [`session_store::Error`] (the message keeps the path and the cause).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TowerStoreError {
    /// The store failed; the error names the session's file or id and the cause.
    #[error(transparent)]
    Store(#[from] Error),
    /// A value of the record could not be written as JSON text.
    #[error("cannot write the value of {key:?} as JSON text: {source}")]
    Encode {
        /// The session key.
        key: String,
        /// serde_json's error.
        source: serde_json::Error,
    },
    /// The session file holds data that is not a tower-sessions record (an entry with no JSON
    /// form, or text that is not valid JSON).
    #[error("session file {} is not a web framework session record: {detail}", path.display())]
    NotARecord {
        /// The session file.
        path: PathBuf,
        /// Which entry, and what is wrong with it.
        detail: String,
    },
    /// No Tokio runtime is running, so the store call could not be moved off the executor.
    #[error(
        "sessiondir::tower needs a Tokio runtime: it runs file I/O with tokio::task::spawn_blocking"
    )]
    NoRuntime,
    /// The blocking task running the store call panicked or was cancelled.
    #[error("the blocking task of a session store call failed: {0}")]
    Task(#[source] tokio::task::JoinError),
    /// `create` drew this many ids and every one was taken.
    #[error("no free session id after {attempts} attempts")]
    NoFreeId {
        /// Ids drawn.
        attempts: u32,
    },
    /// `save` found the session created or deleted under it this many times in a row.
    #[error(
        "gave up saving session {id} after {attempts} attempts: it was created or deleted concurrently each time"
    )]
    Contended {
        /// The session's sessiondir id.
        id: SessionId,
        /// Attempts made.
        attempts: u32,
    },
}

impl TowerStoreError {
    /// A record that does not follow the format; `path` (of the file read) is only used for
    /// decoding errors.
    fn from_record(path: PathBuf, error: RecordError) -> Self {
        match error {
            RecordError::Encode { key, source } => TowerStoreError::Encode { key, source },
            other => TowerStoreError::NotARecord {
                path,
                detail: other.to_string(),
            },
        }
    }
}

impl From<TowerStoreError> for session_store::Error {
    fn from(error: TowerStoreError) -> Self {
        let message = format!("sessiondir: {}", chain(&error));
        match error {
            TowerStoreError::Encode { .. } | TowerStoreError::Store(Error::Encode { .. }) => {
                session_store::Error::Encode(message)
            }
            TowerStoreError::NotARecord { .. } | TowerStoreError::Store(Error::Decode { .. }) => {
                session_store::Error::Decode(message)
            }
            _ => session_store::Error::Backend(message),
        }
    }
}

/// The error's message followed by those of its causes that it does not already include.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}
