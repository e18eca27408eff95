#!/usr/bin/env python3
"""Lock and lost-update probe for two mounts of one shared file system.

Usage:
  probe.py locks   MOUNT_A MOUNT_B               # flock / OFD / POSIX exclusion across mounts
  probe.py counter MOUNT_A MOUNT_B [--per-mount 2] [--incs 50] [--lock flock|ofd|posix|none]
  probe.py all     MOUNT_A MOUNT_B [--label NAME] [counter options]   # both, plus a summary line

Each mount stands for one "host". `locks` opens one file through each mount and checks that a
lock taken through A excludes a lock through B, that it is released, and how long a blocked
waiter on B takes to wake after A unlocks. `counter` runs N worker processes per mount; each does
`incs` times: open lock file `lk` on its mount, lock it exclusively (blocking), read the counter
file `c` (decimal), write `c.tmp.<pid>`, rename it over `c`, unlock. ESTALE (errno 116) and
ENOENT on the read are retried and counted. The final counter is read through every mount after
the kernel caches had time to expire. Exit status: 0 = all as a correct shared file system
behaves, 1 = some check failed (lock not excluded, update lost), 2 = usage/setup error.
Standard library only.
"""
import argparse
import errno
import fcntl
import json
import os
import struct
import subprocess
import sys
import time

F_OFD_GETLK = getattr(fcntl, "F_OFD_GETLK", 36)
F_OFD_SETLK = getattr(fcntl, "F_OFD_SETLK", 37)
F_OFD_SETLKW = getattr(fcntl, "F_OFD_SETLKW", 38)
EWOULD = (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)


def flock_struct(ltype):
    # struct flock on Linux x86_64/aarch64: short type, short whence, off_t start, off_t len,
    # pid_t pid (+ padding). l_pid must be 0 for OFD locks.
    return struct.pack("hhqqi4x", ltype, os.SEEK_SET, 0, 0, 0)


def do_lock(fd, kind, blocking=True):
    """Take an exclusive whole-file lock of `kind`. Raises OSError(EWOULDBLOCK/EAGAIN) if busy."""
    if kind == "flock":
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    elif kind == "ofd":
        fcntl.fcntl(fd, F_OFD_SETLKW if blocking else F_OFD_SETLK, flock_struct(fcntl.F_WRLCK))
    elif kind == "posix":
        fcntl.fcntl(fd, fcntl.F_SETLKW if blocking else fcntl.F_SETLK, flock_struct(fcntl.F_WRLCK))
    elif kind == "none":
        pass
    else:
        raise ValueError(kind)


def do_unlock(fd, kind):
    if kind == "flock":
        fcntl.flock(fd, fcntl.LOCK_UN)
    elif kind == "ofd":
        fcntl.fcntl(fd, F_OFD_SETLK, flock_struct(fcntl.F_UNLCK))
    elif kind == "posix":
        fcntl.fcntl(fd, fcntl.F_SETLK, flock_struct(fcntl.F_UNLCK))


def try_lock(fd, kind):
    """True if granted, False if refused as busy; other errors propagate."""
    try:
        do_lock(fd, kind, blocking=False)
        return True
    except OSError as e:
        if e.errno in EWOULD:
            return False
        raise


def wait_visible(path, timeout=10.0):
    end = time.monotonic() + timeout
    while True:
        try:
            os.stat(path)
            return True
        except FileNotFoundError:
            if time.monotonic() > end:
                return False
            time.sleep(0.05)


def fresh_dir(mounts, prefix):
    name = "%s-%d-%d" % (prefix, os.getpid(), int(time.time() * 1000))
    os.mkdir(os.path.join(mounts[0], name))
    for m in mounts[1:]:
        if not wait_visible(os.path.join(m, name)):
            raise SystemExit("probe: %s not visible through %s within 10 s" % (name, m))
    return name


# ---------------------------------------------------------------- locks


def lock_checks(a, b):
    d = fresh_dir([a, b], "locks")
    pa, pb = os.path.join(a, d, "f"), os.path.join(b, d, "f")
    with open(pa, "w") as f:
        f.write("x")
    if not wait_visible(pb):
        raise SystemExit("probe: lock file not visible through B")
    res = {}

    def two_fds():
        return os.open(pa, os.O_RDWR), os.open(pb, os.O_RDWR)

    # Same mount, two open file descriptions: the local kernel must exclude (control).
    fa, fa2 = os.open(pa, os.O_RDWR), os.open(pa, os.O_RDWR)
    do_lock(fa, "flock", blocking=False)
    res["flock_same_mount_excluded"] = not try_lock(fa2, "flock")
    os.close(fa2)
    os.close(fa)

    for kind in ("flock", "ofd"):
        fa, fb = two_fds()
        do_lock(fa, kind, blocking=False)
        res[kind + "_excluded"] = not try_lock(fb, kind)
        if not res[kind + "_excluded"]:
            do_unlock(fb, kind)
        do_unlock(fa, kind)
        # After the release B must get it (allow for propagation).
        end, ok = time.monotonic() + 5, False
        while time.monotonic() < end:
            if try_lock(fb, kind):
                ok = True
                break
            time.sleep(0.02)
        res[kind + "_released"] = ok
        os.close(fa)
        os.close(fb)

    # flock LOCK_SH through A vs LOCK_EX through B.
    fa, fb = two_fds()
    fcntl.flock(fa, fcntl.LOCK_SH | fcntl.LOCK_NB)
    res["flock_sh_blocks_ex"] = not try_lock(fb, "flock")
    os.close(fa)
    os.close(fb)

    # POSIX (process-owned) locks: holder is this process via A, contender a child via B.
    fa = os.open(pa, os.O_RDWR)
    do_lock(fa, "posix", blocking=False)
    code = (
        "import fcntl,os,struct,sys\n"
        "fd=os.open(sys.argv[1],os.O_RDWR)\n"
        "try:\n"
        "    fcntl.fcntl(fd,fcntl.F_SETLK,struct.pack('hhqqi4x',fcntl.F_WRLCK,0,0,0,0)); print('granted')\n"
        "except OSError as e: print('busy' if e.errno in (11,13) else 'err%d'%e.errno)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, pb], capture_output=True, text=True, timeout=30)
    res["posix_excluded"] = out.stdout.strip() == "busy"
    do_unlock(fa, "posix")
    os.close(fa)
    out = subprocess.run([sys.executable, "-c", code, pb], capture_output=True, text=True, timeout=30)
    res["posix_released"] = out.stdout.strip() == "granted"

    # Blocking waiter through B, woken when A unlocks: wake latency (flock).
    fa = os.open(pa, os.O_RDWR)
    fcntl.flock(fa, fcntl.LOCK_EX)
    code = (
        "import fcntl,os,sys,time\n"
        "fd=os.open(sys.argv[1],os.O_RDWR)\n"
        "print('ready',file=sys.stderr,flush=True)\n"
        "fcntl.flock(fd,fcntl.LOCK_EX); print(repr(time.time()),flush=True)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code, pb], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    child.stderr.readline()
    time.sleep(0.5)  # let the child block in flock
    released = time.time()
    fcntl.flock(fa, fcntl.LOCK_UN)
    try:
        line, _ = child.communicate(timeout=30)
        # Negative: the waiter through B got the lock while A still held it.
        res["flock_wake_ms"] = round((float(line.strip()) - released) * 1000, 1)
        res["flock_waiter_blocked"] = res["flock_wake_ms"] >= 0
    except (subprocess.TimeoutExpired, ValueError):
        child.kill()
        child.wait()
        res["flock_wake_ms"] = None
        res["flock_waiter_blocked"] = False
    os.close(fa)
    return res


# ---------------------------------------------------------------- counter


def worker(args):
    """One worker: `incs` locked read-increment-rename cycles through one mount."""
    base, incs, kind = args.dir, args.incs, args.lock
    lk, c = os.path.join(base, "lk"), os.path.join(base, "c")
    tmp = "%s.tmp.%d" % (c, os.getpid())
    st = {"estale_read": 0, "estale_other": 0, "enoent_read": 0, "bad_read": 0, "written": []}
    for _ in range(incs):
        fd = os.open(lk, os.O_RDWR)
        do_lock(fd, kind)
        tries = 0
        while True:
            tries += 1
            if tries > 100000:
                raise SystemExit("worker: giving up on reading %s" % c)
            try:
                with open(c) as f:
                    s = f.read()
                v = int(s)
                break
            except OSError as e:
                if e.errno == errno.ESTALE:
                    st["estale_read"] += 1
                    continue
                if e.errno == errno.ENOENT:
                    st["enoent_read"] += 1
                    continue
                raise
            except ValueError:
                st["bad_read"] += 1
                continue
        while True:
            try:
                with open(tmp, "w") as f:
                    f.write(str(v + 1))
                os.rename(tmp, c)
                break
            except OSError as e:
                if e.errno != errno.ESTALE:
                    raise
                st["estale_other"] += 1
        st["written"].append(v + 1)
        if kind != "none":
            do_unlock(fd, kind)
        os.close(fd)
    print(json.dumps(st))


def read_counter(path):
    for _ in range(1000):
        try:
            with open(path) as f:
                return int(f.read())
        except OSError as e:
            if e.errno not in (errno.ESTALE, errno.ENOENT):
                raise
        except ValueError:
            pass
        time.sleep(0.01)
    return None


def counter(mounts, per_mount, incs, kind, timeout):
    d = fresh_dir(mounts, "counter")
    with open(os.path.join(mounts[0], d, "c"), "w") as f:
        f.write("0")
    open(os.path.join(mounts[0], d, "lk"), "w").close()
    for m in mounts[1:]:
        for n in ("c", "lk"):
            if not wait_visible(os.path.join(m, d, n)):
                raise SystemExit("probe: %s not visible through %s" % (n, m))
    procs = []
    t0 = time.monotonic()
    for m in mounts:
        for _ in range(per_mount):
            procs.append(subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "worker", os.path.join(m, d),
                 "--incs", str(incs), "--lock", kind],
                stdout=subprocess.PIPE, text=True))
    stats, failed = [], 0
    for p in procs:
        left = max(1.0, timeout - (time.monotonic() - t0))
        try:
            out, _ = p.communicate(timeout=left)
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate()
        if p.returncode != 0 or not out.strip():
            failed += 1
            continue
        stats.append(json.loads(out.strip().splitlines()[-1]))
    secs = time.monotonic() - t0
    expected = per_mount * len(mounts) * incs
    immediate = read_counter(os.path.join(mounts[0], d, "c"))
    time.sleep(2.5)  # longer than any default kernel attr/entry cache (1 s) on these mounts
    finals = [read_counter(os.path.join(m, d, "c")) for m in mounts]
    written = [v for s in stats for v in s["written"]]
    final = max([v for v in finals if v is not None], default=0)
    return {
        "lock": kind,
        "workers": per_mount * len(mounts),
        "expected": expected,
        "final_per_mount": finals,
        "final_immediate_a": immediate,
        "lost": expected - final,
        "duplicate_values_written": len(written) - len(set(written)),
        "estale_read_retries": sum(s["estale_read"] for s in stats),
        "estale_other_retries": sum(s["estale_other"] for s in stats),
        "enoent_read_retries": sum(s["enoent_read"] for s in stats),
        "bad_reads": sum(s["bad_read"] for s in stats),
        "failed_workers": failed,
        "seconds": round(secs, 2),
    }


def is_mount(path):
    real = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].encode().decode("unicode_escape")
            if mp == real:
                return True
    return False


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("locks", "counter", "all"):
        p = sub.add_parser(name)
        p.add_argument("mount_a")
        p.add_argument("mount_b")
        if name != "locks":
            p.add_argument("--per-mount", type=int, default=2)
            p.add_argument("--incs", type=int, default=50)
            p.add_argument("--lock", default="flock", choices=["flock", "ofd", "posix", "none"])
            p.add_argument("--timeout", type=float, default=600)
        if name == "all":
            p.add_argument("--label", default="")
    p = sub.add_parser("worker")
    p.add_argument("dir")
    p.add_argument("--incs", type=int, required=True)
    p.add_argument("--lock", required=True)
    args = ap.parse_args()

    if args.cmd == "worker":
        worker(args)
        return 0
    mounts = [args.mount_a, args.mount_b]
    for m in mounts:
        if not is_mount(m):
            print("probe: %s is not a mount point" % m, file=sys.stderr)
            return 2
    ok = True
    if args.cmd in ("locks", "all"):
        r = lock_checks(*mounts)
        print(json.dumps({"locks": r}), flush=True)
        ok &= all(v for k, v in r.items() if k != "flock_wake_ms")
    if args.cmd in ("counter", "all"):
        r = counter(mounts, args.per_mount, args.incs, args.lock, args.timeout)
        print(json.dumps({"counter": r}), flush=True)
        ok &= r["lost"] == 0 and r["duplicate_values_written"] == 0 and r["failed_workers"] == 0
    if args.cmd == "all":
        print("%s: %s" % (args.label or "probe", "OK" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
