#!/usr/bin/env python3
"""The issue-3 contention matrix: `sessiondir bench --baseline` in every cell of
W in {1, 4, 16} x {hot, spread} x fsync {0, 1}, one fresh directory per cell, printed as a
Markdown table of medians (store vs. the bare-syscall floor, measured side by side).

    cargo build --release
    python3 benches/contention_matrix.py [--ops 300] [--rounds 3] [--dir-base /var/tmp]

Only ratios are meaningful on a shared machine: both systems run in the same invocation,
in alternating rounds, on the same disk.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

parser = argparse.ArgumentParser()
parser.add_argument("--bin", default="target/release/sessiondir")
parser.add_argument("--ops", type=int, default=300, help="ops per worker, fsync off")
parser.add_argument("--fsync-ops", type=int, default=100, help="ops per worker, fsync on")
parser.add_argument("--rounds", type=int, default=3)
parser.add_argument("--sessions", type=int, default=1000)
parser.add_argument("--workers", default="1,4,16")
parser.add_argument("--modes", default="hot,spread")
parser.add_argument("--fsync", default="0,1")
parser.add_argument("--dir-base", default="/var/tmp")
args = parser.parse_args()

rows = []
print("| fsync | mode | W | store ops/s | floor ops/s | ratio | store wait p99 / max (us) "
      "| floor wait p99 / max (us) | max/p99 | worker shares | verified |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for fsync in args.fsync.split(","):
    for mode in args.modes.split(","):
        for w in args.workers.split(","):
            base = tempfile.mkdtemp(dir=args.dir_base, prefix="sdmatrix.")
            d = os.path.join(base, "store")
            ops = args.ops if fsync == "0" else args.fsync_ops
            cmd = [args.bin, "bench", "--dir", d, "--workers", w, "--ops", str(ops),
                   "--sessions", str(args.sessions), "--mode", mode, "--payload", "1024",
                   "--fsync", fsync, "--baseline", "--rounds", str(args.rounds), "--json"]
            out = subprocess.run(cmd, capture_output=True, text=True)
            shutil.rmtree(base, ignore_errors=True)
            if out.returncode != 0:
                print(f"| {fsync} | {mode} | {w} | failed: exit {out.returncode} "
                      f"{out.stderr.strip()[-200:]} |")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            b = r["baseline"]
            ok = all(x["lost_updates"] == 0 and x["corrupt"] == 0 and x["errors"] == 0
                     and x["leftover_files"] == 0 for x in (r, b))
            shares = "–" if r["min_share"] is None else f'{r["min_share"]:.3f}–{r["max_share"]:.3f}'
            tail = r["wait_max_us"] / max(r["wait_p99_us"], 1)
            print(f'| {fsync} | {mode} | {w} | {r["ops_per_s"]:.0f} | {b["ops_per_s"]:.0f} | '
                  f'**{r["ratio"]:.2f}** | {r["wait_p99_us"]} / {r["wait_max_us"]} | '
                  f'{b["wait_p99_us"]} / {b["wait_max_us"]} | {tail:.1f} | {shares} | '
                  f'{"ok" if ok else "FAILED"} |', flush=True)
