"""Test configuration: Django settings for the in-process tests (the engine, the middleware and
Django's own ``SessionTestsMixin``), and shared fixtures.

Django is configured once, here, before any test module imports it: an in-memory SQLite
database (only the ``sessions_tests`` app's models need one), ``SESSION_ENGINE =
"sessiondir.django"`` with a session directory of the run's own.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import pytest

import _django_sdist

try:
    import django
    from django.conf import settings
except ImportError:  # the API tests run without Django
    django = None

SUITE_DIR, SUITE_SKIP_REASON = (None, "Django is not installed")
RUN_DIR = Path(tempfile.mkdtemp(prefix="sessiondir-pytest-"))

if django is not None:
    SUITE_DIR, SUITE_SKIP_REASON = _django_sdist.fetch()
    apps = ["django.contrib.contenttypes", "django.contrib.sessions"]
    if SUITE_DIR is not None:
        sys.path.insert(0, str(SUITE_DIR))
        apps.append("sessions_tests")
    settings.configure(
        SECRET_KEY="sessiondir-tests",
        INSTALLED_APPS=apps,
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        SESSION_ENGINE="sessiondir.django",
        SESSIONDIR_PATH=str(RUN_DIR / "django-sessions"),
        SESSIONDIR_LOCK_TIMEOUT=10,
        USE_TZ=True,
        ROOT_URLCONF=__name__,
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
    )
    django.setup()

urlpatterns: list = []


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(RUN_DIR, ignore_errors=True)


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "sessions"


@pytest.fixture
def store(store_dir: Path):
    import sessiondir

    with sessiondir.Store(store_dir, lock_timeout=10) as s:
        yield s
