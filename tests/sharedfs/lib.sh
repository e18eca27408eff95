# shellcheck shell=bash
# Helpers shared by juicefs.sh, glusterfs.sh and bindfs.sh. Sourced, not run.
# Conventions: progress goes to stderr; `up` prints only the two mount points on stdout.

SFS_NAME=${SFS_NAME:-sharedfs}
SFS_T0=$(date +%s.%N)

sfs_log() { echo "$SFS_NAME: $*" >&2; }
sfs_die() { echo "$SFS_NAME: error: $*" >&2; exit 1; }

# Seconds since the script started, with two decimals.
sfs_elapsed() { awk -v a="$SFS_T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'; }

sfs_need_root() { [[ $(id -u) -eq 0 ]] || sfs_die "must run as root (FUSE mounts, apt-get)"; }

# Absolute, normalised BASE. Refuses paths where `rm -rf` would be a disaster.
sfs_base() {
  local b=${1:-}
  [[ -n $b ]] || sfs_die "BASE missing"
  [[ $b == /* ]] || b=$PWD/$b
  b=$(realpath -m -- "$b")
  [[ $b =~ ^/[^[:space:]]+/[^[:space:]]+$ ]] || sfs_die "BASE must be at least two levels deep and contain no whitespace: $b"
  case $b in
    /usr/* | /etc/* | /bin/* | /sbin/* | /lib* | /boot/* | /proc/* | /sys/* | /dev/* | /var/lib | /var/lib/*)
      sfs_die "refusing system path as BASE: $b" ;;
  esac
  printf '%s\n' "$b"
}

# Marks BASE as ours, so that `down` may remove it. Refuses a non-empty directory that is not.
sfs_mark_base() {
  if [[ -e $1 && ! -f $1/.sharedfs && -n $(ls -A "$1" 2>/dev/null) ]]; then
    sfs_die "$1 exists, is not empty and was not made by these scripts: choose another BASE"
  fi
  mkdir -p "$1" && echo "$2" >"$1/.sharedfs"
}
sfs_base_is_ours() { [[ -f $1/.sharedfs ]]; }

# Installs Debian packages that are not installed yet. No service is started by the install:
# if the machine has no /usr/sbin/policy-rc.d, a temporary one (exit 101) is put in place.
sfs_apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  sfs_log "apt-get install ${missing[*]}"
  local policy_added=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
    policy_added=1
  fi
  local rc=0
  export DEBIAN_FRONTEND=noninteractive
  # Only refresh the lists if the packages are not installable from the ones present.
  if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >&2; then
    { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends "${missing[@]}" >&2; } || rc=$?
  fi
  ((policy_added)) && rm -f /usr/sbin/policy-rc.d
  ((rc == 0)) || sfs_die "apt-get install ${missing[*]} failed"
}

# A TCP port nobody listens on at 127.0.0.1 (not 6379 etc. if taken: the kernel picks).
sfs_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Mount points at or below DIR, deepest first, read from mountinfo (never stat()s them, so a
# dead FUSE mount, "Transport endpoint is not connected", is listed too).
sfs_mounts_under() {
  awk -v base="$1" '$5 == base || index($5, base "/") == 1 { print $5 }' /proc/self/mountinfo |
    sort -r | uniq
}

sfs_is_mounted() { [[ -n $(awk -v p="$1" '$5 == p { print $5 }' /proc/self/mountinfo) ]]; }

# Waits until PATH is a mount point of a live file system, at most TIMEOUT seconds.
# Optional PID: give up early if that process died.
sfs_wait_mount() {
  local path=$1 timeout=${2:-30} pid=${3:-} end
  end=$(($(date +%s) + timeout))
  while :; do
    if mountpoint -q "$path" 2>/dev/null && stat -f "$path" >/dev/null 2>&1; then
      return 0
    fi
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
      sfs_log "mount process $pid for $path exited"
      return 1
    fi
    (($(date +%s) < end)) || { sfs_log "timeout (${timeout}s) waiting for mount $path"; return 1; }
    sleep 0.1
  done
}

# Unmounts everything at or below DIR: umount, then a lazy one if it is busy or hung.
sfs_unmount_under() {
  local m
  for m in $(sfs_mounts_under "$1"); do
    sfs_log "umount $m"
    timeout 30 umount "$m" 2>/dev/null ||
      timeout 30 fusermount3 -u "$m" 2>/dev/null ||
      timeout 30 fusermount -u "$m" 2>/dev/null ||
      timeout 30 umount -l "$m" ||
      sfs_log "warning: could not unmount $m"
  done
}

# TERM the given pids, wait up to 10 s for them to end, then KILL those left.
sfs_stop_pids() {
  (($#)) || return 0
  local p i alive=0
  kill -TERM "$@" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    alive=0
    for p in "$@"; do
      # A zombie no longer counts (pid 1 here may be slow to reap orphans).
      case $(ps -o stat= -p "$p" 2>/dev/null) in '' | Z*) ;; *) alive=1 ;; esac
    done
    ((alive)) || return 0
    sleep 0.1
  done
  sfs_log "pids $* did not stop on TERM, killing"
  kill -KILL "$@" 2>/dev/null || true
}

# True if process P's command line contains NEEDLE.
sfs_cmdline_has() { tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline" | grep -qF -- "$2"; }

# Stops the process whose pid is in PIDFILE, and the members of its process group if it leads
# one (a `setsid` child), but only those whose command line contains NEEDLE, so a recycled pid
# is never killed. Removes the pid file.
sfs_stop_pidfile() {
  local file=$1 needle=$2 pid p targets=()
  [[ -f $file ]] || return 0
  pid=$(tr -dc '0-9' <"$file")
  if [[ -n $pid ]]; then
    for p in $pid $(ps -eo pid=,pgid= | awk -v g="$pid" '$2 == g && $1 != g { print $1 }'); do
      if sfs_cmdline_has "$p" "$needle"; then targets+=("$p"); fi
    done
  fi
  sfs_stop_pids "${targets[@]}"
  rm -f "$file"
}

# Stops the processes named (comm) one of COMMS (space separated) whose command line contains
# NEEDLE: the daemons an interrupted `up` started before their pid file was written.
sfs_stop_matching() {
  local comms=" $1 " needle=$2 d p comm targets=()
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    [[ $p == "$$" ]] && continue
    comm=$(cat "$d/comm" 2>/dev/null) || continue
    [[ $comms == *" $comm "* ]] || continue
    if sfs_cmdline_has "$p" "$needle"; then targets+=("$p"); fi
  done
  ((${#targets[@]})) && sfs_log "stopping leftover ${1// /\/} processes ${targets[*]}"
  sfs_stop_pids "${targets[@]}"
}

# Removes BASE if it is ours and nothing is mounted below it any more.
sfs_remove_base() {
  local base=$1
  [[ -e $base ]] || return 0
  if [[ -n $(sfs_mounts_under "$base") ]]; then
    sfs_die "still mounted below $base, not removing it: $(sfs_mounts_under "$base" | tr '\n' ' ')"
  fi
  if sfs_base_is_ours "$base"; then
    rm -rf -- "$base"
  else
    sfs_log "warning: $base has no .sharedfs marker, left in place"
  fi
}

# The command line of a script whose only option is --default-caches (juicefs.sh,
# glusterfs.sh): `up BASE [--default-caches]` or `down BASE`, calling the script's own `up BASE
# MODE` (MODE cache0 or default), `down BASE` and `usage`.
sfs_main_cache_modes() {
  [[ $# -ge 2 ]] || usage
  local cmd=$1 base mode=cache0
  sfs_need_root
  base=$(sfs_base "$2")
  shift 2
  while [[ $# -gt 0 ]]; do
    case $1 in
      --default-caches) mode=default ;;
      *) usage ;;
    esac
    shift
  done
  case $cmd in
    up) up "$base" "$mode" ;;
    down) down "$base"; sfs_log "down in $(sfs_elapsed) s" ;;
    *) usage ;;
  esac
}
