"""The Flask test application: a counter in the session.

``make_app(backend, directory)`` builds it; ``application`` is what ``gunicorn
flaskapp:application`` serves, configured by ``$SESSIONDIR_TEST_BACKEND``:

``sessiondir``     :class:`sessiondir.flask.Sessiondir` (writer requests hold their session)
``flask-session``  Flask-Session's file-system backend (cachelib's ``FileSystemCache``), the
                   usual server-side file store of Flask applications
"""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path
from typing import Any

from flask import Flask, jsonify, session

from sessiondir.flask import Sessiondir, checkout_session, readonly_session
from wsgiharness import app_from_env

COOKIE = "session"
DELAY = float(os.environ.get("SESSIONDIR_TEST_DELAY_MS", "0")) / 1000


def _held() -> bool:
    return bool(getattr(session, "held", False))


def make_app(backend: str, directory: Path, **config: Any) -> Flask:
    app = Flask(__name__)
    app.secret_key = "sessiondir-tests"
    app.config.update({"SESSIONDIR_PATH": str(directory), "SESSIONDIR_LOCK_TIMEOUT": 60, **config})
    if backend == "sessiondir":
        Sessiondir(app)
    elif backend == "flask-session":
        from cachelib.file import FileSystemCache
        from flask_session import Session

        app.config.update(
            SESSION_TYPE="cachelib",
            SESSION_CACHELIB=FileSystemCache(str(directory), threshold=0),
        )
        Session(app)
    else:
        raise ValueError(f"unknown backend {backend!r}")

    @app.post("/start")
    def start() -> str:
        session["n"] = 0
        return "started"

    def increment() -> str:
        n = session.get("n", 0)
        if DELAY:
            time.sleep(DELAY)  # the view's work between reading and writing
        session["n"] = n + 1
        return str(n + 1)

    app.post("/incr")(increment)

    @app.get("/count")
    @checkout_session
    def count() -> str:
        """GET, but it writes: held because of the decorator."""
        return increment()

    @app.get("/value")
    def value() -> str:
        return str(session.get("n"))

    @app.post("/search")
    @readonly_session
    def search() -> Any:
        return jsonify(n=session.get("n"), held=_held())

    @app.route("/held", methods=["GET", "POST"])
    def held() -> Any:
        return jsonify(held=_held())

    @app.post("/fail")
    def fail() -> str:
        session["n"] = -1
        raise ValueError("the view failed")

    @app.post("/logout")
    def logout() -> str:
        session.clear()
        return "bye"

    @app.post("/permanent")
    def permanent() -> str:
        session.permanent = True
        session["when"] = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone.utc)
        session["pair"] = (1, "two")
        session["raw"] = b"\x00\xff"
        return "ok"

    @app.get("/types")
    def types() -> Any:
        return repr((session.get("when"), session.get("pair"), session.get("raw")))

    return app


application = app_from_env(make_app, "sessions")
