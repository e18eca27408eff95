"""The Quixote 3 test application: a counter in a session3 session.

``make_publisher(backend, directory)`` builds the publisher (Quixote allows one per process);
``application`` is the WSGI app that ``gunicorn quixoteapp:application`` serves, configured by
``$SESSIONDIR_TEST_BACKEND``:

``sessiondir``        sessiondir's ``DirectorySessionStore`` with its ``SessionManager``
                      (each request holds its session)
``sessiondir-json``   the same, sessions stored as JSON
``sessiondir-plain``  sessiondir's store with session3's own ``SessionManager``
``session3``          session3's own ``DirectorySessionStore`` and ``SessionManager``
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from quixote import get_session, get_session_manager
from quixote.directory import Directory
from quixote.publish import Publisher
from quixote.wsgi import QWIP
from session3.SessionManager import SessionManager as Session3Manager
from session3.store.DirectorySessionStore import DirectorySessionStore as Session3Store

import sessiondir.session3
from wsgiharness import app_from_env

COOKIE = "QX_session"
DELAY = float(os.environ.get("SESSIONDIR_TEST_DELAY_MS", "0")) / 1000


class Root(Directory):
    _q_exports = ["start", "incr", "value", "fail", "logout", "whoami"]

    def start(self) -> str:
        session = get_session()
        session.user = "ada"
        session.n = 0
        return "started"

    def incr(self) -> str:
        session = get_session()
        n = getattr(session, "n", 0)
        if DELAY:
            time.sleep(DELAY)  # the view's work between reading and writing
        session.n = n + 1
        return str(n + 1)

    def value(self) -> str:
        return str(getattr(get_session(), "n", None))

    def fail(self) -> str:
        get_session().n = -1
        raise ValueError("the view failed")

    def logout(self) -> str:
        get_session_manager().expire_session()
        return "bye"

    def whoami(self) -> str:
        return str(get_session().user)


def make_publisher(backend: str, directory: Path) -> Publisher:
    directory.mkdir(parents=True, exist_ok=True)
    manager: Any
    if backend == "session3":
        manager = Session3Manager(Session3Store(str(directory)))
    else:
        serializer = "json" if backend == "sessiondir-json" else "pickle"
        store = sessiondir.session3.DirectorySessionStore(
            directory, serializer=serializer, lock_timeout=60
        )
        if backend == "sessiondir-plain":
            manager = Session3Manager(store)
        else:
            manager = sessiondir.session3.SessionManager(store)
    return Publisher(
        Root(), session_manager=manager, display_exceptions="plain", error_log=os.devnull
    )


def _wsgi(backend: str, directory: Path) -> Any:
    return QWIP(make_publisher(backend, directory))


application = app_from_env(_wsgi, "sessions")
