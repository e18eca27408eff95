"""Across processes, for every framework adapter: its test application under gunicorn with 4
worker processes, 16 concurrent clients sending N increments with one session cookie.

With the sessiondir adapter (the session held for the whole request) the counter must be
exactly N. The same workload against the framework's own file store shows its lost updates:
printed (run ``pytest -s``), not asserted, since how many are lost depends on timing.

=========  ======================================  =========================================
framework  sessiondir (exact)                      the framework's own file store
=========  ======================================  =========================================
Django     engine + ``CheckoutSessionMiddleware``  ``django.contrib.sessions.backends.file``
session3   ``DirectorySessionStore`` +             session3's ``DirectorySessionStore`` and
           ``SessionManager``                      ``SessionManager``
Flask      ``sessiondir.flask.Sessiondir``         Flask-Session's file-system backend (Flask
                                                   has no file store of its own)
Webware    ``SessionSessiondirStore``              Webware's ``SessionFileStore``
=========  ======================================  =========================================
"""

from __future__ import annotations

import shutil
from contextlib import AbstractContextManager
from typing import Callable

import pytest

if shutil.which("gunicorn") is None:
    try:
        import gunicorn  # noqa: F401
    except ImportError:
        pytest.skip("gunicorn is not installed", allow_module_level=True)

from wsgiharness import Server, increments, serve  # noqa: E402

WORKERS, CLIENTS = 4, 16


def _django(backend: str) -> AbstractContextManager[Server]:
    pytest.importorskip("django")
    from djangoapp.harness import serve as serve_django

    return serve_django(backend, workers=WORKERS)


def _wsgi(target: str, cookie: str, *needs: str) -> Callable[[str], AbstractContextManager[Server]]:
    """A factory serving ``target`` with ``$SESSIONDIR_TEST_BACKEND`` set to the backend;
    skips unless the modules ``needs`` are installed (``flask_session`` only for that one)."""

    def factory(backend: str) -> AbstractContextManager[Server]:
        for module in needs:
            if module != "flask_session" or backend == "flask-session":
                pytest.importorskip(module)
        return serve(
            target,
            name=f"{target}-{backend}",
            cookie=cookie,
            env={"SESSIONDIR_TEST_BACKEND": backend},
            workers=WORKERS,
        )

    return factory


_quixote = _wsgi("quixoteapp:application", "QX_session", "session3", "quixote")
_flask = _wsgi("flaskapp:application", "session", "flask", "flask_session")
_webware = _wsgi("webwareapp:application", "_SID_", "webware")


# (framework, server factory, sessiondir backend, the framework's own backend, increments)
CASES: list[tuple[str, Callable[[str], AbstractContextManager[Server]], str, str, int]] = [
    ("Django", _django, "sessiondir", "file", 400),
    ("session3", _quixote, "sessiondir", "session3", 200),
    ("Flask", _flask, "sessiondir", "flask-session", 200),
    ("Webware", _webware, "sessiondir", "file", 200),
]


Factory = Callable[[str], AbstractContextManager[Server]]


def _run(server: Factory, backend: str, total: int) -> tuple[int, int]:
    with server(backend) as running:
        return increments(running, total, CLIENTS)


@pytest.mark.parametrize("framework, server, backend, _own, total", CASES)
def test_sessiondir_counts_exactly_across_gunicorn_workers(
    framework: str, server: Factory, backend: str, _own: str, total: int
) -> None:
    counted, errors = _run(server, backend, total)
    print(f"\n{framework} on sessiondir, {WORKERS} workers: {counted} of {total}, {errors} errors")
    assert errors == 0
    assert counted == total


@pytest.mark.parametrize("framework, server, _ours, backend, total", CASES)
def test_the_frameworks_own_file_store_on_the_same_workload(
    framework: str, server: Factory, _ours: str, backend: str, total: int
) -> None:
    counted, errors = _run(server, backend, total)
    lost = total - counted
    print(
        f"\n{framework} {backend!r} store, {WORKERS} workers: {lost} of {total} updates lost "
        f"({100 * lost / total:.0f}%), {errors} errors"
    )
    assert 0 <= counted <= total
