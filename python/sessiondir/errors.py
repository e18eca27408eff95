"""The exceptions of sessiondir, one class per variant of the Rust library's ``Error``.

Every class derives from :class:`Error`; where a builtin exception means the same thing, the
class derives from it too, so ``except LookupError`` or ``except TimeoutError`` catch what they
should. The message (``str(e)``) is the Rust error's and names the session id or the path;
both are also attributes (``id``, ``path``; ``None`` when the error has none).

=========================  ===========================================  ==================
Rust ``Error`` variant     Python class                                 also a
=========================  ===========================================  ==================
``InvalidId``              :class:`InvalidId`                           ``ValueError``
``NotFound``               :class:`NotFound`                            ``LookupError``
``Expired``                :class:`Expired` (a :class:`NotFound`)       ``LookupError``
``Deleted``                :class:`Deleted` (a :class:`NotFound`)       ``LookupError``
``AlreadyExists``          :class:`AlreadyExists`
``Busy``                   :class:`Busy`
``LockTimeout``            :class:`LockTimeout` (a :class:`Busy`)       ``TimeoutError``
``LockLost``               :class:`LockLost`
``Conflict``               :class:`Conflict`
``Corrupt``, ``Decode``    :class:`Corrupt`
``UnsupportedVersion``     :class:`UnsupportedVersion` (a Corrupt)
``TooLarge``               :class:`TooLarge`                            ``ValueError``
``Encode``                 :class:`EncodeError`                         ``ValueError``
``UnsafePath``,            :class:`ConfigError`
``UnsupportedFileSystem``,
``Config``
``Io``, ``Random``         :class:`IoError`                             ``OSError``
=========================  ===========================================  ==================

Data that is not JSON-compatible is refused before anything is written, with the builtin
``TypeError`` (a type that JSON cannot hold, a non-``str`` key) or ``ValueError`` (NaN, infinity,
nesting deeper than 100), naming the key.
"""

from __future__ import annotations

from typing import Optional

__all__ = [
    "Error",
    "InvalidId",
    "NotFound",
    "Expired",
    "Deleted",
    "AlreadyExists",
    "Busy",
    "LockTimeout",
    "LockLost",
    "Conflict",
    "Corrupt",
    "UnsupportedVersion",
    "TooLarge",
    "EncodeError",
    "ConfigError",
    "IoError",
]


class Error(Exception):
    """Base class of every sessiondir error."""

    #: The session id concerned (for :class:`InvalidId`, the rejected input), if any.
    id: Optional[str]
    #: The file or directory concerned, if any.
    path: Optional[str]

    def __init__(
        self,
        message: str,
        *,
        id: Optional[str] = None,
        path: Optional[str] = None,
        **extra: object,
    ) -> None:
        super().__init__(message)
        self.id = id
        self.path = None if path is None else str(path)
        for name, value in extra.items():
            setattr(self, name, value)

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class InvalidId(Error, ValueError):
    """A session id from outside (a cookie, a URL) is not 32 characters of ``[a-z2-7]``."""


class NotFound(Error, LookupError):
    """No such session (never existed, deleted, or garbage-collected)."""


class Expired(NotFound):
    """The session exists on disk but has expired."""


class Deleted(NotFound):
    """The session was deleted (or its id cycled) while waiting to check it out."""


class AlreadyExists(Error):
    """``create(..., id=...)``: a session with this id exists; nothing was written."""


class Busy(Error):
    """``checkout(id, timeout=0)``: somebody else holds the session."""


class LockTimeout(Busy, TimeoutError):
    """A check-out waited for the lock timeout. ``waited``: seconds waited."""

    waited: Optional[float] = None


class LockLost(Error):
    """The lock file was removed while held; nothing was written."""


class Conflict(Error):
    """The check-out no longer owned the session (a lock the file system did not enforce)."""


class Corrupt(Error):
    """A session file is damaged, or its data is not a JSON record; the file is left alone."""


class UnsupportedVersion(Corrupt):
    """A session file written by a newer sessiondir format."""


class TooLarge(Error, ValueError):
    """A session is larger than the store's ``max_session_size``."""


class EncodeError(Error, ValueError):
    """The session data could not be encoded."""


class ConfigError(Error):
    """The store directory is unsafe, on a refused file system, or configured differently."""


class IoError(Error, OSError):
    """An operating-system call failed. ``errno``, ``op`` (the verb) and ``path`` say which."""

    op: Optional[str] = None

    def __init__(self, message: str, *, errno: Optional[int] = None, **kw: object) -> None:
        Error.__init__(self, message, **kw)  # type: ignore[arg-type]
        self.errno = errno
        self.strerror = message
