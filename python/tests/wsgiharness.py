"""Serving a test WSGI application under gunicorn and firing requests at it: shared by every
cross-process test (Django, session3/Quixote, Webware, Flask) and the Django benchmark.

:func:`serve` starts ``gunicorn --workers N <target>`` on a free port with ``python/tests`` on
the path, a state directory of the run's own in ``$SESSIONDIR_TEST_STATE`` and the given
environment, waits until it answers ``GET /value``, and stops it (SIGTERM, then SIGKILL) and
removes the directory on exit. :func:`burst` sends a plan of requests from many client
threads, each on a connection of its own. Every test application has the same three routes:
``POST /start`` (a session with a counter at 0, its cookie set), ``POST /incr`` (a
read-modify-write of the counter, with ``$SESSIONDIR_TEST_DELAY_MS`` of work between the read
and the write) and ``GET /value``.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional

TESTS_DIR = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A gunicorn serving one test application; ``cookie`` is its session cookie's name."""

    name: str
    port: int
    state: Path
    process: subprocess.Popen
    cookie: str

    def request_full(
        self, method: str, path: str, sid: Optional[str] = None
    ) -> tuple[int, bytes, SimpleCookie]:
        """``(status, body, cookies set by the response)``; ``sid`` is sent as the cookie."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            headers = {"Cookie": f"{self.cookie}={sid}"} if sid else {}
            conn.request(method, path, headers=headers)
            response = conn.getresponse()
            cookies: SimpleCookie = SimpleCookie()
            for value in response.headers.get_all("Set-Cookie") or []:
                cookies.load(value)
            return response.status, response.read(), cookies
        finally:
            conn.close()

    def request(self, method: str, path: str, sid: Optional[str] = None) -> tuple[int, bytes]:
        status, body, _ = self.request_full(method, path, sid)
        return status, body

    def start_session(self) -> str:
        """``POST /start``; the session cookie's value it set."""
        status, body, cookies = self.request_full("POST", "/start")
        if status != 200 or self.cookie not in cookies:
            raise RuntimeError(
                f"{self.name}: POST /start answered {status} without a {self.cookie} cookie: "
                f"{body[:300]!r}"
            )
        return cookies[self.cookie].value

    def counter(self, sid: str) -> int:
        """The session's counter; 0 if the session is gone (``None``: a store that deleted
        it, as Webware's file store does with a file it found half-written)."""
        status, body = self.request("GET", "/value", sid)
        if status != 200:
            raise RuntimeError(f"{self.name}: GET /value answered {status}: {body[:300]!r}")
        return 0 if body == b"None" else int(body)


@contextmanager
def serve(
    target: str,
    *,
    name: str,
    cookie: str,
    env: Mapping[str, str] = {},  # noqa: B006 (never mutated)
    workers: int = 4,
    delay_ms: float = 1.0,
    prepare: Optional[list[str]] = None,
) -> Iterator[Server]:
    """Serves ``target`` (``module:app``) with ``workers`` gunicorn worker processes.
    ``prepare``: a command run first, in the same environment (Django's ``migrate``)."""
    state = Path(tempfile.mkdtemp(prefix=f"sessiondir-{name}-"))
    full_env = dict(os.environ)
    full_env.update(env)
    full_env.update(
        SESSIONDIR_TEST_STATE=str(state),
        SESSIONDIR_TEST_DELAY_MS=str(delay_ms),
        PYTHONPATH=os.pathsep.join([str(TESTS_DIR), full_env.get("PYTHONPATH", "")]),
    )
    if prepare:
        subprocess.run(prepare, env=full_env, check=True, cwd=TESTS_DIR)
    port = free_port()
    log = open(state / "gunicorn.log", "wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            str(workers),
            "--bind",
            f"127.0.0.1:{port}",
            "--timeout",
            "120",
            "--backlog",
            "2048",
            target,
        ],
        env=full_env,
        cwd=TESTS_DIR,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = Server(name, port, state, process, cookie)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"gunicorn exited with {process.returncode}: "
                    f"{(state / 'gunicorn.log').read_text(errors='replace')[-2000:]}"
                )
            try:
                server.request("GET", "/value")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("gunicorn did not answer within 60 s") from None
                time.sleep(0.1)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        shutil.rmtree(state, ignore_errors=True)


@dataclass
class Run:
    """The outcome of a burst of requests."""

    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)

    def p(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def burst(server: Server, plan: list[tuple[str, str, str]], clients: int) -> Run:
    """Sends ``plan`` (method, path, session cookie value) from ``clients`` threads, each
    request on a connection of its own, and times every request."""
    run = Run()
    lock = threading.Lock()
    cursor = iter(plan)

    def client() -> None:
        while True:
            with lock:
                item = next(cursor, None)
            if item is None:
                return
            method, path, sid = item
            t0 = time.perf_counter()
            try:
                status, _ = server.request(method, path, sid)
            except OSError:
                status = 0
            elapsed = time.perf_counter() - t0
            with lock:
                run.requests += 1
                run.latencies.append(elapsed)
                if status != 200:
                    run.errors += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    run.seconds = time.perf_counter() - started
    return run


def increments(server: Server, total: int, clients: int) -> tuple[int, int]:
    """``total`` concurrent ``POST /incr`` on one new session from ``clients`` threads:
    ``(final counter, failed requests)``."""
    sid = server.start_session()
    run = burst(server, [("POST", "/incr", sid)] * total, clients)
    return server.counter(sid), run.errors


def app_from_env(make: Callable[[str, Path], Any], subdir: str) -> Any:
    """In a gunicorn worker started by :func:`serve`: ``make(backend, state/subdir)`` with the
    backend from ``$SESSIONDIR_TEST_BACKEND``; ``None`` when imported elsewhere (a test)."""
    backend = os.environ.get("SESSIONDIR_TEST_BACKEND")
    state = os.environ.get("SESSIONDIR_TEST_STATE")
    if backend is None or state is None:
        return None
    return make(backend, Path(state) / subdir)
