#!/usr/bin/env bash
# The six nameko services as local background processes: start | stop | status
#
#   INSTANCES=N   instances per service (default 1); instance k>1 listens on
#                 base port + 10*(k-1), logs to var/log/<name>-<k>.log and has
#                 pid file var/run/<name>-<k>.pid
#   SERVICES="registry scoring"   only these (default: all six)
#   AMQP_URI, MONGO_URI           passed to the services (defaults: local ones)
#   Each service connects as its own broker user lianchen.<service> (AMQP_URI's host and vhost,
#   the password from var/secrets/broker/, made by `rabbitmq.sh users`) and reads the
#   management API as lianchen.monitor; LIANCHEN_BROKER_USERS=0, or no stored passwords:
#   AMQP_URI's own user (guest, the loopback development default).
#
# start skips instances whose pid file points at a live process, then waits
# for GET /health of every instance. stop only signals pids from our pid files.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HERE/lib.sh"

ALL_SERVICES="registry violations scoring restrictions notifications repair"
declare -A BASE_PORT=([registry]=8001 [violations]=8002 [scoring]=8003 [restrictions]=8004 [notifications]=8005 [repair]=8006)
SERVICES="${SERVICES:-$ALL_SERVICES}"
INSTANCES="${INSTANCES:-1}"
HEALTH_TIMEOUT="${HEALTH_TIMEOUT:-60}"
NAMEKO="$REPO/.venv/bin/nameko"
CONFIG="$REPO/infra/nameko.yaml"

[[ "$INSTANCES" =~ ^[1-9][0-9]*$ ]] || die "INSTANCES must be a positive integer, got '$INSTANCES'"
for s in $SERVICES; do
    [ -n "${BASE_PORT[$s]:-}" ] || die "unknown service '$s' in SERVICES" "known: $ALL_SERVICES"
done

export AMQP_URI="${AMQP_URI:-$DEFAULT_AMQP_URI}"
export MONGO_URI="${MONGO_URI:-$DEFAULT_MONGO_URI}"
export RABBIT_MGMT_URL="${RABBIT_MGMT_URL:-$DEFAULT_RABBIT_MGMT_URL}"
# Registry, violations and restrictions (persons:status) turn identity documents into person ids under LIANCHEN_PII_KEY and
# refuse to start without it. Locally (make run) without a key: the development flag, which
# uses a published key that protects nothing. Set LIANCHEN_PII_KEY to run with a real one.
if [ -z "${LIANCHEN_PII_KEY:-}" ]; then
    export LIANCHEN_DEV=1
fi
# Local development: webhook receivers on loopback are allowed (refused by default, see
# services/notifications/targets.py). Set NOTIFY_ALLOW_TARGETS= (empty) to refuse them.
export NOTIFY_ALLOW_TARGETS="${NOTIFY_ALLOW_TARGETS-127.0.0.0/8,::1/128}"

# instance helpers: "<name> <k>" -> suffix, port, files
suffix() { [ "$2" = 1 ] && echo "" || echo "-$2"; }
port_of() { echo $((BASE_PORT[$1] + 10 * ($2 - 1))); }
pidfile_of() { echo "$RUN_DIR/$1$(suffix "$1" "$2").pid"; }
logfile_of() { echo "$LOG_DIR/$1$(suffix "$1" "$2").log"; }
module_of() { echo "services.$1.service"; }
label_of() { echo "$1$(suffix "$1" "$2")"; }

SECRETS_DIR="$VAR/secrets/broker"
broker_users() { [ "${LIANCHEN_BROKER_USERS:-1}" != 0 ] && [ -s "$SECRETS_DIR/lianchen.monitor" ]; }
# user_url URL USER: URL (one, or a ';'/',' list) with USER and its stored password
user_url() {
    local pw
    pw="$(tr -d '\n' <"$SECRETS_DIR/$2")" || die "no stored password for $2 in $SECRETS_DIR" \
        "create the broker users: bash infra/local/rabbitmq.sh users"
    printf '%s' "$1" | sed -E "s#://([^@/;,]*@)?#://$2:$pw@#g"
}

healthy() { curl -fs -m 2 -o /dev/null "http://127.0.0.1:$1/health"; }

instances() { # prints "name k" for every configured instance
    local s k
    for s in $SERVICES; do
        for k in $(seq 1 "$INSTANCES"); do echo "$s $k"; done
    done
}

cmd_start() {
    bash "$HERE/venv.sh"
    [ -f "$CONFIG" ] || die "missing $CONFIG" "the nameko config is part of the repo; restore it"
    need_cmd curl curl

    local name k port pidfile logfile
    local -a pending=() to_start=()
    # First pass: find what to start, and refuse before starting anything if
    # one of the ports is taken by a process we did not start.
    while read -r name k; do
        port="$(port_of "$name" "$k")"
        pidfile="$(pidfile_of "$name" "$k")"
        if pid_alive "$pidfile" "$(module_of "$name")"; then
            say "$(label_of "$name" "$k"): already running (pid $(read_pid "$pidfile"), port $port)"
        elif port_open 127.0.0.1 "$port"; then
            die "port $port (for $(label_of "$name" "$k")) is already in use by a process we did not start; started nothing" \
                "find it with: ss -ltnp 'sport = :$port' and stop it, then rerun"
        else
            to_start+=("$name:$k")
        fi
        pending+=("$name:$k")
    done < <(instances)

    local item
    for item in "${to_start[@]+"${to_start[@]}"}"; do
        name="${item%%:*}"
        k="${item##*:}"
        port="$(port_of "$name" "$k")"
        pidfile="$(pidfile_of "$name" "$k")"
        logfile="$(logfile_of "$name" "$k")"
        echo "=== $(date -Is) start $(label_of "$name" "$k") on 127.0.0.1:$port" >>"$logfile"
        (
            cd "$REPO"
            export WEB_SERVER_ADDRESS="127.0.0.1:$port"
            if broker_users; then
                AMQP_URI="$(user_url "$AMQP_URI" "lianchen.$name")"
                RABBIT_MGMT_URL="$(user_url "$RABBIT_MGMT_URL" lianchen.monitor)"
                export AMQP_URI RABBIT_MGMT_URL
            fi
            spawn "$pidfile" "$logfile" "$NAMEKO" run --config "$CONFIG" "$(module_of "$name")"
        )
        say "$(label_of "$name" "$k"): started pid $(read_pid "$pidfile") on port $port (log var/log/$(basename "$logfile"))"
    done

    # Wait for every instance's /health concurrently, failing fast on a crash.
    local start=$SECONDS failed=() still
    printf '[%s] waiting for /health of %d instance(s)' "$_ME" "${#pending[@]}"
    while [ "${#pending[@]}" -gt 0 ]; do
        still=()
        for item in "${pending[@]}"; do
            name="${item%%:*}"
            k="${item##*:}"
            if healthy "$(port_of "$name" "$k")"; then
                continue
            elif ! pid_alive "$(pidfile_of "$name" "$k")"; then
                failed+=("$item:exited")
            elif [ $((SECONDS - start)) -ge "$HEALTH_TIMEOUT" ]; then
                failed+=("$item:timeout")
            else
                still+=("$item")
            fi
        done
        pending=("${still[@]+"${still[@]}"}")
        [ "${#pending[@]}" -gt 0 ] || break
        printf '.'
        sleep 1
    done
    printf ' (%ss)\n' "$((SECONDS - start))"

    if [ "${#failed[@]}" -gt 0 ]; then
        local why
        for item in "${failed[@]}"; do
            name="${item%%:*}"
            k="${item#*:}"; k="${k%%:*}"
            why="${item##*:}"
            if [ "$why" = exited ]; then
                echo "[$_ME] $(label_of "$name" "$k"): process exited before /health answered" >&2
                rm -f "$(pidfile_of "$name" "$k")"
            else
                echo "[$_ME] $(label_of "$name" "$k"): GET http://127.0.0.1:$(port_of "$name" "$k")/health did not return 200 within ${HEALTH_TIMEOUT}s" >&2
            fi
            show_log_tail "$(logfile_of "$name" "$k")" 25
        done
        die "${#failed[@]} service instance(s) failed to become healthy (see the log tails above)" \
            "full logs in var/log/; stop what did start with: make stop (or bash infra/local/services.sh stop)"
    fi
    say "all healthy: $(instances | while read -r name k; do printf '%s=:%s ' "$(label_of "$name" "$k")" "$(port_of "$name" "$k")"; done)"
}

# Every pid file of ours, whatever INSTANCES was when they were started.
our_pidfiles() {
    local s f
    for s in $SERVICES; do
        for f in "$RUN_DIR/$s.pid" "$RUN_DIR/$s"-[0-9]*.pid; do
            [ -e "$f" ] && echo "$s $f"
        done
    done
    return 0
}

cmd_stop() {
    local name f any=0
    local -a jobs=()
    while read -r name f; do
        any=1
        stop_pidfile "$f" "$(basename "$f" .pid)" "$(module_of "$name")" &
        jobs+=($!)
    done < <(our_pidfiles)
    [ "$any" = 1 ] || { say "no service pid files: nothing to stop"; return 0; }
    local j rc=0
    for j in "${jobs[@]}"; do wait "$j" || rc=1; done
    return $rc
}

cmd_status() {
    local name f pid label port k any=0 down=0
    while read -r name f; do
        any=1
        label="$(basename "$f" .pid)"
        k="${label#"$name"}"; k="${k#-}"; k="${k:-1}"
        port="$(port_of "$name" "$k")"
        if pid_alive "$f" "$(module_of "$name")"; then
            pid="$(read_pid "$f")"
            if healthy "$port"; then
                say "$label: running pid $pid, port $port, /health ok"
            else
                say "$label: running pid $pid, port $port, /health NOT ok"
                down=1
            fi
        else
            say "$label: not running (stale pid file)"
            down=1
        fi
    done < <(our_pidfiles)
    if [ "$any" = 0 ]; then
        say "no services running (no pid files in var/run)"
        return 3
    fi
    [ "$down" = 0 ] || return 3
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
*)
    echo "usage: [INSTANCES=N] [SERVICES='a b'] $0 start|stop|status" >&2
    exit 2
    ;;
esac
