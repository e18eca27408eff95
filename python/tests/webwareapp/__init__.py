"""The Webware for Python 3 test application: a counter in the session, servlets in
``context/``.

``make_app(backend, workdir)`` builds the ``Application`` (a WSGI callable); ``application``
is what ``gunicorn webwareapp:application`` serves, configured by ``$SESSIONDIR_TEST_BACKEND``:

``sessiondir``  ``SessionStore = 'sessiondir.webware.SessionSessiondirStore'``
``file``        Webware's own ``SessionFileStore`` (``SessionStore = 'File'``)
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import webware

from wsgiharness import app_from_env

COOKIE = "_SID_"
CONTEXT = Path(__file__).resolve().parent / "context"


def make_app(backend: str, workdir: Path, **settings: Any) -> Any:
    webware.addToSearchPath()
    from Application import Application

    store = {"sessiondir": "sessiondir.webware.SessionSessiondirStore", "file": "File"}[backend]
    (workdir / "Configs").mkdir(parents=True, exist_ok=True)
    # Webware needs the file; the settings below override its (empty) contents.
    (workdir / "Configs" / "Application.config").write_text("# settings: see make_app\n")
    config = {
        "Contexts": {"default": str(CONTEXT)},
        "SessionStore": store,
        "SessiondirPath": str(workdir / "sessions"),
        "SessiondirLockTimeout": 60,
        "PrintConfigAtStartUp": False,
        "PrintPlugIns": False,
        "Verbose": False,
        "UseSessionSweeper": False,
        "LogActivity": False,
        "ShowDebugInfoOnErrors": False,
        "EmailErrors": False,
        "SaveErrorMessages": False,
        **settings,
    }
    with contextlib.redirect_stdout(io.StringIO()):  # Webware's start-up banner
        return Application(str(workdir), settings=config, development=False)


application = app_from_env(make_app, "webware")
