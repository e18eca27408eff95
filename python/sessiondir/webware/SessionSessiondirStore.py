"""``SessionSessiondirStore``: a Webware for Python 3 ``SessionStore`` on a sessiondir
directory, with the check-in/check-out strategy that Webware's ``SessionStore`` docstring
leaves as a TO DO ("a check-in/check-out strategy for sessions to prevent concurrent requests
on the same session ... can probably be done at this level").

Settings (``Configs/Application.config``):

``SessionStore = 'sessiondir.webware.SessionSessiondirStore'``
    Selects this store.
``SessiondirPath``
    The session directory (default ``<SessionStoreDir>/sessiondir``). Every process of the
    application (several ``webware serve`` or WSGI workers) opens the same one.
``SessiondirCheckOut``
    ``True`` (default): the strategy below. ``False``: every access reads without a lock and
    every save is an atomic check-out just for the write (last writer wins, as Webware's
    other stores).
``SessiondirLockTimeout``
    Seconds a request waits for another one holding its session (default 30); past it the
    request is answered ``503 Service Unavailable``.
``SessiondirOptions``
    Further :class:`sessiondir.Store` arguments (``durability``, ``max_session_size``...).

**Check-out and check-in.** Webware fetches a request's session with ``store[id]`` when the
servlet first calls ``transaction.session()``, and hands it back with ``storeSession(session)``
when the transaction sleeps (in a ``finally``: also after an exception, as Webware saves
sessions). This store makes ``store[id]`` a *check-out*: the session file is locked for the
calling thread, and another thread or process asking for the same session waits until
``storeSession`` checks it in (writes it, if ``AlwaysSaveSessions`` or the session is dirty,
and releases it). Concurrent requests on one session therefore queue, and each sees the one
before it. A thread that asks again for a session it holds gets the same object back.
``storeSession`` releases every check-out the thread still has, so a servlet that looked at
another session with ``application.session(other_id)`` does not keep it. (One that does so in
a request without a session of its own keeps it until its thread's next ``storeSession`` or
until the check-out is garbage-collected; use ``store.get(other_id)``, which reads without a
lock.) ``get``, ``items``, ``values``, ``in`` and iteration read without a lock and never wait.

**Expiry.** As in Webware's other stores, a session lives until ``cleanStaleSessions`` (the
session sweeper) finds ``lastAccessTime() + timeout()`` past (or ``timeout() == 0``); it then
calls the session's ``expiring()`` and deletes the file. A session a request holds is not stale
and is skipped, so several processes may sweep the same directory.

**Encoding.** Sessions go through the store's ``encoder()``/``decoder()`` (pickle by default;
``setEncoderDecoder`` as Webware defines it), kept as base64 text in the record together with
the session key; see :mod:`sessiondir._objects` for the keys' file names and for what pickle
means for who may write the directory.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Iterator, Optional

import webware  # type: ignore[import-untyped]

import sessiondir
from sessiondir import _objects
from sessiondir.errors import AlreadyExists, Busy, Corrupt, Expired, LockTimeout, NotFound

webware.addToSearchPath()  # Webware's own modules import each other by their bare names

from HTTPExceptions import HTTPServiceUnavailable  # type: ignore[import-not-found]  # noqa: E402
from MiscUtils import NoDefault  # type: ignore[import-not-found]  # noqa: E402
from SessionStore import SessionStore  # type: ignore[import-not-found]  # noqa: E402

__all__ = ["SessionSessiondirStore"]


class SessionSessiondirStore(SessionStore):  # type: ignore[misc]
    """Webware sessions in a sessiondir directory, checked out by the request that uses them
    (see the module documentation)."""

    def __init__(self, app: Any, restoreFiles: Optional[bool] = None) -> None:
        SessionStore.__init__(self, app)
        path = app.setting("SessiondirPath", None) or os.path.join(app._sessionDir, "sessiondir")
        self._checkOut = bool(app.setting("SessiondirCheckOut", True))
        self._store = sessiondir.Store(
            path,
            lock_timeout=app.setting("SessiondirLockTimeout", 30),
            **dict(app.setting("SessiondirOptions", None) or {}),
        )
        self._held = threading.local()
        if restoreFiles is None:
            restoreFiles = self._retain
        if not restoreFiles:
            self.clear()

    # Helpers.

    def store(self) -> sessiondir.Store:
        """The :class:`sessiondir.Store` underneath."""
        return self._store

    def _codec(self) -> _objects.PickleCodec:
        return _objects.PickleCodec(self.encoder(), self.decoder())

    def _holding(self) -> dict[str, tuple[sessiondir.Checkout, Any]]:
        held = getattr(self._held, "sessions", None)
        if held is None:
            held = self._held.sessions = {}
        return held

    def _load(self, key: str) -> Any:
        """The session, read without a lock; ``KeyError`` if missing (a damaged file is
        reported to the application, removed and missing, as Webware's file store does)."""
        try:
            value = _objects.load(self._store, key, self._codec())
        except Corrupt:
            print("Error loading session from disk:", key)
            self.application().handleException()
            self._store.delete(_objects.id_for_key(key))
            raise KeyError(key) from None
        if value is None:
            raise KeyError(key)
        return value

    def _encode(self, key: str, value: Any) -> dict[str, Any]:
        return self._codec().encode(key, value)

    # The check-out strategy.

    def checkOut(self, key: str) -> Any:
        """The session ``key``, checked out for this thread until :meth:`checkIn` (or
        ``storeSession``); waits while another thread or process holds it. ``KeyError`` if
        there is none; :class:`HTTPServiceUnavailable` (503) past ``SessiondirLockTimeout``."""
        held = self._holding()
        if key in held and held[key][0].held:
            return held[key][1]
        try:
            checkout = self._store.checkout(_objects.id_for_key(key))
        except (NotFound, Expired):
            raise KeyError(key) from None
        except LockTimeout as err:
            raise HTTPServiceUnavailable(str(err)) from err
        if checkout.data.get("key") != key:
            checkout.release()
            raise KeyError(key)
        try:
            value = _objects.decode(self._store, key, checkout.data, self._codec())
        except Corrupt:
            checkout.delete()
            print("Error loading session from disk:", key)
            self.application().handleException()
            raise KeyError(key) from None
        held[key] = (checkout, value)
        return value

    def checkIn(self, session: Any) -> None:
        """Writes ``session`` (if ``AlwaysSaveSessions`` or it is dirty) and releases this
        thread's check-out of it; without one, writes by a check-out just for the write. An
        invalidated session (``timeout() == 0``) is deleted instead of written."""
        key = session.identifier()
        entry = self._holding().pop(key, None)
        try:
            if session.timeout() == 0:  # invalidated: gone now rather than at the next sweep
                if entry is not None:
                    entry[0].delete()
                else:
                    self._store.delete(_objects.id_for_key(key))
                return
            self._write(key, session, entry[0] if entry else None)
        finally:
            if entry is not None:
                entry[0].release()

    def releaseAll(self) -> None:
        """Releases, without writing, every check-out this thread still holds."""
        held = self._holding()
        while held:
            held.popitem()[1][0].release()

    def _write(self, key: str, value: Any, checkout: Optional[sessiondir.Checkout]) -> None:
        dirty = value.isDirty()
        if not (self._alwaysSave or dirty):
            return
        if dirty:
            value.setDirty(False)
        try:
            _objects.write(self._store, key, self._encode(key, value), held=checkout)
        except Exception:
            if dirty:
                value.setDirty()
            raise

    # Dictionary-style access.

    def __len__(self) -> int:
        return len(self.keys())

    def __getitem__(self, key: str) -> Any:
        """The session ``key``: checked out for this thread if ``SessiondirCheckOut`` (see the
        module documentation), else read without a lock. ``KeyError`` if there is none."""
        if self._checkOut:
            return self.checkOut(key)
        return self._load(key)

    def __setitem__(self, key: str, value: Any) -> None:
        """Saves ``value`` under ``key`` now (if ``AlwaysSaveSessions`` or it is dirty),
        through this thread's check-out if it holds one."""
        entry = self._holding().get(key)
        if entry is not None:
            self._holding()[key] = (entry[0], value)
        self._write(key, value, entry[0] if entry else None)

    def __delitem__(self, key: str) -> None:
        """Deletes the session, calling its ``expiring()`` first (``KeyError`` if missing)."""
        entry = self._holding().pop(key, None)
        if entry is None:
            session = self.checkOut(key)  # waits for a holder
            entry = self._holding().pop(key)
        else:
            session = entry[1]
        try:
            if not session.isExpired():
                session.expiring()
        finally:
            entry[0].delete()

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._store.exists(_objects.id_for_key(key))

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def keys(self) -> list[str]:
        """The keys of every stored session (each record read without a lock)."""
        return _objects.keys(self._store)

    def clear(self) -> None:
        """Deletes every session in the directory."""
        self.releaseAll()
        for sid in self._store.ids():
            self._store.delete(sid)

    def get(self, key: str, default: Any = None) -> Any:
        """The session, read without a lock, or ``default``."""
        try:
            return self._load(key)
        except KeyError:
            return default

    def setdefault(self, key: str, default: Any = None) -> Any:
        """The stored session ``key``, or ``default`` stored under it (atomically: of two
        concurrent callers, one stores and both get the stored one)."""
        try:
            return self._load(key)
        except KeyError:
            if default is None:
                return None
        try:
            self._store.create(self._encode(key, default), id=_objects.id_for_key(key))
        except AlreadyExists:
            return self._load(key)
        return default

    def pop(self, key: str, default: Any = NoDefault) -> Any:
        """Removes and returns the session ``key`` (without calling ``expiring()``), or returns
        ``default``; ``KeyError`` if missing and no default."""
        try:
            value = self._load(key)
        except KeyError:
            if default is NoDefault:
                raise
            return default
        entry = self._holding().pop(key, None)
        if entry is not None:
            entry[0].delete()
        else:
            self._store.delete(_objects.id_for_key(key))
        return value

    # Application support.

    def storeSession(self, session: Any) -> None:
        """Checks the transaction's session in (see :meth:`checkIn`) and releases any other
        check-out this thread still holds."""
        try:
            self.checkIn(session)
        finally:
            self.releaseAll()

    def storeAllSessions(self) -> None:
        """Nothing to do: every session is on disk once checked in."""

    def cleanStaleSessions(self, _task: Any = None) -> None:
        """Deletes the sessions whose ``lastAccessTime() + timeout()`` has passed (or whose
        timeout is 0), calling their ``expiring()``; one a request holds is skipped."""
        now = time.time()
        codec = self._codec()
        for sid in self._store.ids():
            try:
                record = self._store.load(sid)
                if record is None or not isinstance(record.get("key"), str):
                    continue
                if not _stale(_objects.decode(self._store, record["key"], record, codec), now):
                    continue
                checkout = self._store.checkout(sid, timeout=0)
            except (Busy, NotFound, Corrupt):
                continue  # in use by a request, gone meanwhile, or not a session of ours
            try:
                session = _objects.decode(self._store, record["key"], checkout.data, codec)
                if _stale(session, now):  # not touched since the lock-free read
                    if not session.isExpired():
                        session.expiring()
                    checkout.delete()
            except Corrupt:
                continue
            finally:
                checkout.release()


def _stale(session: Any, now: float) -> bool:
    try:
        timeout = session.timeout()
        return timeout is not None and (timeout == 0 or now >= session.lastAccessTime() + timeout)
    except AttributeError as err:
        raise ValueError(f"Not a Session object: {session!r}") from err
