#!/usr/bin/env bash
# Two "hosts" on one machine: two FUSE client mounts (two `glusterfs` processes) of one GlusterFS
# volume with a single brick under BASE, served by a glusterd on this machine.
#
# Usage:
#   tests/sharedfs/glusterfs.sh up BASE [--default-caches]   # prints BASE/a and BASE/b on stdout
#   tests/sharedfs/glusterfs.sh down BASE                    # unmount, delete the volume, rm -rf BASE
#
# Default: client caches off. Mount: --attribute-timeout=0 --entry-timeout=0
# --negative-timeout=0; volume: the caching translators off (md-cache = stat-prefetch,
# quick-read, open-behind, io-cache, read-ahead, readdir-ahead, write-behind, nl-cache). With
# --default-caches: GlusterFS's defaults (1 s kernel attribute/entry timeouts, md-cache etc. on).
# Installs glusterfs-server and glusterfs-client (apt) if missing. Starts glusterd if none runs
# (and stops it on `down` only if it started it). `up` is idempotent; `down` works whatever state
# `up` left, and removes the volume's config from /var/lib/glusterd. Needs root. The brick and
# the clients use 127.0.0.2 (env GLUSTER_HOST), so no host name resolution is needed.
#
# Layout: BASE/a, BASE/b mount points; BASE/brick; BASE/run (pid files, volume name);
# BASE/log (glusterd and client logs; the brick logs to /var/log/glusterfs/bricks/).
set -euo pipefail
SFS_NAME=glusterfs.sh
# shellcheck source=lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

MOUNT_TIMEOUT=${MOUNT_TIMEOUT:-60}
GLUSTERD_WORKDIR=/var/lib/glusterd

usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

# Volume options that switch GlusterFS's client-side caching translators off.
CACHE0_VOLUME_OPTIONS=(
  performance.stat-prefetch off     # md-cache: caches stat/xattrs in the client
  performance.quick-read off        # caches small files' content
  performance.open-behind off       # fakes open(), opens later (stale/ESTALE after rename)
  performance.io-cache off
  performance.read-ahead off
  performance.readdir-ahead off
  performance.parallel-readdir off
  performance.write-behind off      # acknowledges writes before the brick has them
  performance.nl-cache off          # negative-lookup cache (off by default)
)
CACHE0_MOUNT_OPTIONS=(--attribute-timeout=0 --entry-timeout=0 --negative-timeout=0)

volname() { echo "sfs-$(printf '%s' "$1" | md5sum | cut -c1-10)"; }

gl() { timeout 60 gluster --mode=script "$@"; }

glusterd_alive() { timeout 10 gluster --mode=script pool list >/dev/null 2>&1; }

# Address of the brick and of the volfile server. The CLI refuses "localhost", 127.0.0.1 and
# 0.x as a brick host, but any other loopback address is local to glusterd and needs no host
# name resolution (with `hostname` instead, it must resolve to an address of this machine).
GLUSTER_HOST=${GLUSTER_HOST:-127.0.0.2}

is_up() {
  local base=$1 mode=$2
  [[ -f $base/ready && $(cat "$base/ready") == "$mode" ]] || return 1
  mountpoint -q "$base/a" && mountpoint -q "$base/b" && glusterd_alive
}

down() {
  local base=$1 vol f ours=0
  vol=$(volname "$base")
  sfs_unmount_under "$base"
  sfs_stop_pidfile "$base/run/a.pid" "$base/a"
  sfs_stop_pidfile "$base/run/b.pid" "$base/b"
  sfs_stop_matching glusterfs "$base/"
  [[ -f $base/run/glusterd.ours ]] && ours=1
  # (Every gluster CLI call writes geo-replication/gsyncd_template.conf: none without glusterd.)
  if command -v gluster >/dev/null && pgrep -x glusterd >/dev/null && glusterd_alive; then
    if gl volume info "$vol" >/dev/null 2>&1; then
      sfs_log "gluster volume stop/delete $vol"
      gl volume stop "$vol" force >/dev/null 2>&1 || true
      gl volume delete "$vol" >/dev/null 2>&1 || sfs_log "warning: volume delete $vol failed"
    fi
  fi
  # Brick processes of the volume, should glusterd have died without stopping them.
  for f in /run/gluster/vols/"$vol"/*.pid; do
    [[ -f $f ]] && sfs_stop_pidfile "$f" "$vol"
  done
  sfs_stop_matching glusterfsd "$base/brick"
  if ((ours)); then
    sfs_stop_pidfile "$base/run/glusterd.pid" glusterd
    sfs_stop_matching glusterd "$base/run/glusterd.pid"
  fi
  rm -rf "${GLUSTERD_WORKDIR:?}/vols/$vol" /run/gluster/vols/"$vol"
  if ((ours)) && [[ -f $base/run/glusterd-before.txt && -z $(ls -A "$GLUSTERD_WORKDIR/vols" 2>/dev/null) ]]; then
    # Our glusterd started from a package-fresh directory and no other volume is left: remove
    # what it added (glusterd.info, options, peers, ...), keep what was there before.
    find "$GLUSTERD_WORKDIR" /run/gluster -mindepth 1 2>/dev/null | LC_ALL=C sort |
      LC_ALL=C comm -13 "$base/run/glusterd-before.txt" - | sort -r |
      while IFS= read -r f; do rm -rf -- "$f"; done
  fi
  if [[ ! -e $GLUSTERD_WORKDIR/glusterd.info ]]; then
    # No glusterd state left: the CLI's template is all that remains of our calls.
    rm -f "$GLUSTERD_WORKDIR/geo-replication/gsyncd_template.conf"
    rmdir "$GLUSTERD_WORKDIR/geo-replication" 2>/dev/null || true
  fi
  # The brick's log, named after the brick path.
  rm -f "/var/log/glusterfs/bricks/$(printf '%s' "${base#/}/brick" | tr / -).log"
  sfs_remove_base "$base"
}

up() {
  local base=$1 mode=$2 vol host m pid end
  if is_up "$base" "$mode"; then
    sfs_log "already up ($mode)"
    printf '%s\n%s\n' "$base/a" "$base/b"
    return 0
  fi
  if [[ -f $base/.sharedfs ]]; then
    sfs_log "partial or other-mode state in $base: tearing down first"
    down "$base"
  fi
  sfs_mark_base "$base" glusterfs
  mkdir -p "$base"/{a,b,brick,run,log}
  sfs_apt_install glusterfs-server glusterfs-client
  vol=$(volname "$base")
  echo "$vol" >"$base/run/volname"
  host=$GLUSTER_HOST

  # No glusterd.info yet: what glusterd (and the gluster CLI, which writes
  # geo-replication/gsyncd_template.conf) add to the working directory is ours to remove on
  # `down`. Listed before the first CLI call, so that `down` keeps the package's files (hooks,
  # groups) and removes the rest.
  local before
  before=$base/run/glusterd-state-at-up.txt
  find "$GLUSTERD_WORKDIR" /run/gluster -mindepth 1 2>/dev/null | LC_ALL=C sort >"$before" || true
  if ! glusterd_alive; then
    touch "$base/run/glusterd.ours"
    if [[ ! -e $GLUSTERD_WORKDIR/glusterd.info ]]; then
      cp "$before" "$base/run/glusterd-before.txt"
    fi
    glusterd -p "$base/run/glusterd.pid" --log-file="$base/log/glusterd.log" </dev/null >/dev/null 2>&1
    end=$(($(date +%s) + 30))
    until glusterd_alive; do
      (($(date +%s) < end)) || { tail -20 "$base/log/glusterd.log" >&2 || true; sfs_die "glusterd did not come up"; }
      sleep 0.2
    done
  fi
  rm -f "$before"

  # A brick on the root file system needs `force`.
  gl volume create "$vol" "$host:$base/brick" force >&2 || sfs_die "volume create failed"
  if [[ $mode == cache0 ]]; then
    local i
    for ((i = 0; i < ${#CACHE0_VOLUME_OPTIONS[@]}; i += 2)); do
      gl volume set "$vol" "${CACHE0_VOLUME_OPTIONS[i]}" "${CACHE0_VOLUME_OPTIONS[i + 1]}" >/dev/null ||
        sfs_die "volume set ${CACHE0_VOLUME_OPTIONS[i]} failed"
    done
  fi
  gl volume start "$vol" >&2 || sfs_die "volume start failed"

  local mount_opts=()
  [[ $mode == cache0 ]] && mount_opts=("${CACHE0_MOUNT_OPTIONS[@]}")
  for m in a b; do
    # Runs as a daemon; its pid is written to BASE/run/m.pid.
    glusterfs --process-name fuse --volfile-server="$host" --volfile-id="$vol" \
      --pid-file="$base/run/$m.pid" --log-file="$base/log/$m.log" "${mount_opts[@]}" "$base/$m" \
      </dev/null >/dev/null 2>&1 || sfs_die "glusterfs client for $base/$m failed to start"
  done
  for m in a b; do
    pid=$(cat "$base/run/$m.pid" 2>/dev/null || true)
    sfs_wait_mount "$base/$m" "$MOUNT_TIMEOUT" "$pid" ||
      { tail -20 "$base/log/$m.log" >&2 || true; sfs_die "glusterfs mount of $base/$m failed"; }
  done
  echo "$mode" >"$base/ready"
  sfs_log "up ($mode) in $(sfs_elapsed) s: $(glusterfs --version | head -1), volume $vol on $host"
  printf '%s\n%s\n' "$base/a" "$base/b"
}

sfs_main_cache_modes "$@"
