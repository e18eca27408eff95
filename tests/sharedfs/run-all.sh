#!/usr/bin/env bash
# Sets up each shared-file-system pair in turn, runs probe.py on it, tears it down, and prints a
# table with timings and results.
#
# Usage:
#   tests/sharedfs/run-all.sh [--workdir DIR] [--with-default-caches] [--incs N]
#
# Configurations: juicefs (caches 0), glusterfs (caches 0), bindfs (the negative case); with
# --with-default-caches also juicefs and glusterfs with their default caches (informational:
# they are known to lose updates or to spin on ESTALE/ENOENT, about 1-2 minutes more).
# Exit 0 iff every caches-0 pair excluded every lock and lost no update, and bindfs was seen to
# NOT exclude (the probe must catch a broken file system). Needs root. Every pair is torn down,
# also on failure or interrupt.
set -euo pipefail
HERE=$(dirname "$(readlink -f "$0")")
WORK=/tmp/sessiondir-sharedfs
WITH_DEFAULTS=0
INCS=50
while [[ $# -gt 0 ]]; do
  case $1 in
    --workdir) WORK=$2; shift ;;
    --with-default-caches) WITH_DEFAULTS=1 ;;
    --incs) INCS=$2; shift ;;
    *) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
  shift
done

configs=("juicefs cache0" "glusterfs cache0" "bindfs default")
((WITH_DEFAULTS)) && configs+=("juicefs default" "glusterfs default")

current=""
# shellcheck disable=SC2329  # invoked by the trap
cleanup() {
  [[ -z $current ]] || bash "$HERE/${current%% *}.sh" down "${current#* }" >&2 || true
  rmdir "$WORK" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

rows=() fail=0
for c in "${configs[@]}"; do
  fs=${c%% *} mode=${c#* }
  base=$WORK/$fs-$mode
  flags=()
  [[ $mode == default && $fs != bindfs ]] && flags=(--default-caches)
  echo "== $fs ($mode)" >&2
  current="$fs $base"
  t0=$(now)
  mounts=$(bash "$HERE/$fs.sh" up "$base" "${flags[@]}")
  t1=$(now)
  # shellcheck disable=SC2086
  set -- $mounts
  out=$(timeout 900 python3 "$HERE/probe.py" all "$1" "$2" --incs "$INCS" --label "$fs-$mode") && rc=0 || rc=$?
  echo "$out" >&2
  t2=$(now)
  bash "$HERE/$fs.sh" down "$base" >&2
  current=""
  t3=$(now)
  summary=$(printf '%s\n' "$out" | python3 -c '
import json, sys
r = {}
for line in sys.stdin:
    if line.startswith("{"):
        r.update(json.loads(line))
l, c = r.get("locks", {}), r.get("counter", {})
ex = "/".join("y" if l.get(k + "_excluded") else "N" for k in ("flock", "ofd", "posix"))
print("%s | %s of %s | %s | %s | %s" % (ex, c.get("lost", "?"), c.get("expected", "?"),
      c.get("estale_read_retries", "?"), c.get("enoent_read_retries", "?"), c.get("seconds", "?")))
')
  if [[ $fs == bindfs ]]; then
    if ((rc == 1)); then verdict="ok (broken, as expected)"; else verdict="PROBE MISSED IT"; fail=1; fi
  elif [[ $mode == cache0 ]]; then
    if ((rc == 0)); then verdict=ok; else verdict=FAILED; fail=1; fi
  else
    if ((rc == 0)); then verdict=correct; else verdict="incorrect (known)"; fi
  fi
  rows+=("| $fs | $mode | $(secs "$t0" "$t1") | $summary | $(secs "$t2" "$t3") | $verdict |")
done

echo
echo "| fs | caches | up s | excluded flock/ofd/posix | lost | ESTALE retries | ENOENT retries | counter s | down s | verdict |"
echo "|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
exit "$fail"
