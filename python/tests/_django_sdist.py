"""Fetching Django's own session tests (``tests/sessions_tests/``) from the Django source
distribution on PyPI, for the installed Django version.

The sdist is downloaded once with ``pip download --no-binary :all: --no-deps django==X`` and
``tests/sessions_tests/`` is extracted into a cache directory (``$SESSIONDIR_DJANGO_TESTS``, or
``~/.cache/sessiondir/django-tests``), which is then put on ``sys.path`` so that
``sessions_tests.tests`` imports as the package it is in Django's repository.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Optional

import django


def cache_root() -> Path:
    env = os.environ.get("SESSIONDIR_DJANGO_TESTS")
    if env:
        return Path(env)
    return Path.home() / ".cache" / "sessiondir" / "django-tests"


def fetch() -> tuple[Optional[Path], str]:
    """``(directory holding sessions_tests/, "")`` or ``(None, why not)``."""
    version = django.get_version()
    target = cache_root() / f"django-{version}"
    if (target / "sessions_tests" / "tests.py").is_file():
        return target, ""
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-binary",
                ":all:",
                "--no-deps",
                "--dest",
                tmp,
                f"django=={version}",
            ],
            capture_output=True,
            text=True,
        )
        archives = list(Path(tmp).glob("*.tar.gz"))
        if done.returncode != 0 or not archives:
            return None, f"cannot download the Django {version} sdist: {done.stderr.strip()[-300:]}"
        staging = Path(tmp) / "x"
        with tarfile.open(archives[0]) as tar:
            members = [m for m in tar.getmembers() if "/tests/sessions_tests/" in m.name]
            if not members:
                return None, f"the Django {version} sdist has no tests/sessions_tests/"
            tar.extractall(staging, members=members)  # noqa: S202 (names filtered above)
        (src,) = staging.glob("*/tests/sessions_tests")
        target.mkdir(parents=True, exist_ok=True)
        dest = target / "sessions_tests"
        if not dest.exists():
            src.rename(dest)
    return target, ""
