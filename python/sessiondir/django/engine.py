"""``SessionStore``: Django's ``SessionBase`` on a sessiondir directory.

Settings (all optional but the first in production):

``SESSIONDIR_PATH``
    The session directory; default ``<tempdir>/django-sessiondir`` (like Django's file
    backend, which defaults to the temporary directory).
``SESSIONDIR_LOCK_TIMEOUT``
    Seconds a check-out waits for another request holding the session (default 30).
``SESSIONDIR_DURABILITY``
    ``"none"`` (default), ``"file_data"`` or ``"file_and_directory"``.
``SESSIONDIR_OPTIONS``
    Further keyword arguments of :class:`sessiondir.Store` (``max_session_size``,
    ``allow_network_fs``).

How Django's operations map onto the store:

* ``load`` reads the session without a lock, unless the session is to be held (the
  middleware's writer requests; see :meth:`SessionStore.hold`), in which case it checks the
  session out and keeps it until :meth:`SessionStore.release`. A missing, expired, malformed or
  damaged session loads as empty and its key is dropped (a damaged one is logged to
  ``django.security.SuspiciousSession``, as Django does for undecodable data).
* ``save`` writes through the held check-out, or else checks the session out just for the
  write. It never resurrects a session deleted meanwhile (``UpdateError``), and
  ``save(must_create=True)`` never overwrites one (``CreateError``).
* The expiry Django computes (``get_expiry_age()``, from ``SESSION_COOKIE_AGE`` or
  ``set_expiry``) is written into the session file's header at every save, so the store's own
  garbage collection (``clearsessions`` → ``clear_expired``) and lock-free reads honour it.
* ``cycle_key`` moves the session file to a new id (one rename), keeping the check-out.
* Session keys are sessiondir ids (32 characters of ``[a-z2-7]``, 160 random bits); any
  other key is treated as missing.

Data is stored as the Rust web adapters' JSON record (one JSON text per top-level key), not
through ``SESSION_SERIALIZER``: values must be JSON-compatible, as with Django's default
``JSONSerializer``, and non-``str`` keys are refused instead of silently turned into strings.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from typing import Any, Optional

from django.conf import settings
from django.contrib.sessions.backends.base import CreateError, SessionBase, UpdateError

import sessiondir
from sessiondir import _native
from sessiondir.errors import AlreadyExists, Corrupt, InvalidId, NotFound

__all__ = ["SessionStore", "get_store"]

_stores: dict[tuple[Any, ...], sessiondir.Store] = {}
_stores_lock = threading.Lock()


def _forget_stores() -> None:
    # A forked child opens its own handles (the parent's in-process lock queue is not its).
    _stores.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_stores)


def _config() -> tuple[Any, ...]:
    path = getattr(settings, "SESSIONDIR_PATH", None) or os.path.join(
        tempfile.gettempdir(), "django-sessiondir"
    )
    options = getattr(settings, "SESSIONDIR_OPTIONS", None) or {}
    return (
        os.fspath(path),
        float(getattr(settings, "SESSIONDIR_LOCK_TIMEOUT", 30.0)),
        str(getattr(settings, "SESSIONDIR_DURABILITY", "none")),
        tuple(sorted(options.items())),
    )


def get_store() -> sessiondir.Store:
    """The process's :class:`sessiondir.Store` for the current settings (opened once per
    configuration; a test's ``override_settings(SESSIONDIR_PATH=...)`` gets its own)."""
    config = _config()
    store = _stores.get(config)
    if store is None:
        with _stores_lock:
            store = _stores.get(config)
            if store is None:
                path, timeout, durability, options = config
                store = sessiondir.Store(
                    path, lock_timeout=timeout, durability=durability, **dict(options)
                )
                _stores[config] = store
    return store


_security_log = logging.getLogger("django.security.SuspiciousSession")


class SessionStore(SessionBase):
    """Django sessions in a sessiondir directory. Set ``SESSION_ENGINE = "sessiondir.django"``.

    Besides ``SessionBase``'s API it offers :meth:`hold` (check the session out at its first
    access and keep it until :meth:`release`), :meth:`release`, and :attr:`held`.
    """

    def __init__(self, session_key: Optional[str] = None) -> None:
        super().__init__(session_key)
        # Whether the next load checks the session out (set by hold()).
        self._hold = False
        # The native check-out while this request holds the session.
        self._checkout: Optional[_native.Checkout] = None

    # The store and its keys.

    @classmethod
    def _store(cls) -> sessiondir.Store:
        return get_store()

    def _get_new_session_key(self) -> str:
        # sessiondir's id format, so that Django-made keys are valid store ids.
        return sessiondir.new_id()

    def _expires_at(self, data: dict[str, Any]) -> float:
        """The Unix time this session expires if saved now, from Django's rules."""
        return time.time() + self.get_expiry_age(expiry=data.get("_session_expiry"))

    @staticmethod
    def _id(key: Optional[str]) -> Optional[str]:
        return key if sessiondir.is_valid_id(key) else None

    # Holding the session (the middleware's writer requests).

    @property
    def held(self) -> bool:
        """Whether this object holds its session checked out."""
        return self._checkout is not None and bool(self._checkout.held)

    def hold(self) -> None:
        """Check the session out (at its first access, or now if it was already read without
        the lock and not changed since) and keep it until :meth:`release`: from then on no
        other request can change it, so a read-modify-write here loses nothing.

        ``RuntimeError`` if the data was read without the lock *and changed*: those changes
        may rest on a stale read, and re-reading under the lock would drop them.
        """
        self._hold = True
        if self.held or not hasattr(self, "_session_cache"):
            return
        if self.modified:
            raise RuntimeError(
                "the session was changed before it was checked out; call hold() (or use "
                "sessiondir.django.middleware.checkout_session) before changing it"
            )
        # Read lock-free earlier; read again under the lock.
        del self._session_cache

    def release(self) -> None:
        """Release a held session without writing (what was saved stays). Idempotent."""
        checkout, self._checkout = self._checkout, None
        if checkout is not None:
            checkout.release()

    # SessionBase's abstract methods.

    def load(self) -> dict[str, Any]:
        sid = self._id(self._session_key)
        if sid is None:
            self._session_key = None
            return {}
        store = self._store()
        try:
            if self._hold:
                if self._checkout is not None and self._checkout.id == sid:
                    return self._checkout.data()
                self.release()
                checkout = store._native.checkout(sid)
                self._checkout = checkout
                return checkout.data()
            data = store.load(sid)
        except NotFound:  # also Expired, and Deleted while waiting
            data = None
        except Corrupt as e:
            _security_log.warning("Session data corrupted: %s", e)
            self.release()
            data = None
        if data is None:
            self._session_key = None
            return {}
        return data

    def exists(self, session_key: Optional[str]) -> bool:
        sid = self._id(session_key)
        return sid is not None and self._store().exists(sid)

    def create(self) -> None:
        data = self._get_session(no_load=True)  # type: ignore[attr-defined]
        self.release()
        self._session_key = self._store()._native.create(data, expires_at=self._expires_at(data))
        self.modified = True

    def save(self, must_create: bool = False) -> None:
        if self.session_key is None:
            return self.create()
        data = self._get_session(no_load=must_create)  # type: ignore[attr-defined]
        if self.session_key is None:
            # Loading found nothing (expired or deleted meanwhile): a new session.
            return self.create()
        sid = self._id(self.session_key)
        expires_at = self._expires_at(data)
        if must_create:
            if sid is None:
                raise CreateError
            try:
                self._store()._native.create(data, expires_at=expires_at, id=sid)
            except AlreadyExists:
                raise CreateError from None
            return None
        if sid is None:
            raise UpdateError
        checkout = self._checkout
        if checkout is not None and checkout.id == sid:
            checkout.set_expiry(expires_at)
            checkout.save(data)
            return None
        # Not held: check out just for this write (waits for a holder; last writer wins
        # against requests that do not hold the session either).
        try:
            transient = self._store()._native.checkout(sid)
        except NotFound:
            raise UpdateError from None
        try:
            transient.set_expiry(expires_at)
            transient.check_in(data)
        finally:
            transient.release()
        return None

    def delete(self, session_key: Optional[str] = None) -> None:
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        checkout = self._checkout
        if checkout is not None and checkout.id == session_key:
            self._checkout = None
            try:
                checkout.delete()
            except NotFound:
                pass
            return
        sid = self._id(session_key)
        if sid is not None:
            try:
                self._store().delete(sid)
            except InvalidId:
                pass

    def cycle_key(self) -> None:
        data = self._session  # type: ignore[attr-defined]
        sid = self._id(self.session_key)
        new: Optional[str] = None
        checkout = self._checkout
        if checkout is not None and checkout.id == sid:
            new = checkout.cycle_id()
        elif sid is not None:
            try:
                new = self._store().cycle_id(sid)
            except NotFound:
                new = None
        if new is None:
            self.create()
        else:
            self._session_key = new
        self._session_cache = data
        self.modified = True

    @classmethod
    def clear_expired(cls) -> None:
        cls._store().delete_expired()
