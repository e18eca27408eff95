//! The directory store behind the [`Backend`] API: every method delegates to `Store`'s
//! inherent one (dispatched statically, so code that names `Store` pays nothing for the seam).

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::handle::Store;
use super::locked::Locked;
use super::walk::SessionIds;
use crate::backend::{Backend, Checkout, GcReport, sealed};
use crate::error::Error;
use crate::id::SessionId;
use crate::info::{Forward, SessionInfo, Snapshot};
use crate::observer::LockStats;
use crate::settings::Expiry;

impl sealed::Sealed for Store {}

impl Backend for Store {
    type Held = Locked;
    type Ids = SessionIds;

    fn create<T: Serialize>(&self, data: &T) -> Result<SessionId, Error> {
        Store::create(self, data)
    }
    fn create_with_expiry<T: Serialize>(
        &self,
        data: &T,
        expiry: Expiry,
    ) -> Result<SessionId, Error> {
        Store::create_with_expiry(self, data, expiry)
    }
    fn create_with_id<T: Serialize>(
        &self,
        id: &SessionId,
        data: &T,
        expiry: Expiry,
    ) -> Result<(), Error> {
        Store::create_with_id(self, id, data, expiry)
    }
    fn load<T: DeserializeOwned>(&self, id: &SessionId) -> Result<Option<T>, Error> {
        Store::load(self, id)
    }
    fn snapshot<T: DeserializeOwned>(&self, id: &SessionId) -> Result<Option<Snapshot<T>>, Error> {
        Store::snapshot(self, id)
    }
    fn exists(&self, id: &SessionId) -> Result<bool, Error> {
        Store::exists(self, id)
    }
    fn info(&self, id: &SessionId) -> Result<Option<SessionInfo>, Error> {
        Store::info(self, id)
    }
    fn mark_active(&self, id: &SessionId) -> Result<Option<SessionInfo>, Error> {
        Store::mark_active(self, id)
    }
    fn checkout<T: DeserializeOwned>(&self, id: &SessionId) -> Result<Checkout<T, Store>, Error> {
        Store::checkout(self, id)
    }
    fn try_checkout<T: DeserializeOwned>(
        &self,
        id: &SessionId,
    ) -> Result<Checkout<T, Store>, Error> {
        Store::try_checkout(self, id)
    }
    fn delete(&self, id: &SessionId) -> Result<bool, Error> {
        Store::delete(self, id)
    }
    fn cycle_id(&self, id: &SessionId) -> Result<SessionId, Error> {
        Store::cycle_id(self, id)
    }
    fn forwarded(&self, id: &SessionId) -> Result<Option<Forward>, Error> {
        Store::forwarded(self, id)
    }
    fn delete_expired_forwards(&self) -> Result<u64, Error> {
        Store::delete_expired_forwards(self)
    }
    fn touch(&self, id: &SessionId) -> Result<SessionInfo, Error> {
        Store::touch(self, id)
    }
    fn set_expiry(&self, id: &SessionId, expiry: Expiry) -> Result<SessionInfo, Error> {
        Store::set_expiry(self, id, expiry)
    }
    fn ids(&self) -> Self::Ids {
        Store::ids(self)
    }
    fn delete_expired(&self) -> Result<GcReport, Error> {
        Store::delete_expired(self)
    }
    fn delete_idle(&self, idle: Duration) -> Result<GcReport, Error> {
        Store::delete_idle(self, idle)
    }
    fn lock_stats(&self) -> LockStats {
        Store::lock_stats(self)
    }
}
