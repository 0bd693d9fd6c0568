#!/usr/bin/env bash
# Shared helpers for the infra/local/*.sh scripts. Source it, do not run it:
#   HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"; . "$HERE/lib.sh"
# It sets REPO (absolute repo root, from this file's own location, so the
# scripts work from any cwd) and creates var/log and var/run.
# LIANCHEN_VAR: put all state somewhere else than var/ (bench/b70_cost.py runs a private
# broker and store there, next to the developer's own).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VAR="${LIANCHEN_VAR:-$REPO/var}"
LOG_DIR="$VAR/log"
RUN_DIR="$VAR/run"
mkdir -p "$LOG_DIR" "$RUN_DIR"

# shellcheck disable=SC2034 # used by the scripts that source this file
DEFAULT_AMQP_URI="amqp://guest:guest@127.0.0.1:5672/"
# shellcheck disable=SC2034
DEFAULT_MONGO_URI="mongodb://127.0.0.1:${FERRETDB_PORT:-27017}/" # FERRETDB_PORT: see ferretdb.sh
# shellcheck disable=SC2034
DEFAULT_RABBIT_MGMT_URL="http://guest:guest@127.0.0.1:15672"

# Prefix every line with the script name so interleaved output stays readable.
_ME="$(basename "${0:-lianchen}" .sh)"
say() { printf '[%s] %s\n' "$_ME" "$*"; }
warn() { printf '[%s] WARNING: %s\n' "$_ME" "$*" >&2; }
die() {
    printf '[%s] ERROR: %s\n' "$_ME" "$1" >&2
    shift
    local line
    for line in "$@"; do printf '[%s]        %s\n' "$_ME" "$line" >&2; done
    exit 1
}

need_cmd() { # need_cmd CMD APT_PACKAGE: install the package if CMD is missing
    command -v "$1" >/dev/null 2>&1 && return 0
    apt_install "$2"
}

apt_install() { # apt_install PKG...: non-interactive, with an update first
    if [ "$(id -u)" != 0 ]; then
        die "need the Debian package(s) $* but not running as root" \
            "install them by hand: sudo apt-get install -y $*"
    fi
    say "apt-get install $* ..."
    apt-get update -qq >"$LOG_DIR/apt.log" 2>&1 ||
        die "apt-get update failed" "read $LOG_DIR/apt.log"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >>"$LOG_DIR/apt.log" 2>&1 ||
        die "apt-get install $* failed" "read $LOG_DIR/apt.log"
}

# uri_host_port URI DEFAULT_PORT -> prints "host port" for the first host of
# scheme://[user[:pass]@]host[:port][,host2...][/path][?query]
uri_host_port() {
    local rest="${1#*://}" hp host port
    rest="${rest%%[/?]*}"     # drop path and query
    rest="${rest##*@}"        # drop credentials
    hp="${rest%%,*}"          # first host only (mongodb seed lists)
    if [[ "$hp" == \[*\]* ]]; then        # [ipv6]:port
        host="${hp%%]*}"; host="${host#[}"
        port="${hp##*]}"; port="${port#:}"
    elif [[ "$hp" == *:* ]]; then
        host="${hp%%:*}"; port="${hp##*:}"
    else
        host="$hp"; port=""
    fi
    printf '%s %s\n' "${host:-127.0.0.1}" "${port:-$2}"
}

port_open() { # port_open HOST PORT: true if something accepts TCP there
    # shellcheck disable=SC2016 # $0/$1 expand in the inner shell
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null
}

# pid_alive PIDFILE [CMDLINE_SUBSTRING]: true if the pid in PIDFILE is a live
# (non-zombie) process, and, when given, its command line contains the
# substring (guards against a recycled pid after a reboot/crash).
pid_alive() {
    local f="$1" want="${2:-}" pid state
    [ -s "$f" ] || return 1
    pid="$(tr -dc '0-9' <"$f")"
    [ -n "$pid" ] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    state="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || echo X)"
    [ "$state" != Z ] && [ "$state" != X ] || return 1
    if [ -n "$want" ]; then
        tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$want" || return 1
    fi
    return 0
}

read_pid() { tr -dc '0-9' <"$1"; }

# spawn PIDFILE LOGFILE CMD...: start CMD detached (own session, immune to
# SIGHUP, stdin closed), output appended to LOGFILE, its pid in PIDFILE.
# The pid is written by the process itself right before exec, so it is the
# real pid of CMD whether or not setsid had to fork.
spawn() {
    local pidfile="$1" logfile="$2"
    shift 2
    rm -f "$pidfile"
    mkdir -p "$(dirname "$pidfile")" "$(dirname "$logfile")"
    # shellcheck disable=SC2016
    setsid nohup bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" \
        >>"$logfile" 2>&1 </dev/null &
    for _ in $(seq 1 50); do
        [ -s "$pidfile" ] && return 0
        sleep 0.1
    done
    die "could not start: $*" "no pid file $pidfile after 5 s; read $logfile"
}

# stop_pidfile PIDFILE NAME [CMDLINE_SUBSTRING]: SIGTERM the process (and its
# process group when it leads one), wait up to 10 s, then SIGKILL; remove the
# pid file. Only ever touches the pid recorded in our own pid file.
stop_pidfile() {
    local f="$1" name="$2" want="${3:-}" pid target
    if [ ! -e "$f" ]; then
        say "$name: not running (no pid file)"
        return 0
    fi
    if ! pid_alive "$f" "$want"; then
        say "$name: not running (stale pid file removed)"
        rm -f "$f"
        return 0
    fi
    pid="$(read_pid "$f")"
    target="$pid"
    # setsid made it a process-group leader: signal the whole group.
    if [ "$(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ')" = "$pid" ]; then
        target="-$pid"
    fi
    say "$name: stopping pid $pid"
    kill -TERM -- "$target" 2>/dev/null || true
    for _ in $(seq 1 100); do
        pid_alive "$f" || break
        sleep 0.1
    done
    if pid_alive "$f"; then
        warn "$name: pid $pid still alive after 10 s, sending SIGKILL"
        kill -KILL -- "$target" 2>/dev/null || true
        sleep 0.5
    fi
    rm -f "$f"
}

# wait_until SECONDS LABEL CMD...: run CMD every second until it succeeds,
# printing progress dots; returns 1 on timeout.
wait_until() {
    local secs="$1" label="$2" start now
    shift 2
    start=$SECONDS
    printf '[%s] waiting for %s' "$_ME" "$label"
    while ! "$@" >/dev/null 2>&1; do
        now=$SECONDS
        if [ $((now - start)) -ge "$secs" ]; then
            printf ' timed out after %ss\n' "$secs"
            return 1
        fi
        printf '.'
        sleep 1
    done
    printf ' ok (%ss)\n' "$((SECONDS - start))"
}

show_log_tail() { # show_log_tail FILE [N]
    local f="$1" n="${2:-30}"
    if [ -s "$f" ]; then
        printf -- '----- last %s lines of %s -----\n' "$n" "$f" >&2
        tail -n "$n" "$f" >&2
        printf -- '----- end of %s -----\n' "$f" >&2
    else
        printf '(%s is empty or missing)\n' "$f" >&2
    fi
}
