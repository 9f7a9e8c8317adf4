#!/usr/bin/env bash
# The project's own Docker engine for this machine: Debian's docker.io (dockerd 20.10) with every path
# it owns under a cache outside the repository, so it never meets a system Docker (/var/run/docker.sock,
# /var/lib/docker, /etc/docker/daemon.json) and is started and stopped by PID only.
#
#   engine/dockerd.sh start           start it (idempotent), wait until `docker info` answers
#   engine/dockerd.sh stop            SIGTERM the PID in its pidfile, wait (bounded), report leftovers
#   engine/dockerd.sh status          running or not (exit 0 / 3), with its paths
#   engine/dockerd.sh env             `export DOCKER_HOST=unix://...` for eval
#   engine/dockerd.sh host            the DOCKER_HOST value alone
#   engine/dockerd.sh host-if-needed  that value only when `docker info` fails with your own settings
#
# Environment: LAB_ENGINE_DIR (default ${XDG_CACHE_HOME:-$HOME/.cache}/cilium-datapath-lab/engine),
# LAB_ENGINE_START_TIMEOUT (60 s), LAB_ENGINE_STOP_TIMEOUT (40 s).
# Paths outside LAB_ENGINE_DIR that the Debian binaries hard-code: /run/docker/plugins (an empty
# plugin-discovery folder dockerd creates) and /run/containerd/s (containerd's per-container shim
# sockets, named by a hash that includes our containerd socket). Neither is ever removed here.
set -euo pipefail

HERE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
REPO=$(dirname -- "$HERE")
ENGINE_DIR=${LAB_ENGINE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cilium-datapath-lab/engine}
START_TIMEOUT=${LAB_ENGINE_START_TIMEOUT:-60}
STOP_TIMEOUT=${LAB_ENGINE_STOP_TIMEOUT:-40}
# The engine runs Debian's binaries (dockerd, containerd, runc, docker-proxy), whatever PATH says.
ENGINE_PATH=/usr/sbin:/usr/bin:/sbin:/bin
APT_FIX="apt-get install -y docker.io containerd runc"

die() {
  echo "engine: $*" >&2
  exit 1
}

indent() {
  local line
  while IFS= read -r line; do printf '%s%s\n' "$1" "$line"; done
}

# Every path below is spliced into dockerd's flags and a JSON file: allow only plain path characters.
[[ $ENGINE_DIR == /* && $ENGINE_DIR =~ ^[A-Za-z0-9._/+-]+$ ]] ||
  die "LAB_ENGINE_DIR must be an absolute path of letters, digits and ._/+- (got '$ENGINE_DIR')"
ENGINE_DIR=${ENGINE_DIR%/}
case "$ENGINE_DIR/" in "$REPO"/*) die "LAB_ENGINE_DIR must lie outside the repository ($REPO)" ;; esac
[[ $START_TIMEOUT =~ ^[0-9]+$ && $STOP_TIMEOUT =~ ^[0-9]+$ ]] || die "the LAB_ENGINE_*_TIMEOUT values are whole seconds"

SOCKET=$ENGINE_DIR/docker.sock
DOCKER_HOST_VALUE=unix://$SOCKET
PIDFILE=$ENGINE_DIR/dockerd.pid
LOG=$ENGINE_DIR/dockerd.log
DATA_ROOT=$ENGINE_DIR/data
EXEC_ROOT=$ENGINE_DIR/run
CONFIG=$ENGINE_DIR/daemon.json
WRAPPER=$ENGINE_DIR/bin/runc-capfilter
# Unix socket paths are limited to 108 bytes; the longest one dockerd's containerd makes is this.
LONGEST_SOCKET=$EXEC_ROOT/containerd/containerd.sock.ttrpc
((${#LONGEST_SOCKET} < 108)) || die "LAB_ENGINE_DIR is too long for unix socket paths ($LONGEST_SOCKET)"

# The CLI that talks to this engine: Debian's, from the same docker.io release as dockerd. Another
# `docker` first on PATH (this machine has Docker CLI 28 in /usr/local/bin) also works: it negotiates
# the engine's API 1.41 down itself.
if [[ -x /usr/bin/docker ]]; then DOCKER_CLI=/usr/bin/docker; else DOCKER_CLI=$(command -v docker || true); fi

# The docker CLI against this engine only: none of the caller's Docker settings apply.
engine_docker() {
  env -u DOCKER_CONTEXT -u DOCKER_TLS_VERIFY -u DOCKER_CERT_PATH DOCKER_HOST="$DOCKER_HOST_VALUE" \
    timeout 10 "$DOCKER_CLI" "$@"
}

engine_answers() {
  [[ -n $DOCKER_CLI ]] && engine_docker info >/dev/null 2>&1
}

# The host bridge devices of this engine's bridge networks. dockerd leaves them (with the gateway
# address and its route) on the host when it exits and makes them again when it starts.
engine_bridges() {
  local ids id name
  ids=$(engine_docker network ls --quiet --no-trunc --filter driver=bridge 2>/dev/null) || return 0
  [[ -n $ids ]] || return 0
  # shellcheck disable=SC2086 # one network ID per word, IDs are hex
  engine_docker network inspect --format '{{.Id}} {{with index .Options "com.docker.network.bridge.name"}}{{.}}{{end}}' $ids |
    while read -r id name; do echo "${name:-br-${id:0:12}}"; done
}

# A process that exists and is not a zombie (this machine's PID 1 may reap orphans late).
alive() {
  local stat
  # `read`, not $(<file): a file that vanished must be a false, not the end of the script.
  read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != [ZX] ]]
}

# True if process $1 has the argument $2 in its command line.
has_arg() {
  local arg args=()
  mapfile -d '' -t args 2>/dev/null <"/proc/$1/cmdline" || return 1
  for arg in "${args[@]}"; do [[ $arg == "$2" ]] && return 0; done
  return 1
}

# The PID a pidfile names, if it is alive and has argument $2; else nothing.
live_pid() {
  local pid=""
  read -r pid 2>/dev/null <"$1" || [[ -n $pid ]] || return 0 # dockerd writes no newline
  [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" && has_arg "$pid" "$2" && echo "$pid"
  return 0
}

# The PID in our pidfile if it is the dockerd started with this pidfile; else nothing.
engine_pid() {
  live_pid "$PIDFILE" "--pidfile=$PIDFILE"
}

# Engine processes (dockerd, containerd, shims, docker-proxy, runc) whose command line names our
# folder. Read with builtins only: one fork per process would make this slow.
leftovers() {
  local dir comm args
  for dir in /proc/[0-9]*; do
    read -r comm 2>/dev/null <"$dir/comm" || continue
    case "$comm" in dockerd | containerd | containerd-shim* | docker-proxy | runc*) ;; *) continue ;; esac
    mapfile -d '' -t args 2>/dev/null <"$dir/cmdline" || continue
    [[ "${args[*]}" == *"$ENGINE_DIR/"* ]] && echo "${dir#/proc/} ${args[*]:0:6}"
  done
  return 0
}

require_tools() {
  [[ $(id -u) == 0 ]] || die "dockerd needs root (run as root, or use a Docker engine you already have)"
  local tool missing=()
  for tool in dockerd containerd containerd-shim-runc-v2 runc docker-proxy; do
    PATH=$ENGINE_PATH command -v "$tool" >/dev/null || missing+=("$tool")
  done
  [[ -n $DOCKER_CLI ]] || missing+=(docker)
  [[ -x /usr/bin/python3 ]] || missing+=(python3)
  ((${#missing[@]} == 0)) || die "missing ${missing[*]}; fix: $APT_FIX python3"
}

# True while the data root is bind-mounted onto itself: a mount at that path whose root within its
# filesystem is the same path, on the same device as the mount it sits on (a disk of its own has
# root "/" and is left alone).
data_root_self_bound() {
  awk -v path="$DATA_ROOT" '
    { dev[$1] = $3 }
    $5 == path { id = $1; parent = $2; root = $4 }
    END {
      tail = substr(path, length(path) - length(root) + 1)
      exit !(id != "" && root != "/" && tail == root && dev[parent] == dev[id])
    }' /proc/self/mountinfo
}

# dockerd bind-mounts its data root onto itself (to make it a private mount) and undoes it when it
# exits cleanly; one that was killed, or failed to start, leaves it. Called only with no dockerd.
undo_root_mount() {
  local undone=0
  while ((undone < 5)) && data_root_self_bound; do
    umount -- "$DATA_ROOT" || {
      echo "engine: cannot unmount $DATA_ROOT (still in use); see: grep $ENGINE_DIR /proc/mounts" >&2
      return 0
    }
    undone=$((undone + 1))
  done
  rm -f -- "$EXEC_ROOT/unmount-on-shutdown"
  ((undone == 0)) || echo "engine: unmounted the bind mount of $DATA_ROOT that a dockerd left"
}

# What a failed start logged, and the fix its words point to.
explain_failure() {
  local since=$1 tail_text
  tail_text=$(tail -c +"$((since + 1))" -- "$LOG" 2>/dev/null | tail -n 25 || true)
  echo "engine: the last lines of $LOG:" >&2
  indent "  | " <<<"$tail_text" >&2
  case "$tail_text" in
    *"can't create unix socket"*)
      echo "likely fix: something other than a socket is at $SOCKET; move it away" >&2 ;;
    *"pid file found"* | *"address already in use"*)
      echo "likely fix: another dockerd uses $ENGINE_DIR; see 'engine/dockerd.sh status' and stop it" >&2 ;;
    *graphdriver* | *overlay*)
      echo "likely fix: overlay2 does not work on the filesystem of $ENGINE_DIR; set LAB_ENGINE_DIR to a folder on ext4 or xfs" >&2 ;;
    *containerd*)
      echo "likely fix: $APT_FIX  (dockerd starts its own containerd from PATH $ENGINE_PATH)" >&2 ;;
    *"permission denied"* | *"operation not permitted"*)
      echo "likely fix: run as root on a host that allows mounts and network namespaces" >&2 ;;
    *)
      echo "likely fix: read $LOG; 'engine/dockerd.sh stop' then 'engine/dockerd.sh start' retries" >&2 ;;
  esac
}

start() {
  require_tools
  mkdir -p -- "$ENGINE_DIR/bin"
  exec 9>"$ENGINE_DIR/lock"
  flock -w "$((START_TIMEOUT + STOP_TIMEOUT))" 9 || die "another engine/dockerd.sh holds $ENGINE_DIR/lock"
  local pid began since elapsed child containerd_pidfile launched=0 next_note=5
  pid=$(engine_pid)
  if [[ -n $pid ]] && engine_answers; then
    echo "engine: dockerd already running (pid $pid)"
    echo "export DOCKER_HOST=$DOCKER_HOST_VALUE"
    return 0
  fi
  began=$(date +%s%N)
  if [[ -z $pid ]]; then
    if [[ -e $PIDFILE ]]; then
      # It names no dockerd of this engine (checked above), and dockerd refuses a pidfile whose PID lives.
      echo "engine: removing the stale pidfile $PIDFILE"
      rm -f -- "$PIDFILE"
    fi
    # dockerd adopts the containerd its pidfile names while that PID exists, even as a zombie (this
    # machine's PID 1 reaps orphans late) or reused, and then gives up on its dead socket.
    containerd_pidfile=$EXEC_ROOT/containerd/containerd.pid
    if [[ -e $containerd_pidfile && -z $(live_pid "$containerd_pidfile" "$EXEC_ROOT/containerd/containerd.toml") ]]; then
      echo "engine: removing the stale containerd pidfile $containerd_pidfile"
      rm -f -- "$containerd_pidfile"
    fi
    # The runtime runs a copy, so the engine keeps working while this checkout changes or goes away.
    install -m 0755 -- "$HERE/runc_capfilter.py" "$WRAPPER.new" && mv -f -- "$WRAPPER.new" "$WRAPPER"
    # Only settings with no flag live here; naming the file stops dockerd reading /etc/docker/daemon.json.
    # deprecated-key-path: dockerd 20.10 otherwise writes its identity key to /etc/docker/key.json.
    printf '{\n  "deprecated-key-path": "%s"\n}\n' "$ENGINE_DIR/key.json" >"$CONFIG"
    # One previous log is kept, so the file never grows without bound.
    if (($(stat -c %s -- "$LOG" 2>/dev/null || echo 0) > 5000000)); then mv -f -- "$LOG" "$LOG.1"; fi
    since=$(stat -c %s -- "$LOG" 2>/dev/null || echo 0)
    echo "=== engine/dockerd.sh start $(date -u +%FT%TZ) ===" >>"$LOG"
    echo "engine: starting dockerd under $ENGINE_DIR (log: $LOG)"
    # --iptables=false: no host firewall rules. The lab needs none: kind nodes talk on one user bridge
    #   network (static IPs, L2), and published ports (kind's API server) go through the userland proxy.
    # --ip-forward=false: leave the host's net.ipv4.ip_forward as it is. Nothing here routes through the
    #   host (no NAT without iptables anyway). dockerd then warns "IPv4 forwarding is disabled" on each
    #   `docker run`; that is about reaching the outside world, which this machine cannot anyway.
    # --bridge=none: no docker0 (and no 172.17.0.0/16 route) on the host; every lab container names its
    #   network. A container without --network gets loopback only; builds that need the host's package
    #   mirror use `docker build --network host`.
    # --storage-driver=overlay2: fail loudly rather than fall back to the slow vfs driver.
    # No --containerd: dockerd starts its own containerd, with socket and state under the exec root.
    # --default-runtime capfilter: runc behind engine/runc_capfilter.py (see there why).
    (
      cd /
      exec 9>&- # the lock stays with this script, not with dockerd
      exec setsid env -i PATH="$ENGINE_PATH" LANG=C.UTF-8 dockerd \
        --config-file="$CONFIG" \
        --data-root="$DATA_ROOT" \
        --exec-root="$EXEC_ROOT" \
        --pidfile="$PIDFILE" \
        --host="$DOCKER_HOST_VALUE" \
        --storage-driver=overlay2 \
        --iptables=false \
        --ip-forward=false \
        --bridge=none \
        --userland-proxy=true \
        --add-runtime=capfilter="$WRAPPER" \
        --default-runtime=capfilter \
        --shutdown-timeout=10 \
        </dev/null >>"$LOG" 2>&1
    ) &
    child=$!
    launched=1
  else
    echo "engine: dockerd (pid $pid) is running but does not answer yet; waiting"
    since=$(stat -c %s -- "$LOG" 2>/dev/null || echo 0)
    child=$pid
  fi
  while ! engine_answers; do
    elapsed=$((($(date +%s%N) - began) / 1000000000))
    if ! alive "$child"; then
      echo "engine: dockerd exited during start (after ${elapsed} s)" >&2
      explain_failure "$since"
      [[ -n $(leftovers) ]] || undo_root_mount >&2
      exit 1
    fi
    if ((elapsed >= START_TIMEOUT)); then
      echo "engine: dockerd did not answer within ${START_TIMEOUT} s" >&2
      explain_failure "$since"
      if ((launched)); then
        echo "engine: stopping the dockerd this start began" >&2
        stop_engine || true
      fi
      exit 1
    fi
    if ((elapsed >= next_note)); then
      echo "engine: waiting for dockerd to answer (${elapsed} s)"
      next_note=$((next_note + 5))
    fi
    sleep 0.2
  done
  pid=$(engine_pid)
  printf 'engine: dockerd is up (pid %s) after %s s\n' "$pid" \
    "$(awk -v ns="$(($(date +%s%N) - began))" 'BEGIN { printf "%.1f", ns / 1e9 }')"
  echo "export DOCKER_HOST=$DOCKER_HOST_VALUE"
}

# SIGTERM our dockerd by its pidfile's PID, wait up to STOP_TIMEOUT, then say what is still there.
stop_engine() {
  local pid began waited=0 left bridges bridge removed=()
  pid=$(engine_pid)
  if [[ -z $pid ]]; then
    [[ -n $(leftovers) ]] || undo_root_mount
    if [[ -e $PIDFILE ]]; then
      echo "engine: not running (stale pidfile $PIDFILE names no dockerd of this engine)"
    else
      echo "engine: not running"
    fi
    return 0
  fi
  began=$(date +%s%N)
  bridges=$(engine_bridges || true)
  echo "engine: stopping dockerd (pid $pid); it stops its containers (10 s grace) and its containerd"
  kill -TERM "$pid"
  while alive "$pid" && ((waited < STOP_TIMEOUT * 5)); do
    sleep 0.2
    waited=$((waited + 1))
    ((waited % 25 == 0)) && echo "engine: waiting for dockerd to exit ($((waited / 5)) s)"
  done
  if alive "$pid"; then
    echo "engine: dockerd (pid $pid) still runs after ${STOP_TIMEOUT} s; see $LOG, or end it: kill -KILL $pid" >&2
    return 1
  fi
  # dockerd waits for its containerd; give shims a moment to go after their containers.
  waited=0
  while left=$(leftovers) && [[ -n $left ]] && ((waited < 25)); do
    sleep 0.2
    waited=$((waited + 1))
  done
  if [[ -n $left ]]; then
    echo "engine: dockerd stopped, but these processes of $ENGINE_DIR remain (not touched):" >&2
    indent "  " <<<"$left" >&2
    return 1
  fi
  undo_root_mount
  for bridge in $bridges; do
    if ip link show dev "$bridge" type bridge >/dev/null 2>&1 && ip link delete dev "$bridge" type bridge; then
      removed+=("$bridge")
    fi
  done
  ((${#removed[@]} == 0)) || echo "engine: removed its host bridges (made again on start): ${removed[*]}"
  printf 'engine: stopped after %s s\n' "$(awk -v ns="$(($(date +%s%N) - began))" 'BEGIN { printf "%.1f", ns / 1e9 }')"
}

stop() {
  [[ -d $ENGINE_DIR ]] || {
    echo "engine: not running (no $ENGINE_DIR)"
    return 0
  }
  exec 9>"$ENGINE_DIR/lock"
  flock -w "$((START_TIMEOUT + STOP_TIMEOUT))" 9 || die "another engine/dockerd.sh holds $ENGINE_DIR/lock"
  stop_engine
}

status() {
  local pid
  pid=$(engine_pid)
  if [[ -z $pid ]]; then
    echo "engine: not running (start it: make dockerd)"
    return 3
  fi
  if engine_answers; then echo "engine: running (pid $pid), answering"; else echo "engine: running (pid $pid), not answering"; fi
  echo "  DOCKER_HOST=$DOCKER_HOST_VALUE"
  echo "  data root $DATA_ROOT, exec root $EXEC_ROOT, log $LOG"
}

# Your own settings win when they reach an engine; otherwise the Makefile points DOCKER_HOST here.
host_if_needed() {
  if command -v docker >/dev/null && timeout 10 docker info >/dev/null 2>&1; then
    return 0
  fi
  [[ -n ${DOCKER_HOST:-} && $DOCKER_HOST != "$DOCKER_HOST_VALUE" ]] &&
    echo "engine: DOCKER_HOST=$DOCKER_HOST does not answer; using the local engine ($DOCKER_HOST_VALUE)" >&2
  echo "$DOCKER_HOST_VALUE"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  env) echo "export DOCKER_HOST=$DOCKER_HOST_VALUE" ;;
  host) echo "$DOCKER_HOST_VALUE" ;;
  host-if-needed) host_if_needed ;;
  *)
    echo "usage: engine/dockerd.sh start|stop|status|env|host|host-if-needed" >&2
    exit 2
    ;;
esac
