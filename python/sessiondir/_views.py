"""The per-view hold decorators, one pair for every web adapter (Django's middleware, Flask):
each marks the view function with ``sessiondir_checkout``, which the adapter reads once it
knows the request's view."""

from __future__ import annotations

from typing import Any, Callable, TypeVar

__all__ = ["checkout_session", "readonly_session"]

_View = TypeVar("_View", bound=Callable[..., Any])


def checkout_session(view: _View) -> _View:
    """Decorator: requests to this view hold their session checked out, whatever the method."""
    view.sessiondir_checkout = True  # type: ignore[attr-defined]
    return view


def readonly_session(view: _View) -> _View:
    """Decorator: requests to this view read their session without a lock, whatever the
    method (a change is still saved, by a check-out just for the write)."""
    view.sessiondir_checkout = False  # type: ignore[attr-defined]
    return view
