"""Python and Rust share a session directory.

* Python → Rust: a session created from Python is shown by the ``sessiondir`` command
  (``sessiondir show --json``), each value as the JSON text the Rust adapters parse.
* Rust → Python: a session written by a Rust program as the tower/actix adapters' record
  (``examples/write_record.rs``) loads in Python; one of native Rust values is refused as
  ``Corrupt`` naming the entry.

The command is looked for in ``$SESSIONDIR_BIN``, then ``target/{debug,release}/sessiondir``
of the repository, then built with ``cargo build -p sessiondir-cli``; the example is run with
``cargo run --example``. Without cargo these tests are skipped, saying so.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import sessiondir

REPO = Path(__file__).resolve().parents[2]


def _cli() -> str:
    env = os.environ.get("SESSIONDIR_BIN")
    if env:
        return env
    for profile in ("debug", "release"):
        candidate = REPO / "target" / profile / "sessiondir"
        if candidate.is_file():
            return str(candidate)
    if shutil.which("cargo") is None:
        pytest.skip("no sessiondir command (set SESSIONDIR_BIN) and no cargo to build it")
    subprocess.run(["cargo", "build", "-q", "-p", "sessiondir-cli"], cwd=REPO, check=True)
    return str(REPO / "target" / "debug" / "sessiondir")


def test_python_session_is_shown_by_the_rust_command(store: sessiondir.Store) -> None:
    data = {"user": "ada", "n": 2**70, "cart": [{"sku": "tea", "qty": 2}], "ok": True}
    sid = store.create(data)
    out = subprocess.run(
        [_cli(), "show", "--dir", store.path, "--json", sid],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    shown = json.loads(out)
    assert shown["id"] == sid
    # Each entry is the Rust Dict's Text value: the JSON the adapters parse.
    assert {k: json.loads(v) for k, v in shown["data"].items()} == data
    text = subprocess.run(
        [_cli(), "show", "--dir", store.path, sid], capture_output=True, text=True, check=True
    ).stdout
    assert '"user"' in text and "ada" in text


def test_rust_record_loads_in_python(store: sessiondir.Store) -> None:
    if shutil.which("cargo") is None:
        pytest.skip("cargo is needed to run examples/write_record.rs")
    out = subprocess.run(
        ["cargo", "run", "-q", "--example", "write_record", "--", store.path],
        cwd=REPO / "python",
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    record, native = out
    assert store.load(record) == {
        "user": "ferris",
        "visits": 3,
        "cart": [{"sku": "tea", "qty": 2}],
        "big": 2**64 - 1,
    }
    with store.checkout(record) as s:
        s["visits"] += 1
    assert store.load(record)["visits"] == 4
    with pytest.raises(sessiondir.Corrupt) as caught:
        store.load(native)
    assert native in str(caught.value) and '"counter"' in str(caught.value)
