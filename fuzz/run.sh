#!/usr/bin/env bash
# Fuzzes sessiondir for a bounded time: fuzz/run.sh [seconds-per-target] [target...]
#
# Installs cargo-fuzz if it is missing, builds every target with libFuzzer's coverage
# instrumentation on stable Rust (`--sanitizer none`: no nightly, no RUSTC_BOOTSTRAP), then runs
# each target (default: all, 30 s each) on its seeds (seeds/<target>), its past crashes
# (regressions/<target>) and its growing corpus (corpus/<target>, not checked in). Exits
# non-zero on any crash, panic, timeout or out-of-memory; the input that did it is saved
# under artifacts/<target>/ and should become a file in regressions/<target>/. Prints the
# executions per target, a "fuzz executions:" line and a closing "fuzz: N passed, N failed".
#
# The fuzzing thread gets a 1 MiB stack (`ulimit -s`), half of what a Rust thread gets by
# default, so that unbounded recursion shows up as a crash at input sizes the fuzzer reaches.
set -euo pipefail
cd "$(dirname "$0")"

seconds=${1:-30}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(decode id)
fi

cargo_fuzz_version=0.13.2
if ! cargo fuzz --version 2>/dev/null | grep -qF "$cargo_fuzz_version"; then
  echo "== installing cargo-fuzz $cargo_fuzz_version"
  start=$(date +%s)
  nice -n 19 cargo install cargo-fuzz --version "$cargo_fuzz_version" --locked
  echo "cargo-fuzz installed in $(( $(date +%s) - start )) s"
fi

echo "== building fuzz targets: ${targets[*]}"
start=$(date +%s)
for target in "${targets[@]}"; do
  nice -n 19 cargo fuzz build --sanitizer none "$target"
done
echo "built in $(( $(date +%s) - start )) s"

triple=$(rustc -vV | sed -n 's/^host: //p')
# Where cargo put the binaries: fuzz/target, or wherever CARGO_TARGET_DIR says.
target_dir=${CARGO_TARGET_DIR:-target}
max_len() {
  case "$1" in
    decode) echo 16384 ;;
    id) echo 4096 ;;
    *) echo 4096 ;;
  esac
}

failed=()
total=0
summary=()
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target" "artifacts/$target" "regressions/$target"
  log="artifacts/$target.log"
  echo "== fuzzing $target for $seconds s (log: fuzz/$log)"
  status=0
  (
    ulimit -s 1024
    exec nice -n 19 "$target_dir/$triple/release/$target" \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len="$(max_len "$target")" \
      -print_final_stats=1 -artifact_prefix="artifacts/$target/" \
      "corpus/$target" "seeds/$target" "regressions/$target"
  ) >"$log" 2>&1 || status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  if [ -z "$runs" ]; then
    # No final statistics (the stack-overflow handler exits at once): the last progress line.
    runs=$(sed -n 's/^#\([0-9][0-9]*\).*/\1/p' "$log" | tail -n 1)
  fi
  runs=${runs:-0}
  total=$((total + runs))
  summary+=("$target $runs")
  grep -E '^(INFO: seed corpus|#[0-9]+[[:space:]]+DONE)' "$log" || true
  if [ "$status" -ne 0 ]; then
    failed+=("$target")
    echo "!! $target failed (exit $status); the end of its log:"
    tail -n 40 "$log"
    ls -l "artifacts/$target/" || true
  fi
  echo "$target: $runs executions"
done

echo "fuzz executions: $(IFS=,; echo "${summary[*]}" | sed 's/,/, /g'); total $total"
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz: FAILED: ${failed[*]}"
fi
# One target = one test, in the plain closing form CI reads.
echo "fuzz: $(( ${#targets[@]} - ${#failed[@]} )) passed, ${#failed[@]} failed"
[ ${#failed[@]} -eq 0 ]
