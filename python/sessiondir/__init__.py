"""sessiondir: file-based web sessions with cross-process check-out.

One file per session in a directory; a session is *checked out* (an exclusive ``flock`` held by
one thread of one process at a time) to change it, and *checked in* by an atomic rename, so
concurrent requests on one session queue instead of overwriting each other, and a reader never
sees half a file. Reads (:meth:`Store.load`) take no lock. This package is a thin binding of the
Rust library of the same name: the files are the same, and a Rust process (the axum layer, the
tower-sessions and actix-session adapters) or the ``sessiondir`` command can share the directory.

Example::

    import sessiondir

    store = sessiondir.Store("/var/lib/myapp/sessions", idle_expiry=30 * 60)
    sid = store.create({"user": "ada", "cart": []})
    with store.checkout(sid) as session:   # waits while another request holds it
        session["cart"].append("tea")
    # checked in here; on an exception inside the block, released without writing
    assert store.load(sid) == {"user": "ada", "cart": ["tea"]}

Session data is a dict with ``str`` keys of JSON-compatible values (``str``, ``int`` of any size,
``float`` other than NaN and infinities, ``bool``, ``None``, ``list``, ``tuple`` (read back as a
list), ``dict`` with ``str`` keys); anything else is refused with ``TypeError`` or ``ValueError``
naming the key, before anything is written. Each top-level value is stored as JSON text, the
record format of the Rust web adapters; see ``docs/design.md``, "Python binding".

Django: ``SESSION_ENGINE = "sessiondir.django"`` and :mod:`sessiondir.django.middleware`.
Flask: :mod:`sessiondir.flask`. session3 (Quixote 3): :mod:`sessiondir.session3`. Webware for
Python 3: :mod:`sessiondir.webware.SessionSessiondirStore`.
"""

from __future__ import annotations

import base64
import datetime as _dt
import os
import secrets
import time
from collections.abc import Iterator, Mapping, MutableMapping
from types import TracebackType
from typing import Any, Optional, Union

from . import _native, errors
from .errors import (
    AlreadyExists,
    Busy,
    ConfigError,
    Conflict,
    Corrupt,
    Deleted,
    EncodeError,
    Error,
    Expired,
    InvalidId,
    IoError,
    LockLost,
    LockTimeout,
    NotFound,
    TooLarge,
    UnsupportedVersion,
)

GcReport = _native.GcReport
TidyReport = _native.TidyReport
SessionInfo = _native.SessionInfo

__version__: str = _native.__version__

__all__ = [
    "Store",
    "Checkout",
    "SessionInfo",
    "GcReport",
    "TidyReport",
    "new_id",
    "is_valid_id",
    # The exception classes, re-exported from .errors.
    *errors.__all__,
]

#: Seconds (``int``/``float``) or a ``timedelta``.
Seconds = Union[int, float, _dt.timedelta]
#: When a session expires: a ``datetime`` (naive means local time), or seconds / a
#: ``timedelta`` from now (negative: already expired).
ExpiresAt = Union[_dt.datetime, int, float, _dt.timedelta]

_ALPHABET = frozenset("abcdefghijklmnopqrstuvwxyz234567")


def new_id() -> str:
    """A fresh session id in sessiondir's format: 160 bits from ``secrets``, as 32 characters
    of lower-case base32 (the same rendering as the Rust ``SessionId::from_bytes``)."""
    return base64.b32encode(secrets.token_bytes(20)).decode("ascii").lower()


def is_valid_id(value: object) -> bool:
    """Whether ``value`` is a well-formed session id (checks the form only, not existence)."""
    return isinstance(value, str) and len(value) == 32 and _ALPHABET.issuperset(value)


def _seconds(what: str, value: Optional[Seconds]) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"{what} must be seconds (int or float) or a timedelta, not {type(value).__name__}"
        )
    return float(value)


def _timestamp(expires: Optional[ExpiresAt]) -> Optional[float]:
    """An expiry argument → a Unix timestamp (``None`` stays ``None``)."""
    if expires is None:
        return None
    if isinstance(expires, _dt.datetime):
        return expires.timestamp()
    seconds = _seconds("expires", expires)
    assert seconds is not None
    return time.time() + seconds


class Store:
    """A session directory, created if missing.

    :param path: the directory (one per application; every process of it opens the same one).
    :param idle_expiry: a sliding lifetime for sessions made by :meth:`create` (seconds or a
        ``timedelta``): every check-in and :meth:`touch` moves the expiry to now + this.
        ``None`` (default): sessions never expire unless given ``expires=``.
    :param lock_timeout: how long :meth:`checkout` (and :meth:`delete`, :meth:`cycle_id`,
        :meth:`touch`) waits for another holder before :class:`LockTimeout`. Default 30 s.
    :param durability: ``"none"`` (default: atomic rename, no sync), ``"file_data"``
        (``fdatasync`` before the rename) or ``"file_and_directory"`` (also ``fsync`` the
        directory after it); see the library's ``Durability``.
    :param max_session_size: the largest encoded session accepted, in bytes (default 1 MiB).
    :param allow_network_fs: accept a directory on NFS, SMB, FUSE... (run ``sessiondir
        doctor`` first).
    :param create_if_missing: create the directory if it does not exist (default true).

    A store is cheap to keep and safe to share between threads. Open it once per process:
    it cannot be pickled, and after ``fork`` the child should open its own.
    """

    def __init__(
        self,
        path: Union[str, os.PathLike[str]],
        *,
        idle_expiry: Optional[Seconds] = None,
        lock_timeout: Seconds = 30.0,
        durability: str = "none",
        max_session_size: Optional[int] = None,
        allow_network_fs: bool = False,
        create_if_missing: bool = True,
    ) -> None:
        timeout = _seconds("lock_timeout", lock_timeout)
        self._native = _native.Store(
            os.fspath(path),
            idle_expiry=_seconds("idle_expiry", idle_expiry),
            lock_timeout=30.0 if timeout is None else timeout,
            durability=durability,
            max_session_size=max_session_size,
            allow_network_fs=allow_network_fs,
            create_if_missing=create_if_missing,
        )

    @property
    def path(self) -> str:
        """The store directory."""
        return str(self._native.path)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return bool(self._native.closed)

    def session_path(self, id: str) -> str:
        """The file of session ``id`` (it may not exist)."""
        return str(self._native.session_path(id))

    def create(
        self,
        data: Mapping[str, Any] = {},  # noqa: B006 (never mutated)
        *,
        expires: Optional[ExpiresAt] = None,
        id: Optional[str] = None,
    ) -> str:
        """Creates a session holding ``data`` and returns its new id.

        ``expires``: a ``datetime``, or seconds / a ``timedelta`` from now; default: the
        store's ``idle_expiry`` (or never). ``id``: create under this id instead of drawing a
        new one (it must come from a CSPRNG, as :func:`new_id`'s do); :class:`AlreadyExists`
        if it is taken. A session is never overwritten by a create.
        """
        return str(self._native.create(data, expires_at=_timestamp(expires), id=id))

    def load(self, id: str) -> Optional[dict[str, Any]]:
        """The last checked-in data of a session, without taking its lock; ``None`` if it is
        missing or expired. Never waits for a holder and never sees a partial write.
        :class:`InvalidId` for a malformed id, :class:`Corrupt` for a damaged file."""
        return self._native.load(id)

    def get(self, id: Optional[str]) -> Optional[dict[str, Any]]:
        """Like :meth:`load`, but a missing or malformed id (a cookie from anywhere) is
        ``None`` too."""
        if id is None or not is_valid_id(id):
            return None
        return self._native.load(id)

    def exists(self, id: str) -> bool:
        """Whether the session exists and has not expired (reads the header only, no lock)."""
        return bool(self._native.exists(id))

    def info(self, id: str) -> Optional[SessionInfo]:
        """A session's header (created, modified, expires, generation), expired or not;
        ``None`` if it does not exist."""
        return self._native.info(id)

    def checkout(self, id: str, *, timeout: Optional[Seconds] = None) -> Checkout:
        """Checks a session out for exclusive use; waits while another thread or process holds
        it, up to ``timeout`` (default the store's ``lock_timeout``; ``0``: do not wait,
        :class:`Busy` if held). Use it as a context manager::

            with store.checkout(sid) as session:
                session["n"] = session.get("n", 0) + 1

        It is checked in when the block ends normally and released without writing if the
        block raises. :class:`NotFound` / :class:`Expired` if there is no such live session,
        :class:`Deleted` if it was deleted while waiting, :class:`LockTimeout` after the
        timeout. The GIL is released while waiting.
        """
        return Checkout(self._native.checkout(id, timeout=_seconds("timeout", timeout)))

    def delete(self, id: str) -> bool:
        """Deletes a session, waiting for its holder first. ``False`` if there was none."""
        return bool(self._native.delete(id))

    def cycle_id(self, id: str) -> str:
        """Moves a session to a new id (against session fixation: call it at login); the old
        id stops existing at once. Returns the new id."""
        return str(self._native.cycle_id(id))

    def touch(self, id: str) -> SessionInfo:
        """Re-applies the session's idle lifetime from now, without changing its data."""
        return self._native.touch(id)

    def set_expiry(self, id: str, expires: Optional[ExpiresAt]) -> SessionInfo:
        """Gives a session a fixed expiry (``None``: never), without changing its data."""
        return self._native.set_expiry(id, _timestamp(expires))

    def ids(self) -> list[str]:
        """Every session id on disk, expired ones included (listed with the GIL released)."""
        return list(self._native.ids())

    def iter_ids(self) -> Iterator[str]:
        """Like :meth:`ids`, streaming in constant memory (one shard directory at a time);
        each step releases the GIL. An iterator is for one thread."""
        return iter(self._native.iter_ids())

    def __iter__(self) -> Iterator[str]:
        return self.iter_ids()

    def __contains__(self, id: object) -> bool:
        return is_valid_id(id) and self.exists(id)  # type: ignore[arg-type]

    def delete_expired(self) -> GcReport:
        """Deletes every expired session nobody holds (Django's ``clearsessions``)."""
        return self._native.delete_expired()

    def delete_idle(self, seconds: Seconds) -> GcReport:
        """Deletes every session not written or touched for longer than ``seconds`` that
        nobody holds."""
        value = _seconds("seconds", seconds)
        assert value is not None
        return self._native.delete_idle(value)

    def tidy(self) -> TidyReport:
        """Removes what crashed writers left behind (temporary files, orphaned lock files),
        never a file a live writer uses."""
        return self._native.tidy()

    def close(self) -> Optional[TidyReport]:
        """Tidies and closes this handle; later calls raise ``ValueError``. Closing twice is
        harmless (the second returns ``None``)."""
        return self._native.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<sessiondir.Store {self.path!r}{' closed' if self.closed else ''}>"


class Checkout(MutableMapping[str, Any]):
    """A session checked out for exclusive use: a mutable mapping of its data.

    Changes (including in place, such as ``session["cart"].append(...)``) are written by
    :meth:`check_in` or :meth:`save`; as a context manager, the block's normal end checks in
    and an exception releases without writing. Nobody else can check the session out, delete
    it or cycle its id until it is checked in or released; :meth:`Store.load` still sees the
    last checked-in version. An unreleased check-out is released when garbage-collected.
    """

    def __init__(self, native: _native.Checkout) -> None:
        self._native = native
        self._data: dict[str, Any] = native.data()

    # The mapping.
    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(key, str):
            raise TypeError(f"session data keys must be str, not {type(key).__name__} {key!r}")
        self._data[key] = value

    def __delitem__(self, key: str) -> None:
        del self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    @property
    def data(self) -> dict[str, Any]:
        """The data being changed (the dict itself, not a copy)."""
        return self._data

    @data.setter
    def data(self, value: dict[str, Any]) -> None:
        self._data = dict(value)

    @property
    def id(self) -> str:
        """The session id (a new one after :meth:`cycle_id`)."""
        return str(self._native.id)

    @property
    def held(self) -> bool:
        """Whether the session is still checked out."""
        return bool(self._native.held)

    def info(self) -> SessionInfo:
        """The header as of check-out or the last :meth:`save`."""
        return self._native.info()

    def set_expiry(self, expires: Optional[ExpiresAt]) -> None:
        """Gives the session a fixed expiry (``None``: never), written by the next save."""
        self._native.set_expiry(_timestamp(expires))

    def set_idle_expiry(self, seconds: Seconds) -> None:
        """Gives the session a sliding idle lifetime, written by the next save."""
        value = _seconds("seconds", seconds)
        assert value is not None
        self._native.set_idle_expiry(value)

    def save(self) -> None:
        """Writes the data atomically and keeps the session checked out."""
        self._native.save(self._data)

    def check_in(self) -> None:
        """Writes the data atomically and releases the session. If the write fails the
        session stays checked out (retry, or :meth:`release`)."""
        self._native.check_in(self._data)

    def release(self) -> None:
        """Releases the session without writing (harmless if already over)."""
        self._native.release()

    def delete(self) -> None:
        """Deletes the session and ends the check-out."""
        self._native.delete()

    def cycle_id(self) -> str:
        """Moves the session, as last written, to a new id and keeps it checked out; unsaved
        changes stay here. Returns the new id."""
        return str(self._native.cycle_id())

    def __enter__(self) -> Checkout:
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        if exc_type is not None or not self.held:
            self.release()
        else:
            self.check_in()

    def __repr__(self) -> str:
        return f"<sessiondir.Checkout {self.id} {'held' if self.held else 'over'} {self._data!r}>"
