#!/usr/bin/env python3
"""The contention matrix: `sessiondir bench --baseline` in every cell of
W in {1, 4, 16} x {hot, spread} x fsync {0, 1}, printed as a Markdown table of medians: the
store against the card's floor (temporary file + rename) and the in-place floor (pwrite into
the locked file, PHP's design), all measured side by side in one invocation.

Every cell prepares `--sessions` sessions (default 1,000) in a fresh directory, also the hot
cells, which then all work on the first: one busy session among many (issue 20: creating a file
in a store of many sessions was what made hot check-ins slow, so this cell must stay here).

    cargo build --release
    python3 benches/contention_matrix.py [--ops 300] [--rounds 3] [--repeat 3] [--dir-base /var/tmp]

`--repeat N` runs each cell N times, each in a fresh directory, and reports the median of the N
ratios with their range. Only ratios are meaningful on a shared machine: the systems run in the
same invocation, in alternating rounds, on the same disk.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile

parser = argparse.ArgumentParser()
parser.add_argument("--bin", default="target/release/sessiondir")
parser.add_argument("--ops", type=int, default=300, help="ops per worker, fsync off")
parser.add_argument("--fsync-ops", type=int, default=100, help="ops per worker, fsync on")
parser.add_argument("--rounds", type=int, default=3)
parser.add_argument("--repeat", type=int, default=1, help="fresh-directory runs per cell")
parser.add_argument("--sessions", type=int, default=1000)
parser.add_argument("--workers", default="1,4,16")
parser.add_argument("--modes", default="hot,spread")
parser.add_argument("--fsync", default="0,1")
parser.add_argument("--threads", action="store_true", help="threads instead of processes")
parser.add_argument("--dir-base", default="/var/tmp")
args = parser.parse_args()


def run_cell(fsync, mode, w):
    """One bench invocation in a fresh directory: its JSON line, or an error text."""
    base = tempfile.mkdtemp(dir=args.dir_base, prefix="sdmatrix.")
    try:
        ops = args.ops if fsync == "0" else args.fsync_ops
        cmd = [args.bin, "bench", "--dir", os.path.join(base, "store"), "--workers", w,
               "--ops", str(ops), "--sessions", str(args.sessions), "--mode", mode,
               "--payload", "1024", "--fsync", fsync, "--baseline",
               "--rounds", str(args.rounds), "--json"]
        if args.threads:
            cmd.append("--threads")
        out = subprocess.run(cmd, capture_output=True, text=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    if out.returncode != 0:
        return None, f"exit {out.returncode} {out.stderr.strip()[-200:]}"
    return json.loads(out.stdout.strip().splitlines()[-1]), None


def spread(values, fmt):
    """The median, and the range when there are several values."""
    med = fmt.format(statistics.median(values))
    if len(values) == 1:
        return med
    return f"{med} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def verified(r):
    return all(x["lost_updates"] == 0 and x["corrupt"] == 0 and x["errors"] == 0
               and x["leftover_files"] == 0 for x in (r, r["baseline"], r["in_place"]))


print("| fsync | mode | W | store ops/s | floor ops/s | in-place ops/s | store / floor "
      "| store / in-place | store wait p99 / max (us) | floor wait p99 / max (us) "
      "| worker shares | verified |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for fsync in args.fsync.split(","):
    for mode in args.modes.split(","):
        for w in args.workers.split(","):
            runs, errors = [], []
            for _ in range(args.repeat):
                r, err = run_cell(fsync, mode, w)
                (runs.append(r) if r else errors.append(err))
            if not runs:
                print(f"| {fsync} | {mode} | {w} | failed: {errors[0]} |", flush=True)
                continue
            last = runs[-1]
            shares = ("–" if last["min_share"] is None
                      else f'{last["min_share"]:.3f}–{last["max_share"]:.3f}')
            ok = all(verified(r) for r in runs) and not errors
            print(f'| {fsync} | {mode} | {w} '
                  f'| {spread([r["ops_per_s"] for r in runs], "{:.0f}")} '
                  f'| {spread([r["baseline"]["ops_per_s"] for r in runs], "{:.0f}")} '
                  f'| {spread([r["in_place"]["ops_per_s"] for r in runs], "{:.0f}")} '
                  f'| **{spread([r["ratio"] for r in runs], "{:.2f}")}** '
                  f'| {spread([r["in_place_ratio"] for r in runs], "{:.2f}")} '
                  f'| {last["wait_p99_us"]} / {last["wait_max_us"]} '
                  f'| {last["baseline"]["wait_p99_us"]} / {last["baseline"]["wait_max_us"]} '
                  f'| {shares} | {"ok" if ok else "FAILED: " + "; ".join(errors)} |',
                  flush=True)
