"""The type stubs: ``_native.pyi`` agrees with the extension (mypy's ``stubtest``), and the
package type-checks under ``mypy --strict``. Skipped, saying so, when mypy is not installed
(``.ci/run`` installs it)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

pytest.importorskip("mypy", reason="mypy is not installed (pip install mypy)")


def _mypy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True)


def test_stubs_match_the_extension() -> None:
    done = _mypy("mypy.stubtest", "sessiondir._native")
    assert done.returncode == 0, done.stdout + done.stderr


def test_package_is_strictly_typed() -> None:
    # sessiondir.django is left out: without django-stubs, Django's classes are Any. The
    # adapters of installed frameworks are checked (session3, Quixote and Webware have no type
    # information, so their base classes are Any there, marked with targeted ignores).
    modules = ["sessiondir", "sessiondir.errors", "sessiondir._objects", "sessiondir._views"]
    for framework, module in [
        ("flask", "sessiondir.flask"),
        ("session3", "sessiondir.session3"),
        ("webware", "sessiondir.webware.SessionSessiondirStore"),
    ]:
        if importlib.util.find_spec(framework) is not None:
            modules.append(module)
    done = _mypy("mypy", "--strict", *(arg for m in modules for arg in ("-m", m)))
    assert done.returncode == 0, done.stdout + done.stderr
