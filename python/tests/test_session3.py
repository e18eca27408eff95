"""session3 (Quixote 3) on sessiondir: the store's ``SessionStore`` API, session3's own
``SessionManager`` and ours in a small Quixote application (in process, through werkzeug's
test client), and across gunicorn worker processes against session3's own
``DirectorySessionStore`` (in ``test_gunicorn.py``).
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

pytest.importorskip("session3")
pytest.importorskip("quixote")
werkzeug_test = pytest.importorskip("werkzeug.test")

import quixote.publish  # noqa: E402
from quixote.wsgi import QWIP  # noqa: E402
from session3.DictSession import DictSession  # noqa: E402
from session3.Session import Session  # noqa: E402

import quixoteapp  # noqa: E402
import sessiondir  # noqa: E402
from sessiondir import _objects  # noqa: E402
from sessiondir.session3 import DirectorySessionStore  # noqa: E402


class _Request:
    """Just enough of a Quixote request for ``Session.__init__`` outside a publisher."""

    def get_environ(self, name: str, default: Any = None) -> Any:
        return "192.0.2.7" if name == "REMOTE_ADDR" else default


@pytest.fixture
def no_publisher(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Quixote allows one ``Publisher`` per process: each test gets a fresh slot."""
    monkeypatch.setattr(quixote.publish, "_publisher", None)
    yield


def _session(id: str, monkeypatch: pytest.MonkeyPatch, cls: type = Session) -> Any:
    monkeypatch.setattr("session3.Session.get_request", lambda: _Request())
    session = cls(id)
    session.user = "ada"
    return session


# The SessionStore API.


def test_save_load_has_delete_with_session3_ids(tmp_path: Path, monkeypatch) -> None:
    store = DirectorySessionStore(tmp_path / "s", create=True)
    assert store.is_multiprocess_safe and store.is_thread_safe
    session = _session("0123456789abcdef", monkeypatch)  # session3's 16 hex digits
    session.cart = ["tea"]
    assert store.load_session(session.id) is None
    assert not store.has_session(session.id)
    store.save_session(session)
    loaded = store.load_session(session.id)
    assert type(loaded) is Session
    assert (loaded.id, loaded.user, loaded.cart) == (session.id, "ada", ["tea"])
    assert store.has_session(session.id)
    # The file is named by the key's hash and holds the key.
    sid = _objects.id_for_key(session.id)
    assert Path(store.store.session_path(sid)).is_file()
    assert store.store.load(sid)["key"] == session.id
    loaded.cart.append("milk")
    store.save_session(loaded)
    assert store.load_session(session.id).cart == ["tea", "milk"]
    store.delete_session(loaded)
    assert store.load_session(session.id, "gone") == "gone"
    store.delete_session(loaded)  # already gone: no error


def test_a_missing_directory_is_refused_unless_create(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="does not exist"):
        DirectorySessionStore(tmp_path / "nope")
    assert DirectorySessionStore(tmp_path / "nope", create=True).store.path


def test_cookie_garbage_loads_as_the_default_and_builds_no_path(tmp_path: Path) -> None:
    store = DirectorySessionStore(tmp_path / "s", create=True)
    for junk in ["../../etc/passwd", "", "x" * 5000, "\x00", "*del*"]:
        assert store.load_session(junk, "default") == "default"
        assert not store.has_session(junk)
    assert store.checkout_session("../x") is None
    assert list(tmp_path.iterdir()) == [tmp_path / "s"]


def test_iter_sessions_setup_and_delete_old_sessions(tmp_path: Path, monkeypatch) -> None:
    store = DirectorySessionStore(tmp_path / "s", create=True)
    ids = [f"{n:016x}" for n in range(5)] + [sessiondir.new_id()]
    for id in ids:
        store.save_session(_session(id, monkeypatch))
    listed = dict(store.iter_sessions())
    assert sorted(listed) == sorted(ids)
    assert all(listed[id].id == id for id in ids)
    assert store.delete_old_sessions(60) == (0, 6)
    time.sleep(0.05)  # let the sessions age past 0 minutes
    assert store.delete_old_sessions(0) == (6, 0)
    for id in ids[:3]:
        store.save_session(_session(id, monkeypatch))
    assert store.setup() == 3
    assert list(store.iter_sessions()) == []


def test_delete_old_sessions_skips_a_session_a_request_holds(tmp_path: Path, monkeypatch) -> None:
    store = DirectorySessionStore(tmp_path / "s", create=True)
    store.save_session(_session("aaaaaaaaaaaaaaaa", monkeypatch))
    store.save_session(_session("bbbbbbbbbbbbbbbb", monkeypatch))
    time.sleep(0.05)
    _, held = store.checkout_session("aaaaaaaaaaaaaaaa")
    try:
        assert store.delete_old_sessions(0) == (1, 1)
    finally:
        held.release()
    assert store.has_session("aaaaaaaaaaaaaaaa")
    assert not store.has_session("bbbbbbbbbbbbbbbb")


def test_json_mode_round_trips_and_refuses_objects(tmp_path: Path, monkeypatch) -> None:
    store = DirectorySessionStore(tmp_path / "s", create=True, serializer="json")
    session = _session("0123456789abcdef", monkeypatch)
    session.n = 3
    store.save_session(session)
    record = store.store.load(_objects.id_for_key(session.id))
    assert "pickle" not in record and record["state"]["n"] == 3
    loaded = store.load_session(session.id)
    assert type(loaded) is Session and (loaded.user, loaded.n) == ("ada", 3)
    session.user = object()
    with pytest.raises(TypeError, match="user"):
        store.save_session(session)
    assert store.load_session(session.id).user == "ada"  # nothing written
    dict_store = DirectorySessionStore(
        tmp_path / "d", create=True, serializer="json", session_class=DictSession
    )
    ds = _session("fedcba9876543210", monkeypatch, DictSession)
    ds["cart"] = ["tea"]
    dict_store.save_session(ds)
    assert dict_store.load_session(ds.id)["cart"] == ["tea"]
    with pytest.raises(ValueError, match="serializer"):
        DirectorySessionStore(tmp_path / "s", serializer="yaml")


def test_a_damaged_record_loads_as_the_default_and_is_logged(
    tmp_path: Path, monkeypatch, caplog
) -> None:
    store = DirectorySessionStore(tmp_path / "s", create=True)
    key = "0123456789abcdef"
    store.store.create({"key": key, "pickle": "bm90IGEgcGlja2xl"}, id=_objects.id_for_key(key))
    with caplog.at_level(logging.WARNING, logger="sessiondir.session3"):
        assert store.load_session(key, "default") == "default"
        assert store.checkout_session(key) is None
    assert "cannot decode" in caplog.text and key in caplog.text
    assert list(store.iter_sessions()) == []
    # A file under the key's name that holds another key is not this session.
    other = "fedcba9876543210"
    store.store.create({"key": "someone-else", "pickle": ""}, id=_objects.id_for_key(other))
    assert store.load_session(other) is None
    assert store.checkout_session(other) is None


# In a Quixote application.


def _client(backend: str, directory: Path) -> Any:
    return werkzeug_test.Client(QWIP(quixoteapp.make_publisher(backend, directory)))


@pytest.mark.parametrize("backend", ["sessiondir", "sessiondir-json", "sessiondir-plain"])
def test_quixote_app_counts_and_logs_out(backend: str, tmp_path: Path, no_publisher) -> None:
    client = _client(backend, tmp_path / "s")
    assert client.post("/start").status_code == 200
    cookie = client.get_cookie(quixoteapp.COOKIE)
    assert cookie is not None
    for n in range(1, 4):
        assert client.post("/incr").get_data() == str(n).encode()
    assert client.get("/value").get_data() == b"3"
    store = sessiondir.Store(tmp_path / "s")
    [sid] = store.ids()
    assert store.load(sid)["key"] == cookie.value.strip('"')
    assert client.post("/logout").get_data() == b"bye"
    assert store.ids() == []


def test_our_manager_draws_sessiondir_ids(tmp_path: Path, no_publisher) -> None:
    client = _client("sessiondir", tmp_path / "s")
    client.post("/start")
    value = client.get_cookie(quixoteapp.COOKIE).value.strip('"')
    assert sessiondir.is_valid_id(value)
    assert sessiondir.Store(tmp_path / "s").ids() == [value]


def test_a_failed_request_releases_without_writing(tmp_path: Path, no_publisher) -> None:
    client = _client("sessiondir", tmp_path / "s")
    client.post("/start")
    client.post("/incr")
    assert client.post("/fail").status_code == 500
    assert client.get("/value").get_data() == b"1"
    [sid] = sessiondir.Store(tmp_path / "s").ids()
    with sessiondir.Store(tmp_path / "s").checkout(sid, timeout=0):
        pass  # not left held


def test_a_request_waits_for_the_holder_then_sees_its_write(tmp_path: Path, no_publisher) -> None:
    client = _client("sessiondir", tmp_path / "s")
    client.post("/start")
    key = client.get_cookie(quixoteapp.COOKIE).value.strip('"')
    other = DirectorySessionStore(tmp_path / "s")
    session, held = other.checkout_session(key)
    answered: list[bytes] = []
    request = threading.Thread(target=lambda: answered.append(client.post("/incr").get_data()))
    request.start()
    request.join(0.3)
    assert request.is_alive() and answered == []  # queued behind the holder
    session.n = 41
    other.save_session(session, checkout=held)
    held.release()
    request.join(10)
    assert answered == [b"42"]


def test_a_lock_timeout_is_answered_503_with_retry_after(tmp_path: Path, no_publisher) -> None:
    directory = tmp_path / "s"
    directory.mkdir()
    store = DirectorySessionStore(directory)
    publisher = quixote.publish.Publisher(
        quixoteapp.Root(),
        session_manager=sessiondir.session3.SessionManager(store, lock_timeout=0.2),
    )
    client = werkzeug_test.Client(QWIP(publisher))
    client.post("/start")
    _, held = store.checkout_session(client.get_cookie(quixoteapp.COOKIE).value.strip('"'))
    try:
        response = client.post("/incr")
    finally:
        held.release()
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert client.get("/value").get_data() == b"0"


def test_the_manager_needs_a_sessiondir_store(tmp_path: Path) -> None:
    from session3.store.ShelveSessionStore import ShelveSessionStore

    with pytest.raises(TypeError, match="DirectorySessionStore"):
        sessiondir.session3.SessionManager(ShelveSessionStore(str(tmp_path / "shelf")))
