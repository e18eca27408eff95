#!/usr/bin/env bash
# The multi-host test: sets up each shared-file-system pair in turn (two mounts of one share, two
# "hosts"), runs on it the raw probe (probe.py), `sessiondir doctor` between the two mounts, and
# `sessiondir bench` with worker processes split across the two mounts; tears it down; prints a
# table.
#
# Usage:
#   tests/sharedfs/run-all.sh [--workdir DIR] [--with-gluster-default] [--incs N] [--sessiondir BIN]
#
# Configurations: juicefs and glusterfs with caches 0 (must be correct: probe exact, doctor
# passes, the store's workers on both mounts add up exactly, and the store refuses the mount
# without --allow-network-fs), then the broken ones, which must be *caught*: bindfs (locks not
# forwarded) and juicefs with its default 1 s caches (stale reads under the lock): the probe
# loses updates and `sessiondir doctor` fails (exit 4). --with-gluster-default adds glusterfs
# with its default caches (about a minute of ESTALE storm; also must be caught).
# BIN defaults to target/release/sessiondir (built if missing). Exit 0 iff every expectation
# held. Needs root. Every pair is torn down, also on failure or interrupt.
set -euo pipefail
HERE=$(dirname "$(readlink -f "$0")")
REPO=$(cd "$HERE/../.." && pwd)
WORK=/tmp/sessiondir-sharedfs
WITH_GLUSTER_DEFAULT=0
INCS=50
SESSIONDIR=$REPO/target/release/sessiondir
while [[ $# -gt 0 ]]; do
  case $1 in
    --workdir) WORK=$2; shift ;;
    --with-gluster-default) WITH_GLUSTER_DEFAULT=1 ;;
    --incs) INCS=$2; shift ;;
    --sessiondir) SESSIONDIR=$2; shift ;;
    *) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
  shift
done
if [[ ! -x $SESSIONDIR ]]; then
  echo "building $SESSIONDIR" >&2
  (cd "$REPO" && cargo build --release --quiet)
fi

configs=("juicefs cache0" "glusterfs cache0" "bindfs default" "juicefs default")
((WITH_GLUSTER_DEFAULT)) && configs+=("glusterfs default")

current=""
# shellcheck disable=SC2329  # invoked by the trap
cleanup() {
  [[ -z $current ]] || bash "$HERE/${current%% *}.sh" down "${current#* }" >&2 || true
  rmdir "$WORK" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Runs "$@"; in a configuration that is meant to fail (every mode but cache0), the command's
# stderr lines (`sessiondir: error: ...` from doctor and bench among them) are labelled as
# expected, so that a passing log never reads as a failing one.
labelled() {
  if [[ $mode == cache0 ]]; then
    "$@"
  else
    "$@" 2> >(sed -u "s/^/[expected failure: $fs $mode is a broken configuration] /" >&2)
  fi
}

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# The doctor check a broken configuration must fail (it may fail others too).
expected_failure() {
  case $1 in
    bindfs) echo lock-exclusion ;;
    *) echo rename-visibility ;;
  esac
}

rows=() fail=0
for c in "${configs[@]}"; do
  fs=${c%% *} mode=${c#* }
  base=$WORK/$fs-$mode
  flags=()
  [[ $mode == default && $fs != bindfs ]] && flags=(--default-caches)
  echo "== $fs ($mode)" >&2
  current="$fs $base"
  t0=$(now)
  if ! mounts=$(bash "$HERE/$fs.sh" up "$base" "${flags[@]}"); then
    rows+=("| $fs | $mode | $(secs "$t0" "$(now)") | | | | | | | | | | FAILED (could not bring the mounts up) |")
    fail=1
    bash "$HERE/$fs.sh" down "$base" >&2 || true
    current=""
    continue
  fi
  t1=$(now)
  # shellcheck disable=SC2086
  set -- $mounts
  out=$(timeout 900 python3 "$HERE/probe.py" all "$1" "$2" --incs "$INCS" --label "$fs-$mode") && rc=0 || rc=$?
  echo "$out" >&2
  t2=$(now)
  # sessiondir between the two mounts: the doctor's verdict, then a store with 2 worker
  # processes on each mount, hot (one session), verified exactly.
  dout=$(labelled timeout 300 "$SESSIONDIR" doctor --dir "$1" --other-mount "$2" --json) && drc=0 || drc=$?
  echo "$dout" >&2
  bout="" brc=none refused=no
  if mkdir -p "$1/bench"; then
    bout=$(labelled timeout 600 "$SESSIONDIR" bench --dir "$1/bench" --other-mount "$2/bench" \
      --allow-network-fs --workers 4 --ops 50 --sessions 4 --mode hot --json) && brc=0 || brc=$?
    echo "$bout" >&2
    # Without the opt-in the store refuses the mount, naming the file system.
    if ! "$SESSIONDIR" stats --dir "$1/bench" 2>"$WORK/stats.err" >/dev/null &&
      grep -q "fuse" "$WORK/stats.err"; then
      refused=yes
    fi
    rm -f "$WORK/stats.err"
  fi
  t3=$(now)
  bash "$HERE/$fs.sh" down "$base" >&2 || fail=1
  current=""
  t4=$(now)
  summary=$(printf '%s\n' "$out" | python3 -c '
import json, sys
r = {}
for line in sys.stdin:
    if line.startswith("{"):
        try:
            r.update(json.loads(line))
        except ValueError:
            pass
l, c = r.get("locks", {}), r.get("counter", {})
ex = "/".join("y" if l.get(k + "_excluded") else "N" for k in ("flock", "ofd", "posix"))
print("%s | %s of %s | %s | %s" % (ex, c.get("lost", "?"), c.get("expected", "?"),
      c.get("estale_read_retries", "?"), c.get("enoent_read_retries", "?")))
') || summary="? | ? | ? | ?"
  # The doctor's verdict and failed checks, and the bench's counters.
  doctor=$(printf '%s\n' "$dout" | python3 -c '
import json, sys
try:
    d = json.loads(sys.stdin.read())
except ValueError:
    d = {}
failed = ",".join(c["name"] for c in d.get("checks", []) if c["verdict"] == "fail")
print(d.get("verdict", "?") + (" (" + failed + ")" if failed else ""))
') || doctor="?"
  counters=$(printf '%s\n' "$bout" | python3 -c '
import json, sys
try:
    b = json.loads(sys.stdin.read().strip().splitlines()[-1])
except (ValueError, IndexError):
    b = {}
print("%s of %s, %s lost, %s failed" % (b.get("counter_sum", "?"), b.get("expected_sum", "?"),
      b.get("lost_updates", "?"), b.get("errors", "?")))
') || counters="?"
  if [[ $mode == cache0 ]]; then
    # Correct: probe exact, doctor passes outright (a warning is not good enough here), the
    # store's workers on both mounts add up, and the mount is refused without the opt-in.
    if ((rc == 0 && drc == 0)) && [[ $doctor == pass && $brc == 0 && $refused == yes ]]; then
      verdict=ok
    else
      verdict="FAILED (probe $rc, doctor $drc: $doctor, bench $brc, refused without opt-in: $refused)"
      fail=1
    fi
  else
    # Broken: the probe must lose updates and doctor must fail for the right reason.
    want=$(expected_failure "$fs")
    if ((rc == 1 && drc == 4)) && [[ $doctor == *"$want"* ]]; then
      verdict="ok (broken, and caught by $want)"
    else
      verdict="NOT CAUGHT (probe $rc, doctor $drc: $doctor; expected $want to fail)"
      fail=1
    fi
  fi
  rows+=("| $fs | $mode | $(secs "$t0" "$t1") | $summary | $(secs "$t1" "$t2") | $doctor | $counters | $(secs "$t2" "$t3") | $(secs "$t3" "$t4") | $verdict |")
done

echo
echo "| fs | caches | up s | probe: excluded flock/ofd/posix | probe: lost | ESTALE retries | ENOENT retries | probe s | doctor | sessiondir bench: counters | sessiondir s | down s | verdict |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
exit "$fail"
