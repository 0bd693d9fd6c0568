#!/usr/bin/env bash
# Local RabbitMQ for development and CI: start | stop | status | users | uri USER
#
# users: the least-privilege broker users (shared/bususers.py) on vhost "/": one per service,
# the operator (lianchen.operator), the monitor (lianchen.monitor, management tag monitoring),
# agencies in BROKER_AGENCIES (default SXAMR, the demo's) and AMQP platforms in
# BROKER_PLATFORMS (default demo-mall); generated passwords in var/secrets/broker/<user>
# (mode 600, kept across runs). Needs the topology applied first (make infra does both).
# uri USER: that user's AMQP URI (from AMQP_URI's host and vhost and the stored password).
# guest stays the administrator, on loopback only (RabbitMQ refuses guest from elsewhere).
#
# Runs Debian's rabbitmq-server as the current user (root on our machines)
# straight from /usr/lib/rabbitmq/bin (not the /usr/sbin wrappers, which su to
# the rabbitmq user and use another Erlang cookie), with every bit of state in
# the repo's ignored var/rabbitmq/. Installs the Debian package if missing.
#
# If AMQP_URI is set, that broker is used as is: nothing is started, we only
# wait for it (and for its management API at RABBIT_MGMT_URL) to answer. The
# same happens when something already answers on the AMQP port.
#
# A second node next to the first (bench/b70_cost.py): LIANCHEN_VAR (state), RABBITMQ_NODENAME,
# RABBITMQ_NODE_PORT and RABBITMQ_MANAGEMENT_PORT (defaults lianchen@localhost, 5672, 15672;
# the node's distribution port is RABBITMQ_NODE_PORT + 20000).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HERE/lib.sh"

RMQ_BIN=/usr/lib/rabbitmq/bin
RMQ_HOME="$VAR/rabbitmq"
RMQ_PIDFILE="$RMQ_HOME/rabbit.pid"
RMQ_OUT="$LOG_DIR/rabbitmq.out"
NODENAME="${RABBITMQ_NODENAME:-lianchen@localhost}"
RMQ_PORT="${RABBITMQ_NODE_PORT:-5672}"
RMQ_MGMT_PORT="${RABBITMQ_MANAGEMENT_PORT:-15672}"

AMQP_URI_FROM_USER="${AMQP_URI+yes}"
AMQP_URI="${AMQP_URI:-${DEFAULT_AMQP_URI/:5672\//:$RMQ_PORT/}}"
RABBIT_MGMT_URL="${RABBIT_MGMT_URL:-${DEFAULT_RABBIT_MGMT_URL/:15672/:$RMQ_MGMT_PORT}}"
RABBIT_MGMT_URL="${RABBIT_MGMT_URL%/}"
read -r AMQP_HOST AMQP_PORT < <(uri_host_port "$AMQP_URI" 5672)

rmq_env() {
    export HOME="$RMQ_HOME" # the Erlang cookie lives here
    export RABBITMQ_NODENAME="$NODENAME"
    export RABBITMQ_NODE_PORT="$RMQ_PORT"
    export RABBITMQ_MNESIA_BASE="$RMQ_HOME/mnesia"
    export RABBITMQ_LOG_BASE="$RMQ_HOME/log"
    export RABBITMQ_PID_FILE="$RMQ_PIDFILE"
    export RABBITMQ_ENABLED_PLUGINS_FILE="$RMQ_HOME/enabled_plugins"
    export RABBITMQ_CONFIG_FILE="$RMQ_HOME/rabbitmq.conf"
    export ERL_CRASH_DUMP="$RMQ_HOME/erl_crash.dump" # not in the caller's cwd
}

ours_running() { pid_alive "$RMQ_PIDFILE" beam; }
amqp_up() { port_open "$AMQP_HOST" "$AMQP_PORT"; }
mgmt_up() { curl -fsS -m 3 -o /dev/null "$RABBIT_MGMT_URL/api/overview"; }

wait_mgmt() {
    wait_until "${1:-60}" "RabbitMQ management API at ${RABBIT_MGMT_URL#*@}" mgmt_up ||
        die "RabbitMQ answers on $AMQP_HOST:$AMQP_PORT but its management API ($RABBIT_MGMT_URL/api/overview) does not" \
            "the broker needs the rabbitmq_management plugin, and RABBIT_MGMT_URL must point at it with valid credentials" \
            "for our own broker read $RMQ_HOME/log/$NODENAME.log and $RMQ_OUT"
}

install_if_missing() {
    [ -x "$RMQ_BIN/rabbitmq-server" ] && return 0
    [ "$(id -u)" = 0 ] ||
        die "rabbitmq-server is not installed and we are not root" \
            "install it: sudo apt-get install -y rabbitmq-server (or point AMQP_URI at a running broker)"
    say "installing rabbitmq-server (about a minute)..."
    apt-get update >"$LOG_DIR/apt.log" 2>&1 ||
        die "apt-get update failed" "read $LOG_DIR/apt.log"
    DEBIAN_FRONTEND=noninteractive apt-get install -y rabbitmq-server >>"$LOG_DIR/apt.log" 2>&1 ||
        die "apt-get install rabbitmq-server failed" "read $LOG_DIR/apt.log"
    [ -x "$RMQ_BIN/rabbitmq-server" ] ||
        die "rabbitmq-server installed but $RMQ_BIN/rabbitmq-server is missing" "read $LOG_DIR/apt.log"
}

write_config() {
    mkdir -p "$RMQ_HOME/mnesia" "$RMQ_HOME/log"
    echo '[rabbitmq_management,rabbitmq_consistent_hash_exchange].' >"$RMQ_HOME/enabled_plugins"
    # Loopback only: this is a dev/CI broker with the guest account.
    cat >"$RMQ_HOME/rabbitmq.conf" <<EOF
listeners.tcp.default = 127.0.0.1:$RMQ_PORT
management.tcp.ip = 127.0.0.1
management.tcp.port = $RMQ_MGMT_PORT
# as infra/rabbitmq/rabbitmq.conf: nothing over 4 MiB (the services refuse far less)
max_message_size = 4194304
EOF
}

cmd_start() {
    need_cmd curl curl
    if [ -n "$AMQP_URI_FROM_USER" ]; then
        say "AMQP_URI is set ($AMQP_HOST:$AMQP_PORT): using that broker, starting nothing"
        wait_until 60 "RabbitMQ at $AMQP_HOST:$AMQP_PORT" amqp_up ||
            die "nothing answers at $AMQP_HOST:$AMQP_PORT (from AMQP_URI)" \
                "start that broker, or unset AMQP_URI to let this script run a local one"
        wait_mgmt 60
        return 0
    fi
    if ours_running; then
        say "already running (pid $(read_pid "$RMQ_PIDFILE"), node $NODENAME)"
        wait_mgmt 90
        return 0
    fi
    if amqp_up; then
        say "something already answers on $AMQP_HOST:$AMQP_PORT (not started by this script): using it"
        wait_mgmt 30
        return 0
    fi

    install_if_missing
    write_config
    rm -f "$RMQ_PIDFILE"
    rmq_env
    say "starting RabbitMQ node $NODENAME (state in var/rabbitmq, output in var/log/rabbitmq.out)"
    echo "=== $(date -Is) start" >>"$RMQ_OUT"
    (cd "$RMQ_HOME" && exec setsid nohup "$RMQ_BIN/rabbitmq-server" >>"$RMQ_OUT" 2>&1 </dev/null) &
    local launcher=$!

    say "waiting for RabbitMQ... (about 10-20 s)"
    # rabbitmqctl wait blocks until the node has booted; watch the launcher
    # meanwhile so that a crash fails fast instead of after the full timeout.
    "$RMQ_BIN/rabbitmqctl" wait --timeout 90 "$RMQ_PIDFILE" >"$LOG_DIR/rabbitmq-wait.log" 2>&1 &
    local waiter=$! rc=0 start=$SECONDS
    while kill -0 "$waiter" 2>/dev/null; do
        if ! kill -0 "$launcher" 2>/dev/null; then
            kill "$waiter" 2>/dev/null || true
            wait "$waiter" 2>/dev/null || true
            echo
            show_log_tail "$RMQ_OUT" 30
            die "RabbitMQ exited during startup" \
                "read $RMQ_OUT and $RMQ_HOME/log/$NODENAME.log" \
                "a common cause is another Erlang node using port 25672 or a stale var/rabbitmq (try: make clean)"
        fi
        if amqp_up >/dev/null 2>&1; then # listeners start last in the boot: it is up
            kill "$waiter" 2>/dev/null || true
            wait "$waiter" 2>/dev/null || true
            break
        fi
        if [ $((SECONDS - start)) -ge 100 ]; then kill "$waiter" 2>/dev/null || true; fi
        sleep 1
        printf '.'
    done
    if ! amqp_up >/dev/null 2>&1; then wait "$waiter" || rc=$?; fi
    echo
    if [ "$rc" != 0 ] && kill -0 "$launcher" 2>/dev/null; then
        # rabbitmqctl wait itself sometimes crashes (escript ":noproc ... elixir_config",
        # seen on restarts) while the node boots fine: ask the node's ports instead.
        warn "rabbitmqctl wait failed (exit $rc); checking the AMQP port instead"
        wait_until 90 "RabbitMQ at $AMQP_HOST:$AMQP_PORT" amqp_up && rc=0
    fi
    if [ "$rc" != 0 ]; then
        cat "$LOG_DIR/rabbitmq-wait.log" >&2 || true
        show_log_tail "$RMQ_HOME/log/$NODENAME.log" 30
        die "RabbitMQ did not come up within 90 s (rabbitmqctl wait exit $rc)" \
            "read $RMQ_HOME/log/$NODENAME.log and $RMQ_OUT; stop it with: bash infra/local/rabbitmq.sh stop"
    fi
    wait_mgmt 60
    say "RabbitMQ is up: amqp://$AMQP_HOST:$AMQP_PORT, management ${RABBIT_MGMT_URL#*@} (pid $(read_pid "$RMQ_PIDFILE"))"
}

cmd_stop() {
    if [ ! -e "$RMQ_PIDFILE" ]; then
        say "not running (we did not start one; nothing to stop)"
        return 0
    fi
    if ! ours_running; then
        say "not running (removing stale pid file)"
        rm -f "$RMQ_PIDFILE"
        return 0
    fi
    local pid
    pid="$(read_pid "$RMQ_PIDFILE")"
    say "stopping RabbitMQ node $NODENAME (pid $pid)..."
    rmq_env
    if ! "$RMQ_BIN/rabbitmqctl" stop "$RMQ_PIDFILE" >"$LOG_DIR/rabbitmq-stop.log" 2>&1; then
        cat "$LOG_DIR/rabbitmq-stop.log" >&2
        warn "rabbitmqctl stop failed; sending SIGTERM to pid $pid"
        kill -TERM "$pid" 2>/dev/null || true
        local _
        for _ in $(seq 1 30); do ours_running || break; sleep 1; done
        if ours_running; then
            die "RabbitMQ (pid $pid) did not stop" "read $LOG_DIR/rabbitmq-stop.log; kill it by hand: kill -9 $pid"
        fi
    fi
    rm -f "$RMQ_PIDFILE"
    say "stopped"
}

cmd_status() {
    if ours_running; then
        say "running: our node $NODENAME, pid $(read_pid "$RMQ_PIDFILE")"
    elif amqp_up; then
        say "running: a broker not started by this script answers on $AMQP_HOST:$AMQP_PORT"
    else
        say "not running (nothing answers on $AMQP_HOST:$AMQP_PORT)"
        return 3
    fi
    if mgmt_up; then
        say "management API: up at ${RABBIT_MGMT_URL#*@}"
    else
        say "management API: NOT answering at ${RABBIT_MGMT_URL#*@}"
    fi
}

SECRETS_DIR="$VAR/secrets/broker"
PY="$REPO/.venv/bin/python"

cmd_users() {
    local -a extra=()
    local code
    for code in ${BROKER_AGENCIES-SXAMR}; do extra+=(--agency "$code"); done
    for code in ${BROKER_PLATFORMS-demo-mall}; do extra+=(--platform "$code"); done
    (cd "$REPO" && AMQP_URI="$AMQP_URI" RABBIT_MGMT_URL="$RABBIT_MGMT_URL" \
        "$PY" -m shared.broker_admin users --vhost / --secrets "$SECRETS_DIR" "${extra[@]}") ||
        die "creating the broker users failed (see above)" \
            "the management API at ${RABBIT_MGMT_URL#*@} needs an administrator (RABBIT_MGMT_URL)"
}

cmd_uri() {
    [ -n "${1:-}" ] || die "usage: $0 uri USER (e.g. lianchen.operator)"
    (cd "$REPO" && "$PY" -m shared.broker_admin uri "$1" --secrets "$SECRETS_DIR" --base "$AMQP_URI")
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
users) cmd_users ;;
uri) cmd_uri "${2:-}" ;;
*)
    echo "usage: $0 start|stop|status|users|uri USER" >&2
    exit 2
    ;;
esac
