"""The Python API: data round-trips, check-out semantics, errors, housekeeping."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import threading
import time
from pathlib import Path

import pytest

import sessiondir
from sessiondir import Store

# --- data -----------------------------------------------------------------------------------


def test_json_values_round_trip(store: Store) -> None:
    data = {
        "str": 'héllo "quoted" \n\u2603',
        "int": -42,
        "big": 2**200,
        "neg_big": -(2**70),
        "u64": 2**64 - 1,
        "float": 2.5,
        "integral_float": 3.0,
        "neg_zero": -0.0,
        "tiny": 5e-324,
        "huge": 1.7976931348623157e308,
        "true": True,
        "none": None,
        "list": [1, "two", [3.0, None], {"four": 4}],
        "dict": {"z": 1, "a": {"nested": [True, False]}},
        "empty": {},
    }
    sid = store.create(data)
    back = store.load(sid)
    assert back == data
    assert type(back["integral_float"]) is float and type(back["big"]) is int
    assert type(back["true"]) is bool
    assert str(back["neg_zero"]) == "-0.0"
    # Nested dicts keep their order; the top-level keys come back sorted (the record is a
    # sorted map).
    assert list(back["dict"]) == ["z", "a"]
    assert list(back) == sorted(data)


def test_tuples_become_lists_and_subclasses_their_base(store: Store) -> None:
    import enum

    class Color(enum.IntEnum):
        RED = 7

    class Name(str):
        pass

    sid = store.create({"t": (1, (2, 3)), "e": Color.RED, "big_e": [Color.RED], "s": Name("x")})
    back = store.load(sid)
    assert back == {"t": [1, [2, 3]], "e": 7, "big_e": [7], "s": "x"}
    assert type(back["e"]) is int and type(back["s"]) is str


@pytest.mark.parametrize(
    "data, error, fragment",
    [
        ({1: "a"}, TypeError, "int key 1"),
        ({"a": {2: "b"}}, TypeError, 'int key 2 in "a"'),
        ({"when": dt.datetime(2020, 1, 1)}, TypeError, 'session value "when" is of type datetime'),
        ({"a": [1, {"b": b"bytes"}]}, TypeError, '"a"[1]["b"] is of type bytes'),
        ({"s": {1, 2}}, TypeError, "of type set"),
        ({"x": float("nan")}, ValueError, '"x" is NaN'),
        ({"x": [float("inf")]}, ValueError, '"x"[0] is inf'),
    ],
)
def test_non_json_data_is_refused_naming_the_key(store: Store, data, error, fragment) -> None:
    with pytest.raises(error, match=None) as caught:
        store.create(data)
    assert fragment in str(caught.value)
    assert store.ids() == []  # nothing written


def test_nesting_and_cycles_are_refused(store: Store) -> None:
    deep: list = []
    cur = deep
    for _ in range(sessiondir._native.MAX_DEPTH + 5):
        cur.append([])
        cur = cur[0]
    with pytest.raises(ValueError, match="nested deeper"):
        store.create({"deep": deep})
    loop: list = []
    loop.append(loop)
    with pytest.raises(ValueError, match="contains itself"):
        store.create({"loop": loop})
    ok: list = []
    cur = ok
    for _ in range(sessiondir._native.MAX_DEPTH - 1):
        cur.append([])
        cur = cur[0]
    assert store.load(store.create({"ok": ok})) == {"ok": ok}


def test_data_must_be_a_mapping(store: Store) -> None:
    with pytest.raises(TypeError, match="must be a dict"):
        store.create([("a", 1)])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="keys must be str"):
        with store.checkout(store.create({})) as s:
            s[1] = "x"  # type: ignore[index]


# --- reads and ids --------------------------------------------------------------------------


def test_load_missing_and_malformed(store: Store) -> None:
    assert store.load(sessiondir.new_id()) is None
    with pytest.raises(sessiondir.InvalidId) as caught:
        store.load("../../etc/passwd")
    assert isinstance(caught.value, ValueError) and caught.value.id == "../../etc/passwd"
    assert store.get("../../etc/passwd") is None and store.get(None) is None
    assert "../x" not in store


def test_ids_exists_iteration(store: Store) -> None:
    made = {store.create({"n": n}) for n in range(5)}
    assert set(store.ids()) == made == set(store) == set(store.iter_ids())
    walk = store.iter_ids()
    assert iter(walk) is walk and len(list(walk)) == 5 and list(walk) == []
    assert all(store.exists(i) and i in store for i in made)
    assert all(sessiondir.is_valid_id(i) for i in made)
    assert sessiondir.is_valid_id(sessiondir.new_id())


def test_create_with_id(store: Store) -> None:
    sid = sessiondir.new_id()
    assert store.create({"a": 1}, id=sid) == sid
    with pytest.raises(sessiondir.AlreadyExists) as caught:
        store.create({"a": 2}, id=sid)
    assert caught.value.id == sid and sid in str(caught.value)
    assert store.load(sid) == {"a": 1}


# --- check-out ------------------------------------------------------------------------------


def test_checkout_checks_in_on_normal_exit(store: Store) -> None:
    sid = store.create({"cart": []})
    with store.checkout(sid) as s:
        s["cart"].append("tea")  # in place: written too
        s["user"] = "ada"
        assert store.load(sid) == {"cart": []}  # readers see the last checked-in version
    assert store.load(sid) == {"cart": ["tea"], "user": "ada"}
    assert not s.held
    with pytest.raises(ValueError, match="checked in"):
        s.save()


def test_checkout_releases_without_writing_on_exception(store: Store) -> None:
    sid = store.create({"n": 1})
    with pytest.raises(RuntimeError, match="boom"):
        with store.checkout(sid) as s:
            s["n"] = 2
            raise RuntimeError("boom")
    assert store.load(sid) == {"n": 1}
    with store.checkout(sid, timeout=0) as s:  # released: not busy
        assert s["n"] == 1


def test_save_keeps_it_held_and_release_drops_changes(store: Store) -> None:
    sid = store.create({"n": 1})
    s = store.checkout(sid)
    s["n"] = 2
    s.save()
    assert store.load(sid) == {"n": 2} and s.held
    s["n"] = 3
    s.release()
    assert store.load(sid) == {"n": 2}
    s.release()  # idempotent


def test_busy_and_timeout(store: Store) -> None:
    sid = store.create({})
    with store.checkout(sid):
        with pytest.raises(sessiondir.Busy) as busy:
            store.checkout(sid, timeout=0)
        assert busy.value.id == sid

        errors: list[BaseException] = []

        def other() -> None:
            try:
                store.checkout(sid, timeout=0.2)
            except BaseException as e:  # noqa: BLE001 (reported below)
                errors.append(e)

        t = threading.Thread(target=other)
        t.start()
        t.join(10)
        (e,) = errors
        assert isinstance(e, sessiondir.LockTimeout) and isinstance(e, TimeoutError)
        assert isinstance(e, sessiondir.Busy) and e.id == sid and sid in str(e)
        assert e.waited is not None and e.waited >= 0.2


def test_missing_session_errors_name_the_id(store: Store) -> None:
    sid = sessiondir.new_id()
    for call in (store.checkout, store.cycle_id, store.touch):
        with pytest.raises(sessiondir.NotFound) as caught:
            call(sid)
        assert caught.value.id == sid and sid in str(caught.value)
        assert isinstance(caught.value, LookupError)
    expired = store.create({}, expires=-1)
    with pytest.raises(sessiondir.Expired):
        store.checkout(expired)


def test_gil_is_released_while_waiting(store: Store) -> None:
    sid = store.create({})
    held = store.checkout(sid)
    done = threading.Event()

    def waiter() -> None:
        with store.checkout(sid, timeout=10):
            pass
        done.set()

    t = threading.Thread(target=waiter)
    t.start()
    # The waiter blocks in Rust; this thread keeps running Python meanwhile.
    spins = 0
    deadline = time.monotonic() + 0.3
    while time.monotonic() < deadline:
        spins += 1
    assert spins > 10_000 and not done.is_set()
    held.release()
    t.join(10)
    assert done.is_set()


def test_threads_increment_exactly(store: Store) -> None:
    sid = store.create({"n": 0})
    threads, rounds = 8, 50

    def work() -> None:
        for _ in range(rounds):
            with store.checkout(sid) as s:
                s["n"] += 1

    ts = [threading.Thread(target=work) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert store.load(sid) == {"n": threads * rounds}


def _process_work(path: str, sid: str, rounds: int) -> None:
    with Store(path) as store:
        for _ in range(rounds):
            with store.checkout(sid) as s:
                s["n"] += 1


def test_processes_increment_exactly(store: Store, store_dir: Path) -> None:
    sid = store.create({"n": 0})
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_process_work, args=(str(store_dir), sid, 40)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert store.load(sid) == {"n": 160}


# --- delete, cycle, expiry, housekeeping ----------------------------------------------------


def test_delete_and_cycle(store: Store) -> None:
    sid = store.create({"a": 1})
    new = store.cycle_id(sid)
    assert new != sid and not store.exists(sid) and store.load(new) == {"a": 1}
    assert store.delete(new) is True and store.delete(new) is False
    sid = store.create({"a": 1})
    with store.checkout(sid) as s:
        s["a"] = 2
        moved = s.cycle_id()
        assert s.id == moved != sid
    assert store.load(moved) == {"a": 2} and store.load(sid) is None
    s = store.checkout(moved)
    s.delete()
    assert store.load(moved) is None and not s.held


def test_expiry_forms(store: Store) -> None:
    now = time.time()
    a = store.create({}, expires=60)
    b = store.create({}, expires=dt.timedelta(hours=1))
    c = store.create({}, expires=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1))
    d = store.create({}, expires=-5)
    assert abs(store.info(a).expires - (now + 60)) < 5
    assert abs(store.info(b).expires - (now + 3600)) < 5
    assert abs(store.info(c).expires - (now + 86400)) < 5
    assert store.info(d).expired and store.load(d) is None and not store.exists(d)
    assert store.info(sessiondir.new_id()) is None
    store.set_expiry(a, None)
    assert store.info(a).expires is None


def test_idle_expiry_slides(store_dir: Path) -> None:
    with Store(store_dir, idle_expiry=100) as store:
        sid = store.create({})
        first = store.info(sid)
        assert first.idle_ttl == 100 and first.expires is not None
        time.sleep(0.01)
        assert store.touch(sid).expires > first.expires


def test_delete_expired_and_idle(store: Store) -> None:
    live = store.create({}, expires=3600)
    gone = store.create({}, expires=-1)
    report = store.delete_expired()
    assert report.deleted == 1 and report.scanned == 2
    assert store.ids() == [live] and gone not in store.ids()
    time.sleep(0.05)
    assert store.delete_idle(0.01).deleted == 1
    assert store.ids() == []


def test_tidy_removes_dead_writers_temp_files(store: Store) -> None:
    sid = store.create({"a": 1})
    path = Path(store.session_path(sid))
    (path.parent / f".{sid}.dead.tmp").write_bytes(b"half a session")
    report = store.tidy()
    assert report.temp_files_removed == 1
    assert store.load(sid) == {"a": 1}


def test_tidy_removes_orphaned_spares(store: Store) -> None:
    sid = store.create({"a": 1})
    with store.checkout(sid) as s:  # the first check-in makes the session's spare
        s["a"] = 2
    path = Path(store.session_path(sid))
    spare = path.parent / f".{sid}.spare"
    assert spare.is_file()
    os.unlink(path)  # as a cycle_id killed between its two renames leaves it
    report = store.tidy()
    assert (report.orphan_spares_removed, report.orphan_locks_removed) == (1, 1)
    assert not spare.exists()


def test_tidy_names_a_planted_lock_file_symlink_in_refused(
    store: Store, store_dir: Path, tmp_path: Path
) -> None:
    sid = store.create({"a": 1})
    shard = Path(store.session_path(sid)).parent.name
    assert store.delete(sid)
    # Where the deleted session's lock file was: a symlink that would lead tidy's removal of
    # an "orphaned lock file" out of the store.
    target = tmp_path / "not-the-stores"
    target.write_bytes(b"")
    lock = store_dir / "locks" / shard / sid
    lock.symlink_to(target)
    report = store.tidy()
    assert [path for path, _ in report.refused] == [str(lock)]
    ((_, reason),) = report.refused
    assert "symlink" in reason
    assert str(lock) in repr(report) and "refused=[(" in repr(report)
    assert report.orphan_locks_removed == 0 and report.failed == 0
    assert lock.is_symlink() and target.exists(), "never followed nor removed"
    # gc shows the same attribute; nothing refused here (the shards are real directories).
    gc = store.delete_expired()
    assert gc.refused == [] and gc.forwards_removed == 0
    assert "refused=[]" in repr(gc)


def test_delete_expired_removes_expired_forwarding_records(store: Store) -> None:
    old = store.create({"a": 1})
    new = store.cycle_id(old)
    record = Path(store.session_path(new)).parent.parent
    record = next(record.glob(f"*/.{old}.fwd"))
    assert store.delete_expired().forwards_removed == 0, "still live"
    assert record.exists()
    record.write_bytes(b"SDFW damaged")  # never followed: removed like an expired one
    assert store.delete_expired().forwards_removed == 1
    assert not record.exists() and store.load(new) == {"a": 1}


def test_corrupt_file_names_its_path(store: Store) -> None:
    sid = store.create({"a": 1})
    path = store.session_path(sid)
    with open(path, "r+b") as f:
        f.seek(-1, os.SEEK_END)
        f.write(b"\xff")
    with pytest.raises(sessiondir.Corrupt) as caught:
        store.load(sid)
    assert caught.value.path == path and path in str(caught.value)


def test_close(store_dir: Path) -> None:
    store = Store(store_dir)
    sid = store.create({})
    assert store.close() is not None and store.closed
    assert store.close() is None
    with pytest.raises(ValueError, match="closed"):
        store.load(sid)
    with Store(store_dir) as again:
        assert again.exists(sid)


def test_settings_are_checked(store_dir: Path) -> None:
    with pytest.raises(ValueError, match="durability"):
        Store(store_dir, durability="paranoid")
    with pytest.raises(ValueError, match="lock_timeout"):
        Store(store_dir, lock_timeout=-1)
    with pytest.raises(sessiondir.ConfigError):
        Store(store_dir / "missing", create_if_missing=False)
    for level in ("none", "file_data", "file_and_directory"):
        with Store(store_dir, durability=level) as s:
            assert s.load(s.create({"level": level})) == {"level": level}


def test_io_error_is_an_oserror(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(sessiondir.Error) as caught:
        Store(blocker / "sessions")
    assert str(blocker) in str(caught.value)
    if isinstance(caught.value, sessiondir.IoError):
        assert isinstance(caught.value, OSError) and caught.value.errno is not None


def test_too_large(store_dir: Path) -> None:
    with Store(store_dir, max_session_size=100) as store:
        with pytest.raises(sessiondir.TooLarge):
            store.create({"blob": "x" * 1000})
