#!/usr/bin/env bash
# The negative case: two bindfs FUSE mounts (BASE/a, BASE/b) of one directory (BASE/src). By
# default bindfs does NOT forward flock/fcntl locks to the underlying file system, so each mount
# grants its own locks and the two "hosts" never exclude each other.
#
# Usage:
#   tests/sharedfs/bindfs.sh up BASE [--forward-locks] [--no-kernel-cache]   # prints BASE/a, BASE/b
#   tests/sharedfs/bindfs.sh down BASE               # unmount, stop, rm -rf BASE
#
# Default: plain `bindfs SRC MNT` (no lock forwarding, libfuse's 1 s attribute/entry caches).
# --forward-locks: bindfs --enable-lock-forwarding --multithreaded (bindfs refuses the first
# without the second): flock/OFD locks then reach BASE/src's inodes and exclude across the mounts.
# --no-kernel-cache: -o attr_timeout=0,entry_timeout=0,negative_timeout=0. Both together are a
# positive control. Installs bindfs (apt) if missing. `up` is idempotent; `down` works whatever
# state `up` left. Needs root.
set -euo pipefail
SFS_NAME=bindfs.sh
# shellcheck source=lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

MOUNT_TIMEOUT=${MOUNT_TIMEOUT:-30}

usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

is_up() {
  local base=$1 mode=$2
  [[ -f $base/ready && $(cat "$base/ready") == "$mode" ]] || return 1
  mountpoint -q "$base/a" && mountpoint -q "$base/b"
}

down() {
  local base=$1
  sfs_unmount_under "$base"
  sfs_stop_pidfile "$base/run/a.pid" "$base/a"
  sfs_stop_pidfile "$base/run/b.pid" "$base/b"
  sfs_stop_matching bindfs "$base/"
  sfs_remove_base "$base"
}

up() {
  local base=$1 mode=$2 m pid
  if is_up "$base" "$mode"; then
    sfs_log "already up ($mode)"
    printf '%s\n%s\n' "$base/a" "$base/b"
    return 0
  fi
  if [[ -f $base/.sharedfs ]]; then
    sfs_log "partial or other-mode state in $base: tearing down first"
    down "$base"
  fi
  sfs_mark_base "$base" bindfs
  mkdir -p "$base"/{a,b,src,run,log}
  sfs_apt_install bindfs
  local opts=()
  [[ $mode == *forward-locks* ]] && opts+=(--enable-lock-forwarding --multithreaded)
  [[ $mode == *no-kernel-cache* ]] && opts+=(-o "attr_timeout=0,entry_timeout=0,negative_timeout=0")
  for m in a b; do
    # -f: foreground, so that the pid is the daemon's; own session so it outlives this script.
    setsid bindfs -f "${opts[@]}" "$base/src" "$base/$m" </dev/null >"$base/log/$m.log" 2>&1 &
    echo $! >"$base/run/$m.pid"
  done
  for m in a b; do
    pid=$(cat "$base/run/$m.pid")
    sfs_wait_mount "$base/$m" "$MOUNT_TIMEOUT" "$pid" ||
      { tail -20 "$base/log/$m.log" >&2 || true; sfs_die "bindfs mount of $base/$m failed"; }
  done
  echo "$mode" >"$base/ready"
  sfs_log "up ($mode) in $(sfs_elapsed) s: $(bindfs --version 2>&1 | head -1)"
  printf '%s\n%s\n' "$base/a" "$base/b"
}

main() {
  [[ $# -ge 2 ]] || usage
  local cmd=$1 base mode=default fwd="" nocache=""
  sfs_need_root
  base=$(sfs_base "$2")
  shift 2
  while [[ $# -gt 0 ]]; do
    case $1 in
      --forward-locks) fwd=forward-locks ;;
      --no-kernel-cache) nocache=no-kernel-cache ;;
      *) usage ;;
    esac
    shift
  done
  if [[ -n $fwd$nocache ]]; then mode=$fwd${fwd:+${nocache:+,}}$nocache; fi
  case $cmd in
    up) up "$base" "$mode" ;;
    down) down "$base"; sfs_log "down in $(sfs_elapsed) s" ;;
    *) usage ;;
  esac
}

main "$@"
