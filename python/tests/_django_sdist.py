"""Django's own session tests (``tests/sessions_tests/``) from the Django source distribution
on PyPI, for the installed Django version (see :mod:`_sdist`); the directory returned is put
on ``sys.path`` so that ``sessions_tests.tests`` imports as the package it is in Django's
repository."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import django

import _sdist


def fetch() -> tuple[Optional[Path], str]:
    """``(directory holding sessions_tests/, "")`` or ``(None, why not)``."""
    return _sdist.fetch("django", django.get_version(), "tests/sessions_tests", "tests.py")
