"""Running the test project under gunicorn and firing requests at it: shared by the
cross-process test (``tests/test_gunicorn.py``) and the benchmark
(``benches/django_sessions.py``).
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
from pathlib import Path
from typing import Iterator, Optional

TESTS_DIR = Path(__file__).resolve().parent.parent
COOKIE = "sessionid"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A gunicorn serving the test project with one session backend."""

    backend: str
    port: int
    state: Path
    process: subprocess.Popen

    def request(self, method: str, path: str, sid: Optional[str] = None) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            headers = {"Cookie": f"{COOKIE}={sid}"} if sid else {}
            conn.request(method, path, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def start_session(self) -> str:
        status, body = self.request("POST", "/start")
        if status != 200:
            raise RuntimeError(f"{self.backend}: POST /start answered {status}: {body[:200]!r}")
        return body.decode()

    def counter(self, sid: str) -> int:
        status, body = self.request("GET", "/value", sid)
        if status != 200:
            raise RuntimeError(f"{self.backend}: GET /value answered {status}")
        return int(body)


@contextmanager
def serve(backend: str, *, workers: int = 4, delay_ms: float = 1.0) -> Iterator[Server]:
    """Starts ``gunicorn --workers N djangoapp.wsgi`` on a free port with a state directory of
    its own; stops it (SIGTERM, then SIGKILL) and removes the directory on exit."""
    state = Path(tempfile.mkdtemp(prefix=f"sessiondir-{backend}-"))
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="djangoapp.settings",
        SESSIONDIR_TEST_BACKEND=backend,
        SESSIONDIR_TEST_STATE=str(state),
        SESSIONDIR_TEST_DELAY_MS=str(delay_ms),
        PYTHONPATH=os.pathsep.join([str(TESTS_DIR), env.get("PYTHONPATH", "")]),
    )
    if backend in ("db", "cached_db"):
        subprocess.run(
            [sys.executable, "-m", "django", "migrate", "--verbosity", "0"],
            env=env,
            check=True,
            cwd=TESTS_DIR,
        )
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
            "djangoapp.wsgi",
        ],
        env=env,
        cwd=TESTS_DIR,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = Server(backend, port, state, process)
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
    """Sends ``plan`` (method, path, session id) from ``clients`` threads, each request on a
    connection of its own, and times every request."""
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
