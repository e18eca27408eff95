"""session3 (Quixote 3) on sessiondir: :class:`DirectorySessionStore`, a
``session3.store.SessionStore``, and :class:`SessionManager`, session3's ``SessionManager``
holding each request's session checked out from ``start_request`` to the end of the request.

Switching from session3's own directory store::

    from sessiondir.session3 import DirectorySessionStore, SessionManager

    store = DirectorySessionStore("/var/lib/myapp/sessions", create=True)
    publisher = Publisher(root, session_manager=SessionManager(store))

The store alone works with session3's own ``SessionManager`` (it is multi-process and
thread safe: every save is an atomic check-in, reads never see half a file), but session3
loads a session when a request starts and saves the whole object when it ends, so two
concurrent requests of one user still overwrite each other's changes (last writer wins) with
any store. :class:`SessionManager` closes that: a request checks its session out at
``start_request`` and checks it in at ``finish_successful_request`` (released without
writing at ``finish_failed_request``), so concurrent requests on one session queue and none
is lost. It also draws 160-bit session ids (session3 draws 64).

Sessions are the application's session objects, pickled as session3's own stores do (see
:mod:`sessiondir._objects` for what that means for who may write the directory), or, with
``serializer="json"``, kept as the object's ``__dict__`` in JSON (every attribute must then be
JSON-compatible: ``user`` a string or a dict, not an object) and rebuilt into
``session_class``.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Collection, Iterator
from typing import Any, Optional, Union

from quixote import get_publisher, get_request, get_response  # type: ignore[import-untyped]
from quixote.errors import PublishError  # type: ignore[import-untyped]
from session3.Session import Session  # type: ignore[import-untyped]
from session3.SessionManager import SessionManager as _SessionManager  # type: ignore[import-untyped]
from session3.store.SessionStore import SessionStore  # type: ignore[import-untyped]

import sessiondir
from sessiondir import _objects
from sessiondir.errors import Corrupt, Expired, LockTimeout, NotFound

__all__ = ["DirectorySessionStore", "SessionManager", "SessionBusy"]

log = logging.getLogger("sessiondir.session3")


class DirectorySessionStore(SessionStore):  # type: ignore[misc]
    """session3 sessions in a sessiondir directory, one file per session.

    :param directory: the session directory.
    :param create: create it if missing (as session3's ``DirectorySessionStore``; default
        false: ``OSError`` naming it if it does not exist).
    :param serializer: ``"pickle"`` (default, as session3's stores) or ``"json"``.
    :param session_class: the class JSON sessions are rebuilt into (default session3's
        ``Session``; give your own, e.g. ``DictSession``).
    :param pickle_protocol: the pickle protocol (default the highest).
    :param options: further :class:`sessiondir.Store` arguments (``lock_timeout``,
        ``durability``, ``idle_expiry``, ``max_session_size``, ``allow_network_fs``).

    Keys are session3's session ids (any string; see :mod:`sessiondir._objects` for how they
    name files). The store is opened lazily in each process, so it may be made before a
    pre-forking server forks.
    """

    is_multiprocess_safe = True
    is_thread_safe = True

    def __init__(
        self,
        directory: Union[str, os.PathLike[str]],
        create: bool = False,
        *,
        serializer: str = "pickle",
        session_class: type = Session,
        pickle_protocol: int = 4,
        **options: Any,
    ) -> None:
        self.directory = os.path.abspath(os.fspath(directory))
        if not create and not os.path.isdir(self.directory):
            raise OSError(f"session directory {self.directory!r} does not exist")
        if serializer == "pickle":
            self.codec: Any = _objects.PickleCodec(protocol=pickle_protocol)
        elif serializer == "json":
            self.codec = _objects.JsonCodec(session_class)
        else:
            raise ValueError(f"serializer must be 'pickle' or 'json', not {serializer!r}")
        self.serializer = serializer
        self._options = options
        self._opened: Optional[tuple[int, sessiondir.Store]] = None
        self._open_lock = threading.Lock()

    @property
    def store(self) -> sessiondir.Store:
        """This process's :class:`sessiondir.Store` (reopened after a ``fork``)."""
        opened = self._opened
        if opened is None or opened[0] != os.getpid():
            with self._open_lock:
                opened = self._opened
                if opened is None or opened[0] != os.getpid():
                    opened = (os.getpid(), sessiondir.Store(self.directory, **self._options))
                    self._opened = opened
        return opened[1]

    # Methods called by the SessionManager.

    def load_session(self, id: str, default: Any = None) -> Any:
        """The session ``id`` as last saved, read without a lock, or ``default`` if there is
        none (a damaged file is logged and loads as ``default``)."""
        try:
            session = _objects.load(self.store, id, self.codec)
        except Corrupt as err:
            log.warning("session3 session %r: %s", id, err)
            return default
        return default if session is None else session

    def save_session(self, session: Any, checkout: Optional[sessiondir.Checkout] = None) -> None:
        """Writes ``session`` atomically (through ``checkout`` if the caller holds one, else by
        a check-out just for the write, creating the file if it is new)."""
        record = self.codec.encode(session.id, session)
        _objects.write(self.store, session.id, record, held=checkout)

    def delete_session(self, session: Any, checkout: Optional[sessiondir.Checkout] = None) -> None:
        """Deletes the session's file (through ``checkout`` if held; waits for a holder
        otherwise). A session already gone is no error."""
        if checkout is not None and checkout.held:
            checkout.delete()
        else:
            self.store.delete(_objects.id_for_key(session.id))

    def has_session(self, id: str) -> bool:
        """Whether session ``id`` exists (its file's header is read, not the session)."""
        if not isinstance(id, str):
            return False
        return self.store.exists(_objects.id_for_key(id))

    # Held sessions, for :class:`SessionManager`.

    def checkout_session(
        self, id: str, timeout: Optional[float] = None
    ) -> Optional[tuple[Any, sessiondir.Checkout]]:
        """Checks session ``id`` out and returns it with its :class:`sessiondir.Checkout`
        (``None`` if it does not exist or its file holds another key; a damaged file is logged,
        released and ``None`` too). Waits while another request holds it, up to ``timeout``
        (default the store's ``lock_timeout``), then :class:`sessiondir.LockTimeout`."""
        if not isinstance(id, str):
            return None
        try:
            checkout = self.store.checkout(_objects.id_for_key(id), timeout=timeout)
        except (NotFound, Expired):
            return None
        try:
            if checkout.data.get("key") != id:
                checkout.release()
                return None
            return _objects.decode(self.store, id, checkout.data, self.codec), checkout
        except Corrupt as err:
            checkout.release()
            log.warning("session3 session %r: %s", id, err)
            return None

    # Other methods.

    def iter_sessions(self) -> Iterator[tuple[str, Any]]:
        """``(id, session)`` for every live session, each read without a lock (damaged files
        are logged and skipped)."""
        for sid in self.store.iter_ids():
            try:
                record = self.store.load(sid)
                if record is None or not isinstance(record.get("key"), str):
                    continue
                yield record["key"], _objects.decode(self.store, record["key"], record, self.codec)
            except Corrupt as err:
                log.warning("session3 store %s: %s", self.directory, err)

    def setup(self) -> int:
        """Creates the directory, or empties it if it holds sessions ("if a previous store
        exists, overwrite it"): returns how many were deleted."""
        return sum(1 for sid in self.store.ids() if self.store.delete(sid))

    def delete_old_sessions(self, minutes: float) -> tuple[int, int]:
        """Deletes every session not saved for more than ``minutes`` that no request holds;
        returns ``(n_deleted, n_remaining)``, as session3's ``DirectorySessionStore``."""
        report = self.store.delete_idle(minutes * 60)
        return report.deleted, report.scanned - report.deleted

    def __repr__(self) -> str:
        return f"<sessiondir.session3.DirectorySessionStore {self.directory!r} {self.serializer}>"


class SessionBusy(PublishError):  # type: ignore[misc]
    """Another request held the session longer than the lock timeout: answered ``503 Service
    Unavailable`` with ``Retry-After: 1`` (as sessiondir's axum layer answers)."""

    status_code = 503
    title = "Service Unavailable"
    description = "The session is busy with another request; try again."


class SessionManager(_SessionManager):  # type: ignore[misc]
    """session3's ``SessionManager`` with each request's session checked out.

    :param store_obj: a :class:`DirectorySessionStore`.
    :param session_class: as session3's (default ``Session``).
    :param hold_methods: the HTTP methods whose requests hold their session (default
        ``None``: every request, because session3 saves the session at the end of every
        successful request, and an unheld save of an object read earlier would overwrite a
        concurrent request's change). Requests of other methods read without a lock and save
        by a check-out just for the write (last writer wins).
    :param lock_timeout: seconds to wait for another request holding the session (default
        the store's); past it the request is answered 503 (:class:`SessionBusy`).
    """

    def __init__(
        self,
        store_obj: DirectorySessionStore,
        session_class: type = Session,
        *,
        hold_methods: Optional[Collection[str]] = None,
        lock_timeout: Optional[float] = None,
    ) -> None:
        if not isinstance(store_obj, DirectorySessionStore):
            raise TypeError(
                "sessiondir.session3.SessionManager needs a sessiondir.session3."
                f"DirectorySessionStore, not {type(store_obj).__name__}"
            )
        super().__init__(store_obj, session_class)
        self.store: DirectorySessionStore = store_obj
        self.hold_methods = None if hold_methods is None else {m.upper() for m in hold_methods}
        self.lock_timeout = lock_timeout
        self._held: dict[Any, sessiondir.Checkout] = {}
        self._busy: set[Any] = set()

    def _holds(self, request: Any) -> bool:
        return self.hold_methods is None or request.get_method() in self.hold_methods

    def get_session(self) -> Any:
        request = get_request()
        id = self._get_session_id(_publisher_config())
        session = None
        if id and self._holds(request):
            try:
                found = self.store.checkout_session(id, timeout=self.lock_timeout)
            except LockTimeout:
                self._busy.add(request)
                raise SessionBusy() from None
            if found is not None:
                session, self._held[request] = found
        elif id:
            session = self.store.load_session(id)
        if session is None:
            session = self._create_session()
        session._set_access_time(self.ACCESS_TIME_RESOLUTION)
        return session

    def _make_session_id(self) -> str:
        return sessiondir.new_id()

    def finish_successful_request(self) -> None:
        request = get_request()
        held = self._held.pop(request, None)
        try:
            if request in self._busy:
                self._busy.discard(request)
                get_response().set_header("Retry-After", "1")
                return
            session = request.session
            if session and self.maintain_session(session):
                self.store.save_session(session, checkout=held)
            elif request in self.expired_sessions:
                expired = self.expired_sessions[request]
                if expired.id:
                    self.store.delete_session(expired, checkout=held)
            self.clear_session(request)
        finally:
            if held is not None:
                held.release()

    def finish_failed_request(self) -> None:
        request = get_request()
        held = self._held.pop(request, None)
        self._busy.discard(request)
        if held is not None:
            held.release()
        self.clear_session(request)


def _publisher_config() -> Any:
    """The running publisher's config (session3's ``_get_session_id`` takes it)."""
    return get_publisher().config
