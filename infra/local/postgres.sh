#!/usr/bin/env bash
# PostgreSQL under the local FerretDB (its `postgresql` handler): available | start | stop | status
#
# available: exit 0 when PostgreSQL server binaries are here or can be installed
#            (Debian's `postgresql` package, as root), 1 otherwise.
# start:     a private cluster (initdb once) on 127.0.0.1:$PG_PORT (default 55432), database
#            `ferretdb`, trust authentication on loopback only.
#            As root the server runs as the `postgres` system user (initdb refuses root), so
#            everything that user writes (data, server log, socket) lives where it can write:
#            var/postgres/ when it can reach it, else (the checkout is in root's home, a
#            mktemp -d folder, any mode-700 folder) /var/tmp/lianchen-postgres/<hash of the repo
#            path>/. The script prints which; var/run/postgres.dir records it, and
#            var/log/postgres.log is a link to the server log when it lives outside var/.
# stop:      pg_ctl stop -m fast (a clean shutdown: nothing committed is lost).
# clean:     stop, then delete this checkout's cluster when it lives outside var/ (make clean
#            deletes var/ itself). Only ever the directory recorded for, or derived from, this
#            checkout's path.
#
# Why PostgreSQL and not SQLite under FerretDB 1.x: measured here (3,000 documents, same run)
# update_one by _id 13x faster, find_one by _id 4.7x, an equality filter on another field
# ~90x (FerretDB pushes filters down to PostgreSQL; with SQLite every keyed read and write scans
# the collection inside FerretDB). Inserts are ~0.8x.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HERE/lib.sh"

PG_PORT="${PG_PORT:-55432}"
FALLBACK_BASE=/var/tmp/lianchen-postgres
FALLBACK_DIR="$FALLBACK_BASE/$(printf '%s' "$REPO" | sha1sum | cut -c1-12)"

pg_bin() { # newest installed server's bin directory
    local d
    d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
    [ -n "$d" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/initdb" ] && echo "$d"
}

as_owner() { # run a command as the cluster's owner, from / (it may not be able to enter the cwd)
    if [ "$(id -u)" = 0 ]; then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

data_dir() {
    if [ "$(id -u)" != 0 ]; then
        echo "$VAR/postgres"
        return
    fi
    mkdir -p "$VAR/postgres"
    chown postgres: "$VAR/postgres" 2>/dev/null || true
    if (cd / && runuser -u postgres -- test -w "$VAR/postgres") 2>/dev/null; then
        echo "$VAR/postgres"
    else # the repo is somewhere the postgres user cannot reach (e.g. under /root)
        rmdir "$VAR/postgres" 2>/dev/null || true
        echo "$FALLBACK_DIR"
    fi
}

pg_log_of() { echo "$1/postgres.log"; } # the server log lives with the data, where its owner writes

cmd_available() {
    [ -n "$(pg_bin)" ] && return 0
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1
}

install_if_missing() {
    [ -n "$(pg_bin)" ] && return 0
    apt_install postgresql
    [ -n "$(pg_bin)" ] || die "installed postgresql but found no /usr/lib/postgresql/*/bin/pg_ctl"
}

ping_pg() { as_owner "$(pg_bin)/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; }

cmd_start() {
    install_if_missing
    local bin dir
    bin="$(pg_bin)"
    dir="$(data_dir)"
    if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
        die "running as root but there is no 'postgres' user to run the server as" \
            "install Debian's postgresql package, or run as a normal user"
    fi
    local log
    log="$(pg_log_of "$dir")"
    mkdir -p "$dir" "$dir/sock"
    if [ "$(id -u)" = 0 ]; then
        chmod 755 "$FALLBACK_BASE" 2>/dev/null || true
        touch "$log"
        chown -R postgres: "$dir"
    fi
    case "$dir" in
    "$VAR"/*) ;;
    *)
        say "the postgres user cannot write in this checkout: cluster, log and socket are in $dir (make clean deletes it)"
        ln -sfn "$log" "$LOG_DIR/postgres.log"
        ;;
    esac
    echo "$dir" >"$RUN_DIR/postgres.dir"
    if [ ! -s "$dir/data/PG_VERSION" ]; then
        say "initdb $dir/data (trust on loopback only)"
        as_owner "$bin/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 \
            >"$LOG_DIR/postgres-initdb.log" 2>&1 || die "initdb failed" "read $LOG_DIR/postgres-initdb.log"
    fi
    if as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        say "already running ($dir/data)"
    else
        say "starting PostgreSQL on 127.0.0.1:$PG_PORT (data $dir/data, log $log)"
        as_owner "$bin/pg_ctl" -D "$dir/data" -l "$log" -w -t 60 \
            -o "-p $PG_PORT -k $dir/sock -c listen_addresses=127.0.0.1 -c max_connections=300" \
            start >/dev/null || { show_log_tail "$log" 30; die "PostgreSQL did not start" "read $log"; }
    fi
    wait_until 30 "PostgreSQL" ping_pg || die "PostgreSQL does not answer on $PG_PORT" "read $log"
    if ! as_owner "$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = 'ferretdb'" | grep -q 1; then
        as_owner "$bin/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres ferretdb
    fi
}

cmd_stop() {
    local bin dir
    bin="$(pg_bin)" || true
    dir="$(cat "$RUN_DIR/postgres.dir" 2>/dev/null || true)"
    if [ -z "$bin" ] || [ -z "$dir" ] || [ ! -d "$dir/data" ]; then
        say "postgres: not running (never started here)"
        return 0
    fi
    if as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        say "postgres: stopping ($dir/data)"
        as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null
    else
        say "postgres: not running"
    fi
}

cmd_clean() {
    cmd_stop
    local dir
    for dir in "$(cat "$RUN_DIR/postgres.dir" 2>/dev/null || true)" "$FALLBACK_DIR"; do
        case "$dir" in
        "$FALLBACK_BASE"/?*)
            if [ -d "$dir" ]; then
                say "postgres: deleting this checkout's cluster $dir"
                rm -rf -- "$dir"
            fi
            ;;
        esac
    done
    rmdir "$FALLBACK_BASE" 2>/dev/null || true # only when no other checkout has a cluster there
    rm -f "$RUN_DIR/postgres.dir" "$LOG_DIR/postgres.log"
}

cmd_status() {
    local dir
    dir="$(cat "$RUN_DIR/postgres.dir" 2>/dev/null || true)"
    if [ -n "$(pg_bin)" ] && ping_pg 2>/dev/null; then
        say "running on 127.0.0.1:$PG_PORT (data ${dir:-?}/data)"
    else
        say "not running"
        return 3
    fi
}

case "${1:-}" in
available) cmd_available ;;
start) cmd_start ;;
stop) cmd_stop ;;
clean) cmd_clean ;;
status) cmd_status ;;
*)
    echo "usage: $0 available|start|stop|clean|status" >&2
    exit 2
    ;;
esac
