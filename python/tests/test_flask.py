"""Flask on sessiondir (``sessiondir.flask``), through Flask's test client: server-side data,
the signed id in the cookie, ``PERMANENT_SESSION_LIFETIME``, Flask's value types, and the
check-out held for a writer request (queued behind a holder, released on failure, 503 past
the lock timeout). Across gunicorn workers: ``test_gunicorn.py``.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("flask")

import flaskapp  # noqa: E402
import sessiondir  # noqa: E402


def _app(tmp_path: Path, **config: Any) -> Any:
    return flaskapp.make_app("sessiondir", tmp_path / "s", **config)


def _sid(client: Any) -> str:
    cookie = client.get_cookie(flaskapp.COOKIE)
    assert cookie is not None
    sid, _, signature = cookie.value.partition(".")
    assert sessiondir.is_valid_id(sid) and signature
    return sid


def test_the_data_is_on_the_server_and_the_cookie_holds_the_signed_id(tmp_path: Path) -> None:
    client = _app(tmp_path).test_client()
    assert client.post("/start").status_code == 200
    for n in range(1, 4):
        assert client.post("/incr").get_data() == str(n).encode()
    assert client.get("/value").get_data() == b"3"
    sid = _sid(client)
    store = sessiondir.Store(tmp_path / "s")
    assert store.ids() == [sid]
    assert store.load(sid) == {"n": 3}


def test_a_forged_or_unsigned_cookie_is_a_new_session(tmp_path: Path) -> None:
    app = _app(tmp_path)
    client = app.test_client()
    client.post("/start")
    sid = _sid(client)
    for forged in [sid, f"{sid}.AAAA", "../../etc/passwd", ""]:
        other = app.test_client()
        other.set_cookie(flaskapp.COOKIE, forged)
        assert other.get("/value").get_data() == b"None"
    # Signed with a fallback key: still accepted.
    rotated = flaskapp.make_app(
        "sessiondir", tmp_path / "s", SECRET_KEY_FALLBACKS=["sessiondir-tests"]
    )
    rotated.secret_key = "a-new-key"
    again = rotated.test_client()
    again.set_cookie(flaskapp.COOKIE, client.get_cookie(flaskapp.COOKIE).value)
    assert again.get("/value").get_data() == b"0"


def test_without_a_secret_key_flask_refuses_to_write(tmp_path: Path) -> None:
    app = _app(tmp_path)
    app.secret_key = None
    response = app.test_client().post("/start")
    assert response.status_code == 500
    assert sessiondir.Store(tmp_path / "s").ids() == []


def test_reads_write_nothing_and_set_no_cookie(tmp_path: Path) -> None:
    client = _app(tmp_path).test_client()
    response = client.get("/value")
    assert "Set-Cookie" not in response.headers
    assert sessiondir.Store(tmp_path / "s").ids() == []
    client.post("/start")
    modified = sessiondir.Store(tmp_path / "s").info(_sid(client)).modified
    assert "Set-Cookie" not in client.get("/value").headers
    assert sessiondir.Store(tmp_path / "s").info(_sid(client)).modified == modified


def test_permanent_session_lifetime_is_the_servers_and_the_permanent_cookies(
    tmp_path: Path,
) -> None:
    lifetime = timedelta(hours=3)
    client = _app(tmp_path, PERMANENT_SESSION_LIFETIME=lifetime).test_client()
    before = time.time()
    client.post("/start")
    info = sessiondir.Store(tmp_path / "s").info(_sid(client))
    assert before + lifetime.total_seconds() - 5 <= info.expires
    assert info.expires <= time.time() + lifetime.total_seconds() + 5
    assert client.get_cookie(flaskapp.COOKIE).expires is None  # not permanent: browser session
    client.post("/permanent")
    cookie = client.get_cookie(flaskapp.COOKIE)
    assert cookie.expires is not None
    assert abs(cookie.expires.timestamp() - (time.time() + lifetime.total_seconds())) < 5


def test_an_expired_session_loads_as_new(tmp_path: Path) -> None:
    client = _app(tmp_path, PERMANENT_SESSION_LIFETIME=timedelta(seconds=1)).test_client()
    client.post("/start")
    sid = _sid(client)
    sessiondir.Store(tmp_path / "s").set_expiry(sid, -1)
    assert client.get("/value").get_data() == b"None"
    assert client.post("/incr").get_data() == b"1"
    assert _sid(client) != sid


def test_flasks_tagged_types_round_trip_and_plain_values_stay_plain(tmp_path: Path) -> None:
    client = _app(tmp_path).test_client()
    client.post("/start")
    client.post("/permanent")
    assert client.get("/types").get_data() == (
        b"(datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.timezone.utc), "
        b"(1, 'two'), b'\\x00\\xff')"
    )
    record = sessiondir.Store(tmp_path / "s").load(_sid(client))
    assert record["n"] == 0 and record["_permanent"] is True
    assert record["pair"] == {" t": [1, "two"]}


def test_logout_deletes_the_session_and_the_cookie(tmp_path: Path) -> None:
    client = _app(tmp_path).test_client()
    client.post("/start")
    response = client.post("/logout")
    assert "session=;" in response.headers["Set-Cookie"]
    assert sessiondir.Store(tmp_path / "s").ids() == []


def test_which_requests_hold_their_session(tmp_path: Path) -> None:
    client = _app(tmp_path).test_client()
    client.post("/start")
    assert client.post("/held").get_json() == {"held": True}
    assert client.get("/held").get_json() == {"held": False}
    assert client.post("/search").get_json() == {"n": 0, "held": False}  # @readonly_session
    assert client.get("/count").get_data() == b"1"  # GET with @checkout_session


def test_a_failed_request_writes_nothing_and_releases(tmp_path: Path) -> None:
    client = _app(tmp_path).test_client()
    client.post("/start")
    assert client.post("/fail").status_code == 500
    assert client.get("/value").get_data() == b"0"
    with sessiondir.Store(tmp_path / "s").checkout(_sid(client), timeout=0):
        pass  # not left held


def test_a_writer_waits_for_the_holder_then_sees_its_write(tmp_path: Path) -> None:
    client = _app(tmp_path).test_client()
    client.post("/start")
    store = sessiondir.Store(tmp_path / "s")
    held = store.checkout(_sid(client))
    answered: list[bytes] = []
    request = threading.Thread(target=lambda: answered.append(client.post("/incr").get_data()))
    request.start()
    request.join(0.3)
    assert request.is_alive() and answered == []  # queued behind the holder
    held["n"] = 41
    held.check_in()
    request.join(10)
    assert answered == [b"42"]


def test_a_lock_timeout_is_answered_503_with_retry_after(tmp_path: Path) -> None:
    client = _app(tmp_path, SESSIONDIR_LOCK_TIMEOUT=0.2).test_client()
    client.post("/start")
    with sessiondir.Store(tmp_path / "s").checkout(_sid(client)):
        response = client.post("/incr")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert "Set-Cookie" not in response.headers
    assert client.get("/value").get_data() == b"0"


def test_non_json_values_are_refused_naming_the_key(tmp_path: Path) -> None:
    app = _app(tmp_path)

    @app.post("/bad")
    def bad() -> str:
        from flask import session

        session["obj"] = object()
        return "x"

    app.config["PROPAGATE_EXCEPTIONS"] = True
    client = app.test_client()
    client.post("/start")
    with pytest.raises(TypeError, match="obj"):
        client.post("/bad")
    assert client.get("/value").get_data() == b"0"


def test_a_permanent_session_is_renewed_each_request_without_rewriting(tmp_path: Path) -> None:
    client = _app(tmp_path, PERMANENT_SESSION_LIFETIME=timedelta(hours=1)).test_client()
    client.post("/start")
    client.post("/permanent")
    store = sessiondir.Store(tmp_path / "s")
    sid = _sid(client)
    store.set_expiry(sid, 60)  # as if the last request was nearly an hour ago
    generation = store.info(sid).generation
    response = client.get("/value")
    assert "Set-Cookie" in response.headers  # SESSION_REFRESH_EACH_REQUEST
    info = store.info(sid)
    assert info.expires > time.time() + 3500
    assert store.load(sid)["n"] == 0
    assert info.generation >= generation
    off = _app(tmp_path, SESSION_REFRESH_EACH_REQUEST=False).test_client()
    off.set_cookie(flaskapp.COOKIE, client.get_cookie(flaskapp.COOKIE).value)
    assert "Set-Cookie" not in off.get("/value").headers


def test_a_save_after_a_concurrent_logout_makes_a_new_session(tmp_path: Path) -> None:
    app = _app(tmp_path, SESSIONDIR_HOLD_METHODS=[])  # /incr reads lock-free here
    client = app.test_client()
    olds: list[str] = []

    @app.post("/incr-after-logout")
    def incr_after_logout() -> str:
        from flask import session

        n = session.get("n", 0)
        sessiondir.Store(tmp_path / "s").delete(olds[0])  # another request logged out
        session["n"] = n + 1
        return "ok"

    client.post("/start")
    old = _sid(client)
    olds.append(old)
    client.post("/incr-after-logout")
    new = _sid(client)
    store = sessiondir.Store(tmp_path / "s")
    assert new != old and store.ids() == [new]
    assert store.load(new) == {"n": 1}
