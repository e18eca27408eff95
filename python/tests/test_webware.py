"""Webware for Python 3 on sessiondir (``sessiondir.webware.SessionSessiondirStore``):
Webware's own session-store tests (``webware/Tests/TestSessions``, shipped in its wheel) run
against the store, then the check-out strategy in a Webware application (in process, through
werkzeug's test client). Across gunicorn workers against Webware's ``SessionFileStore``:
``test_gunicorn.py``.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest

webware = pytest.importorskip("webware")
werkzeug_test = pytest.importorskip("werkzeug.test")

webware.addToSearchPath()

from webware.Tests.TestSessions import Application as _mock_app  # noqa: E402
from webware.Tests.TestSessions import Session as _mock_session  # noqa: E402
from webware.Tests.TestSessions import TestSessionMemoryStore as _webware_tests  # noqa: E402

import sessiondir  # noqa: E402
import webwareapp  # noqa: E402
from sessiondir import _objects  # noqa: E402
from sessiondir.webware.SessionSessiondirStore import SessionSessiondirStore  # noqa: E402

_RUN_DIR = Path(tempfile.mkdtemp(prefix="sessiondir-webware-"))


class _App(_mock_app.Application):
    """Webware's mock application, with the session directory (and Webware's test
    directory) under this run's own temporary directory."""

    _sessionDir = str(_RUN_DIR / "SessionStoreTestDir")

    def setting(self, key: str, default: Any = None) -> Any:
        if key == "SessiondirPath":
            return str(_RUN_DIR / "sessiondir")
        return super().setting(key, default)


class TestWebwareSessionStoreSuite(_webware_tests.TestSessionMemoryStore):
    """Webware's own tests of a session store (those of ``SessionMemoryStore``, which
    ``SessionFileStore``'s test case also runs), on this store."""

    _storeClass = SessionSessiondirStore
    _storeIsOrdered = False
    _app = _App()

    def testRestoreFiles(self) -> None:
        # As Webware's SessionFileStoreTest.testFileStoreRestoreFiles.
        store = SessionSessiondirStore(self._app)
        self.assertEqual(len(store), 7)
        self.assertTrue("foo-0" in store and "foo-6" in store)
        store = SessionSessiondirStore(self._app, restoreFiles=False)
        self.assertEqual(len(store), 0)
        self.assertFalse("foo-0" in store or "foo-6" in store)


@pytest.fixture
def webware_store() -> Any:
    (_RUN_DIR / "SessionStoreTestDir").mkdir(exist_ok=True)
    store = SessionSessiondirStore(_App())
    store.clear()
    yield store
    store.clear()


def test_getitem_checks_out_until_store_session(webware_store: Any) -> None:
    webware_store["foo-3"] = _mock_session.Session(3)
    session = webware_store["foo-3"]
    assert webware_store["foo-3"] is session  # the same thread asking again
    other = sessiondir.Store(_RUN_DIR / "sessiondir")
    with pytest.raises(sessiondir.Busy):
        other.checkout(_objects.id_for_key("foo-3"), timeout=0)
    assert webware_store.get("foo-3").bar() == 18  # lock-free reads do not wait
    session.setBar(19)
    webware_store.storeSession(session)
    with other.checkout(_objects.id_for_key("foo-3"), timeout=0):
        pass  # checked in
    assert webware_store.get("foo-3").bar() == 19


def test_a_second_thread_waits_for_the_holder_and_sees_its_write(webware_store: Any) -> None:
    webware_store["foo-3"] = _mock_session.Session(3)
    session = webware_store["foo-3"]
    seen: list[int] = []
    waiter = threading.Thread(target=lambda: seen.append(webware_store["foo-3"].bar()))
    waiter.start()
    waiter.join(0.3)
    assert waiter.is_alive() and seen == []  # queued behind this thread's check-out
    session.setBar(99)
    webware_store.storeSession(session)
    waiter.join(10)
    assert seen == [99]


def test_store_session_releases_other_check_outs_of_the_thread(webware_store: Any) -> None:
    for n in (1, 2):
        webware_store[f"foo-{n}"] = _mock_session.Session(n)
    own = webware_store["foo-1"]
    webware_store["foo-2"]  # a servlet looking at another session
    webware_store.storeSession(own)
    other = sessiondir.Store(_RUN_DIR / "sessiondir")
    for n in (1, 2):
        with other.checkout(_objects.id_for_key(f"foo-{n}"), timeout=0):
            pass


def test_clean_stale_sessions_skips_a_held_session(webware_store: Any) -> None:
    for n in (5, 6):  # both stale: last accessed 2000 and 2400 s ago, timeout 1800 s
        webware_store[f"foo-{n}"] = _mock_session.Session(n)
    held = webware_store["foo-6"]
    webware_store.cleanStaleSessions()
    assert "foo-5" not in webware_store
    assert "foo-6" in webware_store  # a request holds it: not swept
    webware_store.storeSession(held)


def _client(tmp_path: Path, **settings: Any) -> Any:
    return werkzeug_test.Client(webwareapp.make_app("sessiondir", tmp_path / "w", **settings))


def test_webware_app_counts_and_invalidates(tmp_path: Path) -> None:
    client = _client(tmp_path)
    assert client.post("/start").status_code == 200
    key = client.get_cookie(webwareapp.COOKIE).value
    for n in range(1, 4):
        assert client.post("/incr").get_data() == str(n).encode()
    assert client.get("/value").get_data() == b"3"
    store = sessiondir.Store(tmp_path / "w" / "sessions")
    assert store.ids() == [_objects.id_for_key(key)]
    assert client.post("/logout").get_data() == b"bye"
    assert store.ids() == []  # invalidated: deleted at check-in


def test_a_request_waits_for_the_holder_then_sees_its_write(tmp_path: Path) -> None:
    app = webwareapp.make_app("sessiondir", tmp_path / "w")
    client = werkzeug_test.Client(app)
    client.post("/start")
    key = client.get_cookie(webwareapp.COOKIE).value
    store = app.sessions()
    session = store.checkOut(key)
    answered: list[bytes] = []
    request = threading.Thread(target=lambda: answered.append(client.post("/incr").get_data()))
    request.start()
    request.join(0.3)
    assert request.is_alive() and answered == []
    session.setValue("n", 41)
    store.checkIn(session)
    request.join(10)
    assert answered == [b"42"]


def test_a_lock_timeout_is_answered_503(tmp_path: Path) -> None:
    app = webwareapp.make_app("sessiondir", tmp_path / "w", SessiondirLockTimeout=0.2)
    client = werkzeug_test.Client(app)
    client.post("/start")
    key = client.get_cookie(webwareapp.COOKIE).value
    with sessiondir.Store(tmp_path / "w" / "sessions").checkout(_objects.id_for_key(key)):
        response = client.post("/incr")
    assert response.status_code == 503
    assert client.get("/value").get_data() == b"0"


def test_with_check_out_off_getitem_reads_without_a_lock(webware_store: Any) -> None:
    class _NoCheckOut(_App):
        def setting(self, key: str, default: Any = None) -> Any:
            if key == "SessiondirCheckOut":
                return False
            return super().setting(key, default)

    store = SessionSessiondirStore(_NoCheckOut())
    store["foo-3"] = _mock_session.Session(3)
    session = store["foo-3"]
    with sessiondir.Store(_RUN_DIR / "sessiondir").checkout(
        _objects.id_for_key("foo-3"), timeout=0
    ):
        assert store["foo-3"].bar() == 18  # does not wait for the holder
    session.setBar(5)
    store.storeSession(session)
    assert store.get("foo-3").bar() == 5
