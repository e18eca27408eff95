"""Running the test project under gunicorn (:mod:`wsgiharness`, with Django's settings and
state): shared by the cross-process test (``tests/test_gunicorn.py``) and the benchmark
(``benches/django_sessions.py``).
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Iterator

from wsgiharness import Run, Server, burst, free_port
from wsgiharness import serve as _serve

__all__ = ["Run", "Server", "burst", "free_port", "serve", "COOKIE"]

COOKIE = "sessionid"


@contextmanager
def serve(backend: str, *, workers: int = 4, delay_ms: float = 1.0) -> Iterator[Server]:
    """Starts ``gunicorn --workers N djangoapp.wsgi`` with session backend ``backend``
    (``sessiondir``, ``file``, ``db``, ``cached_db``...)."""
    prepare = None
    if backend in ("db", "cached_db"):
        prepare = [sys.executable, "-m", "django", "migrate", "--verbosity", "0"]
    with _serve(
        "djangoapp.wsgi",
        name=backend,
        cookie=COOKIE,
        env={"DJANGO_SETTINGS_MODULE": "djangoapp.settings", "SESSIONDIR_TEST_BACKEND": backend},
        workers=workers,
        delay_ms=delay_ms,
        prepare=prepare,
    ) as server:
        yield server
