"""session3's own test application (``test/test_session3.py`` from the session3 sdist, for
the installed version; fetched once, see :mod:`_sdist`) on ``sessiondir.session3``.

The sdist's runner (``test/test.py``) is Python 2 (``cStringIO``, nose, twill) and its twill
scripts are not shipped; its scenarios (``increment``, ``increment+fail``, ``logout``,
``logout+fail``, ``logout+nokeep``, ``session_id``) are replayed here against the
application's pages, through werkzeug's test client, with session3's ``SessionManager`` (the
application's own ``create_publisher``) and with ours.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import re
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

session3 = pytest.importorskip("session3")
pytest.importorskip("quixote")
werkzeug_test = pytest.importorskip("werkzeug.test")

import quixote.publish  # noqa: E402
from quixote.wsgi import QWIP  # noqa: E402

import _sdist  # noqa: E402
import sessiondir.session3  # noqa: E402

_VERSION = importlib.metadata.version("session3")
_DIR, _SKIP = _sdist.fetch("session3", _VERSION, "test", "test_session3.py")
if _DIR is None:
    pytest.skip(_SKIP, allow_module_level=True)


@pytest.fixture(params=["session3 SessionManager", "sessiondir SessionManager"])
def client(request: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setattr(quixote.publish, "_publisher", None)
    monkeypatch.syspath_prepend(str(_DIR / "test"))
    sys.modules.pop("test_session3", None)
    app = importlib.import_module("test_session3")
    if request.param.startswith("sessiondir"):
        monkeypatch.setattr(app, "SessionManager", sessiondir.session3.SessionManager)
    store = sessiondir.session3.DirectorySessionStore(tmp_path / "sessions", create=True)
    yield werkzeug_test.Client(QWIP(app.create_publisher(store)))
    sys.modules.pop("test_session3", None)


def _page(client: Any) -> tuple[str, int]:
    body = client.get("/").get_data(as_text=True)
    match = re.search(r"Your session ID is (\S+)\.\s*<p>\s*Counter is at (\d+)\.", body)
    assert match, body
    return match.group(1), int(match.group(2))


def test_session_id(client: Any) -> None:
    sid, _ = _page(client)
    assert sid == "None"  # nothing to keep yet: no session stored, no cookie
    assert client.get_cookie("QX_session") is None
    client.get("/keep")
    sid, _ = _page(client)
    assert sid != "None"
    assert client.get_cookie("QX_session").value.strip('"') == sid
    assert _page(client)[0] == sid  # the same session on the next request


def test_increment(client: Any) -> None:
    client.get("/keep")
    for n in range(1, 4):
        client.get("/increment")
        assert _page(client)[1] == n


def test_increment_fail(client: Any) -> None:
    client.get("/keep")
    client.get("/increment")
    assert client.get("/incrementfail").status_code == 500
    assert _page(client)[1] == 1  # a failed request saves nothing


def test_logout(client: Any) -> None:
    client.get("/keep")
    client.get("/increment")
    sid, _ = _page(client)
    client.get("/logout")
    new_sid, counter = _page(client)
    assert (new_sid, counter) == ("None", 0)
    assert not session3_store_has(client, sid)


def test_logout_fail(client: Any) -> None:
    client.get("/keep")
    client.get("/increment")
    sid, _ = _page(client)
    assert client.get("/logoutfail").status_code == 500
    assert _page(client) == (sid, 1)  # "Effect: no log out."


def test_logout_nokeep(client: Any) -> None:
    client.get("/logout")  # no session to expire
    assert _page(client) == ("None", 0)


def session3_store_has(client: Any, sid: str) -> bool:
    publisher = client.application.publisher
    return bool(publisher.session_manager.store.has_session(sid))
