"""A Django session engine on sessiondir, and a middleware that loses no update.

Settings::

    SESSION_ENGINE = "sessiondir.django"
    SESSIONDIR_PATH = BASE_DIR / "sessions"     # the session directory (required in production)
    MIDDLEWARE = [
        ...,
        # instead of django.contrib.sessions.middleware.SessionMiddleware:
        "sessiondir.django.middleware.CheckoutSessionMiddleware",
        ...,
    ]

The engine alone (with Django's ``SessionMiddleware``) is a drop-in for Django's file backend
whose writes are atomic and whose ``clearsessions`` is a garbage-collection pass; the
middleware adds what no Django backend has: a request that may write holds its session checked
out from its first access to its response, so concurrent requests on one session queue and
none overwrites another's change. See :mod:`sessiondir.django.engine` and
:mod:`sessiondir.django.middleware`.
"""

from .engine import SessionStore, get_store

__all__ = ["SessionStore", "get_store"]
