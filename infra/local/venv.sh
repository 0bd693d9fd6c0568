#!/usr/bin/env bash
# Create/update the project virtualenv at .venv.
# (Re)installs `pip install -e '.[dev]'` only when pyproject.toml is newer than
# the stamp .venv/.installed, so a second run is a no-op taking well under 1 s.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HERE/lib.sh"

PY="${PYTHON:-python3.11}"
VENV="$REPO/.venv"
STAMP="$VENV/.installed"

if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ ! "$REPO/pyproject.toml" -nt "$STAMP" ]; then
    exit 0 # up to date
fi

if [ ! -x "$VENV/bin/python" ]; then
    command -v "$PY" >/dev/null 2>&1 ||
        die "$PY not found" "install it (Debian: apt-get install python3.11 python3.11-venv) or set PYTHON=/path/to/python3.11"
    say "creating virtualenv .venv with $PY"
    if ! "$PY" -m venv "$VENV" >"$LOG_DIR/venv.log" 2>&1; then
        rm -rf "$VENV"
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 &&
            grep -q ensurepip "$LOG_DIR/venv.log"; then
            apt_install python3.11-venv
            "$PY" -m venv "$VENV" >>"$LOG_DIR/venv.log" 2>&1 ||
                die "python3.11 -m venv failed" "read $LOG_DIR/venv.log"
        else
            die "$PY -m venv .venv failed" "read $LOG_DIR/venv.log"
        fi
    fi
fi

say "installing the project into .venv (pip install -e '.[dev]'; a minute the first time)..."
cd "$REPO"
if ! "$VENV/bin/pip" install -q -e '.[dev]' >"$LOG_DIR/pip.log" 2>&1; then
    tail -n 25 "$LOG_DIR/pip.log" >&2
    die "pip install -e '.[dev]' failed" "full output in $LOG_DIR/pip.log" \
        "fix pyproject.toml (or the network to PyPI) and rerun: make venv"
fi
touch "$STAMP"
say ".venv ready ($("$VENV/bin/python" --version 2>&1))"
