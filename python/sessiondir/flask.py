"""Flask on sessiondir: server-side sessions, the cookie holding only the signed session id,
and a writer request's session held checked out for the whole request.

Switching from Flask's signed-cookie sessions::

    from flask import Flask
    from sessiondir.flask import Sessiondir

    app = Flask(__name__)
    app.secret_key = "..."                       # signs the id in the cookie
    app.config["SESSIONDIR_PATH"] = "/var/lib/myapp/sessions"
    Sessiondir(app)                              # or Sessiondir().init_app(app)

``session`` is used as before. What changes:

* The data stays on the server, one file per session; the cookie (``SESSION_COOKIE_NAME``,
  with Flask's domain, path, ``Secure``, ``HttpOnly``, ``SameSite`` and ``Partitioned``
  settings) holds the session id signed with ``secret_key`` (``SECRET_KEY_FALLBACKS`` are
  accepted when reading), so a logout or a deleted session really ends it.
* ``PERMANENT_SESSION_LIFETIME`` is the server-side lifetime of every session (written into
  the file's header at each save, so expired sessions load as new and ``Store.delete_expired``
  collects them), and the cookie's ``Expires`` for permanent ones (``session.permanent =
  True``); ``SESSION_REFRESH_EACH_REQUEST`` renews both on every request of a permanent
  session.
* Values are what Flask's own session serializer takes (``str``, numbers, ``bool``, ``None``,
  lists, dicts, and through its tags ``tuple``, ``bytes``, ``datetime``, ``UUID``,
  ``Markup``); plain JSON values are stored as plain JSON, so other sessiondir processes read
  them.
* A request whose method is in ``SESSIONDIR_HOLD_METHODS`` (default ``POST``, ``PUT``,
  ``PATCH``, ``DELETE``) checks its session out when the request starts and holds it until its
  response is saved: concurrent requests on one session queue, and none overwrites another's
  change. ``@checkout_session`` makes a view hold whatever the method, ``@readonly_session``
  makes it read without a lock, and ``session.hold()`` does the same from inside a view
  before anything is read. A view that raises (or a 5xx response) writes nothing and sets no
  cookie. A wait past ``SESSIONDIR_LOCK_TIMEOUT`` (default 30 s) is answered ``503`` with
  ``Retry-After: 1``, as sessiondir's axum layer answers.
* Other requests read without a lock; a change they make is still saved, by a check-out just
  for the write (atomic, last writer wins, as with every store).

Further settings: ``SESSIONDIR_DURABILITY`` and ``SESSIONDIR_OPTIONS`` (more
:class:`sessiondir.Store` arguments), as for the Django engine.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Collection
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

import flask
from flask.json.tag import TaggedJSONSerializer
from flask.sessions import SessionInterface, SessionMixin
from itsdangerous import BadSignature, Signer
from werkzeug.datastructures import CallbackDict
from werkzeug.exceptions import ServiceUnavailable

import sessiondir
from sessiondir._views import checkout_session, readonly_session
from sessiondir.errors import Expired, LockTimeout, NotFound

__all__ = [
    "Sessiondir",
    "SessiondirSessionInterface",
    "SessiondirSession",
    "checkout_session",
    "readonly_session",
]

DEFAULT_HOLD_METHODS = ("POST", "PUT", "PATCH", "DELETE")


class SessiondirSession(CallbackDict, SessionMixin):  # type: ignore[type-arg]
    """A Flask session whose data lives in a sessiondir file.

    ``sid`` is the session id (``None`` until first saved), ``new`` whether the request
    brought no valid session, ``held`` whether it is checked out, ``modified`` whether a
    top-level key changed (set it yourself after changing a nested value, as with Flask's
    own sessions).
    """

    def __init__(
        self,
        initial: Optional[dict[str, Any]] = None,
        sid: Optional[str] = None,
        *,
        store: Optional[sessiondir.Store] = None,
        checkout: Optional[sessiondir.Checkout] = None,
        busy: bool = False,
    ) -> None:
        def on_update(self: SessiondirSession) -> None:
            self.modified = True

        super().__init__(initial, on_update)
        self.sid = sid
        self.new = sid is None
        self.modified = False
        self.busy = busy
        self._store = store
        self._checkout = checkout

    @property
    def held(self) -> bool:
        """Whether this request holds the session checked out."""
        return self._checkout is not None and self._checkout.held

    def hold(self) -> None:
        """Checks the session out for the rest of the request (before the view reads it:
        the data is read again under the lock). Harmless if held or new."""
        if self.held or self.sid is None or self._store is None:
            return
        try:
            checkout = self._store.checkout(self.sid)
        except (NotFound, Expired):
            return
        self._checkout = checkout
        dict.clear(self)
        dict.update(self, _untag(checkout.data))

    def release(self) -> None:
        """Releases the check-out without writing (harmless if not held)."""
        if self._checkout is not None:
            self._checkout.release()
            self._checkout = None


_tagger = TaggedJSONSerializer()


def _tag(data: dict[str, Any]) -> dict[str, Any]:
    return {key: _tagger.tag(value) for key, value in data.items()}


def _untag(record: dict[str, Any]) -> dict[str, Any]:
    # The public way through Flask's tags: its loads() of the record as JSON text.
    return dict(_tagger.loads(json.dumps(record)))


class SessiondirSessionInterface(SessionInterface):
    """The ``app.session_interface`` that :class:`Sessiondir` installs (see the module
    documentation). ``path`` overrides ``SESSIONDIR_PATH``; ``hold_methods`` overrides
    ``SESSIONDIR_HOLD_METHODS``."""

    salt = "sessiondir-flask-session"
    session_class = SessiondirSession

    def __init__(
        self, path: Optional[str] = None, hold_methods: Optional[Collection[str]] = None
    ) -> None:
        self.path = path
        self.hold_methods = hold_methods
        self._stores: dict[tuple[Any, ...], sessiondir.Store] = {}
        self._lock = threading.Lock()

    def store(self, app: flask.Flask) -> sessiondir.Store:
        """The process's :class:`sessiondir.Store` for ``app``'s settings (opened once per
        process and configuration)."""
        path = (
            self.path
            or app.config.get("SESSIONDIR_PATH")
            or os.path.join(tempfile.gettempdir(), "flask-sessiondir")
        )
        timeout = app.config.get("SESSIONDIR_LOCK_TIMEOUT", 30)
        durability = app.config.get("SESSIONDIR_DURABILITY", "none")
        options = dict(app.config.get("SESSIONDIR_OPTIONS", {}))
        key = (os.getpid(), path, timeout, durability, tuple(sorted(options.items())))
        with self._lock:
            store = self._stores.get(key)
            if store is None:
                store = sessiondir.Store(
                    path, lock_timeout=timeout, durability=durability, **options
                )
                self._stores[key] = store
        return store

    def _signer(self, app: flask.Flask) -> Optional[Signer]:
        if not app.secret_key:
            return None
        keys = [*(app.config.get("SECRET_KEY_FALLBACKS") or []), app.secret_key]
        return Signer(keys, salt=self.salt)

    def _holds(self, app: flask.Flask, method: str) -> bool:
        methods = self.hold_methods
        if methods is None:
            methods = app.config.get("SESSIONDIR_HOLD_METHODS", DEFAULT_HOLD_METHODS)
        return method.upper() in {m.upper() for m in methods}

    def open_session(self, app: flask.Flask, request: flask.Request) -> Optional[SessiondirSession]:
        signer = self._signer(app)
        if signer is None:
            return None  # Flask's NullSession: "no secret key was set"
        store = self.store(app)
        cookie = request.cookies.get(self.get_cookie_name(app))
        sid = None
        if cookie:
            try:
                sid = signer.unsign(cookie).decode("ascii")
            except (BadSignature, UnicodeDecodeError):
                sid = None
        if sid is None or not sessiondir.is_valid_id(sid):
            return self.session_class(store=store)
        if self._holds(app, request.method):
            try:
                checkout = store.checkout(sid)
            except (NotFound, Expired):
                return self.session_class(store=store)
            except LockTimeout:
                return self.session_class(store=store, busy=True)
            return self.session_class(_untag(checkout.data), sid, store=store, checkout=checkout)
        data = store.get(sid)
        if data is None:
            return self.session_class(store=store)
        return self.session_class(_untag(data), sid, store=store)

    def save_session(
        self, app: flask.Flask, session: SessionMixin, response: flask.Response
    ) -> None:
        assert isinstance(session, SessiondirSession)
        try:
            if session.busy or response.status_code >= 500:
                return
            self._save(app, session, response)
        finally:
            session.release()

    def _save(self, app: flask.Flask, session: SessiondirSession, response: flask.Response) -> None:
        store = self.store(app)
        cookie: dict[str, Any] = {
            "domain": self.get_cookie_domain(app),
            "path": self.get_cookie_path(app),
            "secure": self.get_cookie_secure(app),
            "partitioned": self.get_cookie_partitioned(app),
            "samesite": self.get_cookie_samesite(app),
            "httponly": self.get_cookie_httponly(app),
        }
        name = self.get_cookie_name(app)
        if session.accessed:
            response.vary.add("Cookie")
        if not session:
            if session.modified and session.sid is not None:
                if session.held:
                    session._checkout.delete()  # type: ignore[union-attr]
                else:
                    store.delete(session.sid)
                response.delete_cookie(name, **cookie)
                response.vary.add("Cookie")
            return
        refresh = self.should_set_cookie(app, session)
        if not (session.modified or session.new or refresh):
            return
        expires_at = datetime.now(timezone.utc) + _lifetime(app)
        if session.sid is None:
            session.sid = store.create(_tag(dict(session)), expires=expires_at)
        elif session.modified:
            self._write(store, session, expires_at)
        else:
            try:
                if session.held:
                    session._checkout.set_expiry(expires_at)  # type: ignore[union-attr]
                    session._checkout.check_in()  # type: ignore[union-attr]
                else:
                    store.set_expiry(session.sid, expires_at)
            except (NotFound, Expired):
                return  # deleted meanwhile (a logout in another request): no cookie
        if refresh or session.new or session.modified:
            signer = self._signer(app)
            assert signer is not None
            value = signer.sign(session.sid).decode("ascii")
            response.set_cookie(
                name, value, expires=self.get_expiration_time(app, session), **cookie
            )
            response.vary.add("Cookie")

    @staticmethod
    def _write(store: sessiondir.Store, session: SessiondirSession, expires_at: datetime) -> None:
        data = _tag(dict(session))
        held = session._checkout
        if held is not None and held.held:
            held.data = data
            held.set_expiry(expires_at)
            held.check_in()
            return
        sid = session.sid
        assert sid is not None
        try:
            with store.checkout(sid) as transient:
                transient.data = data
                transient.set_expiry(expires_at)
        except (NotFound, Expired):
            # Gone meanwhile (deleted by another request or expired): a new session, not a
            # resurrection of the old id.
            session.sid = store.create(data, expires=expires_at)


def _lifetime(app: flask.Flask) -> timedelta:
    lifetime = app.permanent_session_lifetime
    return lifetime if isinstance(lifetime, timedelta) else timedelta(seconds=lifetime)


class Sessiondir:
    """Installs sessiondir sessions on a Flask app: ``Sessiondir(app)`` or, for an app
    factory, ``ext = Sessiondir(); ext.init_app(app)``. Arguments as
    :class:`SessiondirSessionInterface`."""

    def __init__(self, app: Optional[flask.Flask] = None, **options: Any) -> None:
        self.interface = SessiondirSessionInterface(**options)
        if app is not None:
            self.init_app(app)

    def init_app(self, app: flask.Flask) -> None:
        app.session_interface = self.interface
        app.before_request(_before_request)
        app.teardown_request(_teardown_request)
        app.extensions["sessiondir"] = self


def _request_session() -> Optional[SessiondirSession]:
    """This request's session if it is ours, read without marking it accessed (the
    ``session`` proxy would, and so add ``Vary: Cookie`` to every response)."""
    ctx = flask.globals.request_ctx._get_current_object()  # type: ignore[attr-defined]
    session = getattr(ctx, "_session", None)
    return session if isinstance(session, SessiondirSession) else None


def _before_request() -> None:
    session = _request_session()
    if session is None:
        return
    if session.busy:
        raise ServiceUnavailable(
            "The session is busy with another request; try again.", retry_after=1
        )
    endpoint = flask.request.endpoint
    view = flask.current_app.view_functions.get(endpoint) if endpoint else None
    wanted = getattr(view, "sessiondir_checkout", None)
    if wanted is True:
        session.hold()
    elif wanted is False:
        session.release()


def _teardown_request(_error: Optional[BaseException]) -> None:
    session = _request_session()
    if session is not None:
        session.release()
