"""Views of the test project: a counter in the session."""

import time

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from sessiondir.django.middleware import checkout_session, readonly_session


@csrf_exempt
def start(request: HttpRequest) -> HttpResponse:
    """Creates a session with a counter at 0 and returns its key (also set as the cookie)."""
    request.session["n"] = 0
    request.session.save()
    return HttpResponse(request.session.session_key)


def _increment(request: HttpRequest) -> HttpResponse:
    n = request.session.get("n", 0)
    if settings.DELAY:
        time.sleep(settings.DELAY)  # the view's work between reading and writing
    request.session["n"] = n + 1
    return HttpResponse(str(n + 1))


@csrf_exempt
def incr(request: HttpRequest) -> HttpResponse:
    """POST: a read-modify-write of the counter."""
    return _increment(request)


@checkout_session
def count_view(request: HttpRequest) -> HttpResponse:
    """GET, but it writes: held because of the decorator."""
    return _increment(request)


def value(request: HttpRequest) -> HttpResponse:
    """GET: reads the counter (lock-free)."""
    return HttpResponse(str(request.session.get("n")))


@csrf_exempt
@readonly_session
def search(request: HttpRequest) -> HttpResponse:
    """POST that only reads the session: not held because of the decorator."""
    return JsonResponse({"n": request.session.get("n"), "held": _held(request)})


@csrf_exempt
def fail(request: HttpRequest) -> HttpResponse:
    """POST that changes the session and then fails: nothing may be written."""
    request.session["n"] = -1
    raise ValueError("the view failed")


@csrf_exempt
def held(request: HttpRequest) -> HttpResponse:
    """Any method: touches the session, then reports whether it is checked out."""
    request.session.get("n")
    return JsonResponse({"held": _held(request)})


@csrf_exempt
def login(request: HttpRequest) -> HttpResponse:
    """POST: a new session id (against fixation), data kept, a user recorded."""
    request.session.cycle_key()
    request.session["user"] = "ada"
    return HttpResponse(request.session.session_key)


@csrf_exempt
def logout(request: HttpRequest) -> HttpResponse:
    """POST: the session is deleted."""
    request.session.flush()
    return HttpResponse("bye")


def _held(request: HttpRequest) -> bool:
    return bool(getattr(request.session, "held", False))
