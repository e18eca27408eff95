"""Fetching a directory of tests from a project's source distribution on PyPI, for the
installed version: Django's ``tests/sessions_tests/`` (its ``SessionTestsMixin``) and
session3's ``test/`` (its test application).

The sdist is downloaded once with ``pip download --no-binary :all: --no-deps NAME==X`` and
the directory is extracted into a cache directory (``$SESSIONDIR_DJANGO_TESTS``, or
``~/.cache/sessiondir/django-tests``; the name is historical, every project's land there), so
that it imports as the package (or the scripts) it is in the project's repository.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Optional


def cache_root() -> Path:
    env = os.environ.get("SESSIONDIR_DJANGO_TESTS")
    if env:
        return Path(env)
    return Path.home() / ".cache" / "sessiondir" / "django-tests"


def fetch(project: str, version: str, inside: str, probe: str) -> tuple[Optional[Path], str]:
    """``(directory holding <last part of inside>/, "")`` or ``(None, why not)``. ``inside``
    is the directory's path in the sdist below its top folder (``tests/sessions_tests``);
    ``probe`` a file in it whose presence means the cache is complete."""
    name = inside.rsplit("/", 1)[-1]
    target = cache_root() / f"{project}-{version}"
    if (target / name / probe).is_file():
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
                f"{project}=={version}",
            ],
            capture_output=True,
            text=True,
        )
        archives = list(Path(tmp).glob("*.tar.gz"))
        if done.returncode != 0 or not archives:
            return None, f"cannot download the {project} {version} sdist: {done.stderr[-300:]}"
        staging = Path(tmp) / "x"
        with tarfile.open(archives[0]) as tar:
            members = [m for m in tar.getmembers() if f"/{inside}/" in m.name]
            if not members:
                return None, f"the {project} {version} sdist has no {inside}/"
            tar.extractall(staging, members=members)  # noqa: S202 (names filtered above)
        (src,) = staging.glob(f"*/{inside}")
        target.mkdir(parents=True, exist_ok=True)
        dest = target / name
        if not dest.exists():
            src.rename(dest)
    return target, ""
