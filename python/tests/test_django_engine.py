"""The engine and the middleware, in process: Django's test client against the test project's
views (``djangoapp``), with the session directory of each test its own."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

django = pytest.importorskip("django")

from django.conf import settings  # noqa: E402
from django.core import management  # noqa: E402
from django.test import Client, override_settings  # noqa: E402

import sessiondir  # noqa: E402
from sessiondir.django import SessionStore, get_store  # noqa: E402

CHECKOUT = ["sessiondir.django.middleware.CheckoutSessionMiddleware"]
PLAIN = ["django.contrib.sessions.middleware.SessionMiddleware"]


@pytest.fixture
def project(tmp_path):
    with override_settings(
        SESSIONDIR_PATH=str(tmp_path / "sessions"),
        ROOT_URLCONF="djangoapp.urls",
        MIDDLEWARE=CHECKOUT,
        DELAY=0.001,
    ):
        yield get_store()


def client_for(sid: str) -> Client:
    c = Client(raise_request_exception=False)
    c.cookies[settings.SESSION_COOKIE_NAME] = sid
    return c


def start(project) -> str:
    sid = Client().post("/start").content.decode()
    assert sessiondir.is_valid_id(sid) and project.load(sid) == {"n": 0}
    return sid


def test_sessions_are_sessiondir_records(project) -> None:
    s = SessionStore()
    s["user"] = {"name": "ada", "roles": ["admin"]}
    s.save()
    assert project.load(s.session_key) == {"user": {"name": "ada", "roles": ["admin"]}}
    info = project.info(s.session_key)
    assert abs(info.expires - (time.time() + settings.SESSION_COOKIE_AGE)) < 10


def test_unknown_malformed_and_damaged_keys_load_empty(project, caplog) -> None:
    for key in ("short", "x" * 40, "../../../../etc/passwd", sessiondir.new_id()):
        s = SessionStore(key)
        assert dict(s.items()) == {} and s.session_key is None
    sid = project.create({"a": 1})
    with open(project.session_path(sid), "r+b") as f:
        f.write(b"garbage!")
    with caplog.at_level("WARNING", logger="django.security.SuspiciousSession"):
        assert dict(SessionStore(sid).items()) == {}
    assert "Session data corrupted" in caplog.text


def test_non_json_data_raises_naming_the_key(project) -> None:
    s = SessionStore()
    s["when"] = object()
    with pytest.raises(TypeError, match='"when"'):
        s.save()


def test_clearsessions(project) -> None:
    live, past, default = SessionStore(), SessionStore(), SessionStore()
    live["a"] = past["a"] = default["a"] = 1
    live.set_expiry(3600)
    past.set_expiry(-3600)
    live.save()
    past.save()
    with override_settings(SESSION_COOKIE_AGE=0):
        default.save()  # expires at once, like Django's own clearsessions test
    assert len(project.ids()) == 3
    management.call_command("clearsessions")
    assert project.ids() == [live.session_key]


def test_cycle_key_keeps_data_and_drops_old_key(project) -> None:
    s = SessionStore()
    s["a"] = 1
    s.save()
    old = s.session_key
    s = SessionStore(old)
    s.hold()
    s["a"] = 2
    s.cycle_key()
    s.save()
    s.release()
    assert project.load(old) is None and project.load(s.session_key) == {"a": 2}


def test_hold_after_unchanged_read_rereads_and_after_change_refuses(project) -> None:
    sid = project.create({"n": 1})
    s = SessionStore(sid)
    assert s["n"] == 1
    project_write = project.checkout(sid)
    project_write["n"] = 5
    project_write.check_in()
    s.hold()  # re-reads under the lock
    assert s["n"] == 5 and s.held
    s.release()
    t = SessionStore(sid)
    t["n"] = 9
    with pytest.raises(RuntimeError, match="before it was checked out"):
        t.hold()


def test_post_holds_get_does_not(project) -> None:
    sid = start(project)
    c = client_for(sid)
    assert c.post("/held").json() == {"held": True}
    assert c.get("/held").json() == {"held": False}
    assert c.post("/search").json() == {"n": 0, "held": False}  # @readonly_session
    assert c.get("/count-view").content == b"1"  # @checkout_session on a GET
    assert project.load(sid) == {"n": 1}
    # Released after each request: nobody holds it now.
    project.checkout(sid, timeout=0).release()


def test_a_held_session_makes_others_wait(project) -> None:
    sid = start(project)
    holder = project.checkout(sid)
    results: list[bytes] = []
    t = threading.Thread(target=lambda: results.append(client_for(sid).post("/incr").content))
    t.start()
    time.sleep(0.3)
    assert results == []  # queued behind the holder
    holder["n"] = 10
    holder.check_in()
    t.join(30)
    assert results == [b"11"] and project.load(sid) == {"n": 11}


def test_login_cycles_the_id_and_logout_deletes(project) -> None:
    sid = start(project)
    c = client_for(sid)
    response = c.post("/login")
    new = response.content.decode()
    assert new != sid and response.cookies[settings.SESSION_COOKIE_NAME].value == new
    assert project.load(sid) is None and project.load(new) == {"n": 0, "user": "ada"}
    assert c.post("/incr").content == b"1"  # the client now sends the new cookie
    assert c.post("/logout").status_code == 200
    assert project.load(new) is None and project.ids() == []


def test_lock_timeout_is_a_503(project) -> None:
    sid = start(project)
    holder = project.checkout(sid)
    try:
        with override_settings(SESSIONDIR_LOCK_TIMEOUT=0.2):
            response = client_for(sid).post("/incr")
        assert response.status_code == 503 and response["Retry-After"] == "1"
    finally:
        holder.release()
    assert project.load(sid) == {"n": 0}


def test_view_exception_releases_without_writing(project) -> None:
    sid = start(project)
    response = client_for(sid).post("/fail")
    assert response.status_code == 500
    assert project.load(sid) == {"n": 0}
    project.checkout(sid, timeout=0).release()  # not left held


def test_concurrent_posts_lose_nothing(project) -> None:
    sid = start(project)
    threads, per_thread = 8, 15

    def work(_: int) -> None:
        c = client_for(sid)
        for _ in range(per_thread):
            assert c.post("/incr").status_code == 200

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, range(threads)))
    assert project.load(sid) == {"n": threads * per_thread}


def test_without_the_middleware_updates_are_lost(project) -> None:
    """The engine alone (Django's SessionMiddleware) is atomic but, like every Django backend,
    last writer wins: the number is printed, not asserted."""
    sid = start(project)
    threads, per_thread = 8, 15
    with override_settings(MIDDLEWARE=PLAIN):

        def work(_: int) -> None:
            c = client_for(sid)
            for _ in range(per_thread):
                c.post("/incr")

        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(work, range(threads)))
    total = threads * per_thread
    n = project.load(sid)["n"]
    print(f"\nsessiondir engine with Django's SessionMiddleware: {total - n} of {total} lost")
    assert n <= total


def test_middleware_refuses_another_engine(project) -> None:
    from django.core.exceptions import ImproperlyConfigured

    from sessiondir.django.middleware import CheckoutSessionMiddleware

    with override_settings(SESSION_ENGINE="django.contrib.sessions.backends.file"):
        with pytest.raises(ImproperlyConfigured):
            CheckoutSessionMiddleware(lambda r: None)
