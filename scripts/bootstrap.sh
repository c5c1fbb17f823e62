#!/usr/bin/env bash
# Installs what the harness needs on a fresh Debian machine: a virtual environment
# with the package in .venv, Prometheus/promtool from Debian when missing, and chromium and tmux
# (the report and console tests) when missing.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

need_prometheus() { ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; }

if need_prometheus; then
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO=sudo; else
            echo "bootstrap: Prometheus/promtool are missing and installing them needs root." >&2
            echo "bootstrap: run 'sudo apt-get install prometheus' (or put prometheus and promtool on PATH) and retry." >&2
            exit 2
        fi
    else
        SUDO=
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "bootstrap: Prometheus/promtool are missing and this machine has no apt-get;" \
             "install Prometheus 2.x so that 'prometheus' and 'promtool' are on PATH, and retry." >&2
        exit 2
    fi
    echo "bootstrap: installing Prometheus from Debian's 'prometheus' package" >&2
    $SUDO apt-get update -qq >&2
    # policy-rc.d may forbid starting services; the harness never uses the system service.
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >&2
    $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
fi

# The report and live-console tests look at them as a person would: headless Chromium, tmux.
need_view_tools() { ! command -v chromium >/dev/null 2>&1 || ! command -v tmux >/dev/null 2>&1; }
if need_view_tools; then
    if [ "$(id -u)" -eq 0 ]; then VSUDO=; elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then VSUDO=sudo; else
        echo "bootstrap: chromium/tmux are missing and installing them needs root:" \
             "run 'sudo apt-get install chromium tmux' and retry." >&2
        exit 2
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "bootstrap: chromium/tmux are missing and this machine has no apt-get; put them on PATH and retry." >&2
        exit 2
    fi
    echo "bootstrap: installing chromium and tmux from Debian" >&2
    $VSUDO apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $VSUDO apt-get install -y -qq --no-install-recommends chromium tmux >&2
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
stamp=.venv/.installed-$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
    echo "bootstrap: installing the harness into .venv (log: .venv/pip.log)" >&2
    if ! { .venv/bin/pip install -q --upgrade pip && .venv/bin/pip install -q -c constraints.txt -e '.[dev]'; } >.venv/pip.log 2>&1; then
        grep -v '^WARNING: Location' .venv/pip.log | tail -30 >&2
        echo "bootstrap: pip install failed" >&2
        exit 1
    fi
    rm -f .venv/.installed-* && touch "$stamp"
fi
