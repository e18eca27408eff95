"""The README's "Switching from ..." snippets, each run as written, in a fresh interpreter (a
Quixote publisher is one per process) in a temporary directory, followed by a few lines that
check it did what the README says."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## Switching from session3 / Webware / Flask / WebStack"


def _snippets() -> list[str]:
    text = README.read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    section = text[start : end if end != -1 else None]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def _run(code: str, cwd: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_section_has_the_three_snippets() -> None:
    assert len(_snippets()) == 3


def test_session3_snippet(tmp_path: Path) -> None:
    pytest.importorskip("session3")
    pytest.importorskip("quixote")
    check = """
    from werkzeug.test import Client
    from quixote.wsgi import QWIP
    assert Client(QWIP(publisher)).get("/").get_data() == b"hello"
    assert store.store.path.endswith("sessions")
    """
    _run(_snippets()[0] + textwrap.dedent(check), tmp_path)


def test_webware_snippet(tmp_path: Path) -> None:
    pytest.importorskip("webware")
    (tmp_path / "Configs").mkdir()
    (tmp_path / "Configs" / "Application.config").write_text(_snippets()[1])
    check = f"""
    import contextlib, io, sys
    import webware
    webware.addToSearchPath()
    from Application import Application
    from werkzeug.test import Client
    sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
    import webwareapp
    settings = {{"Contexts": {{"default": str(webwareapp.CONTEXT)}}, "PrintConfigAtStartUp": False}}
    with contextlib.redirect_stdout(io.StringIO()):
        app = Application(".", settings=settings, development=False)
    assert type(app.sessions()).__name__ == "SessionSessiondirStore", app.sessions()
    client = Client(app)
    assert client.post("/start").status_code == 200
    assert client.post("/incr").get_data() == b"1"
    import sessiondir
    assert len(sessiondir.Store("Sessions/sessiondir").ids()) == 1
    """
    _run(textwrap.dedent(check), tmp_path)


def test_flask_snippet(tmp_path: Path) -> None:
    pytest.importorskip("flask")
    check = """
    client = app.test_client()
    assert client.post("/incr").get_data() == b"1"
    assert client.post("/incr").get_data() == b"2"
    import sessiondir
    [sid] = sessiondir.Store("sessions").ids()
    assert sessiondir.Store("sessions").load(sid) == {"n": 2}
    """
    _run(_snippets()[2] + textwrap.dedent(check), tmp_path)
