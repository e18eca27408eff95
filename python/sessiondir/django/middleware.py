"""``CheckoutSessionMiddleware``: Django's ``SessionMiddleware``, holding the session checked
out for the whole of every request that may write to it, as sessiondir's axum layer does.

Which requests hold the session:

* A request whose method is in ``SESSIONDIR_CHECKOUT_METHODS`` (default ``POST``, ``PUT``,
  ``PATCH``, ``DELETE``: the methods that change state) checks its session out at the
  session's **first access** (a request that never touches the session takes no lock) and
  holds it until its response has been saved. A second request on the same session waits at
  its own first access until the first one is done, and then reads what it wrote: concurrent
  requests on one session queue, and none overwrites another's change.
* Other requests (``GET``, ``HEAD``, ``OPTIONS``...) read the session without a lock and never
  wait. If one of them changes the session anyway, its save checks the session out just for
  the write (atomic, but last writer wins, as with every Django backend).
* A view decorated with :func:`checkout_session` always holds the session (a ``GET`` view that
  counts page views, say); one decorated with :func:`readonly_session` never does (a ``POST``
  search form). ``request.session.hold()`` does the same from inside a view, before the
  session is changed.

Why by method and at first access, not at first write: a lock taken at the first *write*
comes too late for a read-modify-write (``n = session["n"]; session["n"] = n + 1``), whose
read must already be under the lock; the method is known before the view reads anything.

If the view raises, the session is released without writing and the response gets no
session cookie (Django's own middleware also skips the save for any 5xx response). A lock
wait longer than ``SESSIONDIR_LOCK_TIMEOUT`` raises :class:`sessiondir.LockTimeout` from the
first access of ``request.session``; raised out of a view, it is answered ``503 Service
Unavailable`` with ``Retry-After: 1`` (as sessiondir's axum layer answers), nothing written.

Use it in place of ``django.contrib.sessions.middleware.SessionMiddleware``, with
``SESSION_ENGINE = "sessiondir.django"``.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from django.conf import settings
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest, HttpResponse

from sessiondir._views import checkout_session, readonly_session
from sessiondir.errors import LockTimeout

__all__ = ["CheckoutSessionMiddleware", "checkout_session", "readonly_session"]

DEFAULT_CHECKOUT_METHODS = ("POST", "PUT", "PATCH", "DELETE")


class CheckoutSessionMiddleware(SessionMiddleware):
    """Session middleware that holds a writer request's session checked out (see the module
    documentation). Needs ``SESSION_ENGINE = "sessiondir.django"``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        super().__init__(get_response)
        if not hasattr(self.SessionStore, "hold"):
            from django.core.exceptions import ImproperlyConfigured

            raise ImproperlyConfigured(
                "CheckoutSessionMiddleware needs SESSION_ENGINE = 'sessiondir.django' "
                f"(got {settings.SESSION_ENGINE!r})"
            )
        methods = getattr(settings, "SESSIONDIR_CHECKOUT_METHODS", DEFAULT_CHECKOUT_METHODS)
        self.checkout_methods = frozenset(m.upper() for m in methods)

    def process_request(self, request: HttpRequest) -> None:
        super().process_request(request)
        if request.method in self.checkout_methods:
            request.session.hold()  # type: ignore[attr-defined]

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., Any],
        view_args: Any,
        view_kwargs: Any,
    ) -> Optional[HttpResponse]:
        wanted = getattr(view_func, "sessiondir_checkout", None)
        session = getattr(request, "session", None)
        if session is None or wanted is None:
            return None
        if wanted:
            session.hold()
        elif not session.held:
            session._hold = False
        return None

    def process_exception(
        self, request: HttpRequest, exception: Exception
    ) -> Optional[HttpResponse]:
        session = getattr(request, "session", None)
        if session is not None:
            request.sessiondir_abandoned = True  # type: ignore[attr-defined]
            session.release()
        if isinstance(exception, LockTimeout):
            response = HttpResponse(
                "The session is busy with another request; try again.",
                status=503,
                content_type="text/plain",
            )
            response["Retry-After"] = "1"
            return response
        return None

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        session = getattr(request, "session", None)
        try:
            if session is None or getattr(request, "sessiondir_abandoned", False):
                return response
            return super().process_response(request, response)
        finally:
            if session is not None:
                session.release()
