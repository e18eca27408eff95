#!/usr/bin/env python3
"""Django session backends side by side, in one run, on one workload over real HTTP.

For each backend the test project (``python/tests/djangoapp``) is started under gunicorn with
``--workers`` processes; ``--sessions`` sessions are created; then ``--clients`` threads send
``--requests`` requests, a seeded shuffle of reads (``GET /value``) and read-modify-write
increments (``POST /incr``, which works ``--delay-ms`` between its read and its write), each
request naming one of the sessions by cookie. Reported per backend: requests per second, p50
and p99 latency, errors (non-200 answers), and lost updates (increments sent minus the sum of
the counters afterwards).

Backends: ``sessiondir`` (the engine with ``CheckoutSessionMiddleware``), ``sessiondir-plain``
(the engine with Django's ``SessionMiddleware``), Django's ``file``, ``db`` (SQLite) and
``cached_db`` (SQLite behind the file-based cache, the cache all worker processes share).

    pip install ./python django gunicorn
    python benches/django_sessions.py                 # defaults below
    python benches/django_sessions.py --json          # one JSON object per backend
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python" / "tests"))

from djangoapp.harness import burst, serve  # noqa: E402

BACKENDS = ["sessiondir", "sessiondir-plain", "file", "db", "cached_db"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backends", default=",".join(BACKENDS))
    ap.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    ap.add_argument("--clients", type=int, default=16, help="concurrent client threads")
    ap.add_argument("--sessions", type=int, default=4, help="sessions the requests share")
    ap.add_argument("--requests", type=int, default=1200)
    ap.add_argument("--write-ratio", type=float, default=0.5, help="share of increments")
    ap.add_argument("--delay-ms", type=float, default=1.0, help="work inside an increment")
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    rows = []
    for backend in a.backends.split(","):
        with serve(backend, workers=a.workers, delay_ms=a.delay_ms) as server:
            sids = [server.start_session() for _ in range(a.sessions)]
            rng = random.Random(a.seed)
            plan = []
            for _ in range(a.requests):
                sid = rng.choice(sids)
                if rng.random() < a.write_ratio:
                    plan.append(("POST", "/incr", sid))
                else:
                    plan.append(("GET", "/value", sid))
            writes = sum(1 for m, _, _ in plan if m == "POST")
            run = burst(server, plan, a.clients)
            counted = sum(server.counter(s) for s in sids)
        row = {
            "backend": backend,
            "ops_per_s": run.requests / run.seconds,
            "p50_ms": 1000 * run.p(0.50),
            "p99_ms": 1000 * run.p(0.99),
            "errors": run.errors,
            "increments": writes,
            "lost": writes - counted,
        }
        rows.append(row)
        if a.json:
            print(json.dumps(row), flush=True)
    if not a.json:
        print(
            f"{a.requests} requests ({a.write_ratio:.0%} increments, {a.delay_ms:g} ms of work "
            f"each) from {a.clients} clients over {a.sessions} sessions, gunicorn "
            f"--workers {a.workers}, seed {a.seed}\n"
        )
        print("| backend | ops/s | p50 ms | p99 ms | errors | lost updates |")
        print("|---|---:|---:|---:|---:|---:|")
        for r in rows:
            print(
                f"| {r['backend']} | {r['ops_per_s']:.0f} | {r['p50_ms']:.1f} | "
                f"{r['p99_ms']:.1f} | {r['errors']} | {r['lost']} of {r['increments']} "
                f"({100 * r['lost'] / max(1, r['increments']):.0f}%) |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
