"""Framework session *objects* on a :class:`sessiondir.Store`: shared by the session3 and
Webware adapters (the Flask and Django ones store plain dicts and do not need it).

Three things live here:

* **Keys.** A framework hands us its own session keys (session3: 16 hex digits; Webware:
  ``prefix-YYYYmmddHHMMSS-<md5 hex>``; tests: ``foo-3``). A key that is already a sessiondir
  id is used as is; any other string is mapped to one by a BLAKE2b hash (160 bits, personalised
  ``sessiondir.key``), so no path is ever built from a cookie and the file name stays in the
  store's format. The key itself is kept in the record (entry ``key``), so listing a store gives
  the framework's keys back, and a load checks it (a file whose ``key`` differs is not this
  session).
* **Codecs.** A session object becomes the record ``{"key": ..., "pickle": <base64>}`` (pickled,
  as the frameworks' own file stores do) or ``{"key": ..., "state": {...}}`` (JSON: the object's
  ``__dict__``, which must hold JSON-compatible values, rebuilt into the *configured* class,
  never one named by the file).
* **Writes.** :func:`write` saves a record through a held check-out, or checks the session out
  just for the write, or creates it: the "save" the frameworks expect, which never raises for
  a session that does not exist yet.

Pickle and who may write the directory: unpickling runs code chosen by whoever wrote the
bytes. In pickle mode anyone who can write a file into the session directory can make the
application run code, exactly as with session3's ``DirectorySessionStore`` and Webware's
``SessionFileStore``. sessiondir refuses, at open, a store directory that is writable by other
users or owned by another user (the library's ``UnsafePath`` check, :class:`ConfigError` here),
so in practice that is the application's own user and root; a process that shares the
directory (the ``sessiondir`` command, a Rust service) must be trusted as much as the
application. Where that is not so, use the JSON mode: a forged file can then at most change
session data.
"""

from __future__ import annotations

import base64
import hashlib
import io
import pickle
from typing import Any, Callable, Optional

import sessiondir
from sessiondir.errors import AlreadyExists, Corrupt, Deleted, Expired, NotFound

__all__ = ["id_for_key", "PickleCodec", "JsonCodec", "load", "decode", "write", "keys"]

#: An encoder writes an object to a binary file; a decoder reads one back (Webware's
#: ``encoder()``/``decoder()`` signatures, which are ``pickle.dump``/``pickle.load``'s).
Encoder = Callable[[Any, io.BytesIO], Any]
Decoder = Callable[[io.BytesIO], Any]


def id_for_key(key: str) -> str:
    """The sessiondir id a framework key is stored under (``TypeError`` if not a ``str``)."""
    if not isinstance(key, str):
        raise TypeError(f"session keys must be str, not {type(key).__name__} {key!r}")
    if sessiondir.is_valid_id(key):
        return key
    digest = hashlib.blake2b(
        key.encode("utf-8", "surrogatepass"), digest_size=20, person=b"sessiondir.key"
    ).digest()
    return base64.b32encode(digest).decode("ascii").lower()


class PickleCodec:
    """Session objects pickled (``encoder(obj, file)`` / ``decoder(file)``, default
    ``pickle.dump`` with ``protocol`` and ``pickle.load``), kept as base64 text."""

    def __init__(
        self,
        encoder: Optional[Encoder] = None,
        decoder: Optional[Decoder] = None,
        protocol: int = pickle.HIGHEST_PROTOCOL,
    ) -> None:
        self.encoder: Encoder = encoder or (lambda obj, f: pickle.dump(obj, f, protocol))
        self.decoder: Decoder = decoder or pickle.load

    def encode(self, key: str, obj: Any) -> dict[str, Any]:
        buffer = io.BytesIO()
        self.encoder(obj, buffer)
        return {"key": key, "pickle": base64.b64encode(buffer.getvalue()).decode("ascii")}

    def decode(self, record: dict[str, Any]) -> Any:
        return self.decoder(io.BytesIO(base64.b64decode(record["pickle"], validate=True)))


class JsonCodec:
    """Session objects as their ``__dict__`` (JSON-compatible values only; anything else is
    refused with ``TypeError`` naming the attribute, before anything is written), rebuilt
    into ``cls`` without calling its ``__init__``."""

    def __init__(self, cls: type) -> None:
        self.cls: Any = cls

    def encode(self, key: str, obj: Any) -> dict[str, Any]:
        return {"key": key, "state": dict(vars(obj))}

    def decode(self, record: dict[str, Any]) -> Any:
        obj = self.cls.__new__(self.cls)
        obj.__dict__.update(record["state"])
        return obj


def load(store: sessiondir.Store, key: str, codec: Any) -> Any:
    """The object stored under ``key`` (lock-free read), or ``None`` if there is none, it
    expired, or the file holds another key. :class:`sessiondir.Corrupt` names the session
    when its record does not decode."""
    record = store.load(id_for_key(key))
    if record is None or record.get("key") != key:
        return None
    return decode(store, key, record, codec)


def decode(store: sessiondir.Store, key: str, record: dict[str, Any], codec: Any) -> Any:
    """``codec.decode(record)``, any failure raised as :class:`sessiondir.Corrupt` naming the
    key and the file."""
    try:
        return codec.decode(record)
    except Exception as err:  # a decoder can raise anything (UnpicklingError, binascii...)
        path = store.session_path(id_for_key(key))
        raise Corrupt(
            f"session {key!r} at {path}: cannot decode its record: {err!r}",
            id=id_for_key(key),
            path=path,
        ) from err


def write(
    store: sessiondir.Store,
    key: str,
    record: dict[str, Any],
    *,
    held: Optional[sessiondir.Checkout] = None,
) -> None:
    """Saves ``record`` under ``key``: through ``held`` (kept checked out) if given, else by a
    check-out just for this write, else (no such session) by creating it."""
    if held is not None and held.held:
        held.data = record
        held.save()
        return
    sid = id_for_key(key)
    for _ in range(100):  # a create racing a delete: each round makes progress
        try:
            with store.checkout(sid) as session:
                session.data = record
            return
        except (NotFound, Expired, Deleted):
            pass
        try:
            store.create(record, id=sid)
            return
        except AlreadyExists:
            continue
    raise RuntimeError(f"session {key!r}: create and delete kept racing for 100 rounds")


def keys(store: sessiondir.Store) -> list[str]:
    """The framework keys of every live session in the store (each record read lock-free)."""
    found = []
    for sid in store.iter_ids():
        try:
            record = store.load(sid)
        except Corrupt:
            continue
        if record is not None and isinstance(record.get("key"), str):
            found.append(record["key"])
    return found
