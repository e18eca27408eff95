"""The type stubs: ``_native.pyi`` agrees with the extension (mypy's ``stubtest``), and the
package type-checks under ``mypy --strict``. Skipped, saying so, when mypy is not installed
(``.ci/run`` installs it)."""

from __future__ import annotations

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
    # sessiondir.django is left out: without django-stubs, Django's classes are Any.
    done = _mypy("mypy", "--strict", "-m", "sessiondir", "-m", "sessiondir.errors")
    assert done.returncode == 0, done.stdout + done.stderr
