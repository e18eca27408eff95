"""Django's own session backend tests (``SessionTestsMixin`` of ``tests/sessions_tests/
tests.py`` in the Django source distribution, for the installed version) run against
``sessiondir.django.SessionStore``.

Nothing of the mixin is skipped or overridden (``SKIPPED`` below is empty, and the test
``test_no_test_skipped`` holds it to that); the only adaptation is the ``setUp`` every backend
class in Django's file does for its storage: a fresh session directory per test.
"""

from __future__ import annotations

import tempfile

import pytest

import conftest

if conftest.SUITE_DIR is None:
    pytest.skip(
        f"Django's SessionTestsMixin unavailable: {conftest.SUITE_SKIP_REASON}",
        allow_module_level=True,
    )

from django.test import SimpleTestCase, override_settings  # noqa: E402
from sessions_tests.tests import SessionTestsMixin  # noqa: E402

from sessiondir.django import SessionStore  # noqa: E402

#: Tests of the mixin that are skipped, with the reason: none.
SKIPPED: dict[str, str] = {}


class SessiondirSessionTests(SessionTestsMixin, SimpleTestCase):
    """Every test of Django's mixin, against the sessiondir engine."""

    backend = SessionStore

    def setUp(self):
        directory = tempfile.mkdtemp(dir=conftest.RUN_DIR)
        overridden = override_settings(SESSIONDIR_PATH=directory)
        overridden.enable()
        self.addCleanup(overridden.disable)
        super().setUp()


def test_mixin_has_tests():
    names = [n for n in dir(SessionTestsMixin) if n.startswith("test_")]
    # Django 4.2 has 40-odd, 5.x 70-odd (async twins); a handful would mean a broken import.
    assert len(names) > 30, names


def test_no_test_skipped():
    assert SKIPPED == {}
