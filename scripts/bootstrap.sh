#!/usr/bin/env bash
# Installs what the harness needs on a fresh Debian machine: a virtual environment
# with the package in .venv, and from Debian when missing: Prometheus/promtool, HAProxy (the lab's
# gateways), and chromium and tmux (the report and live-console tests look at them as a person would).
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

need_prometheus() { ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; }
# The lab's gateways; Debian installs it in /usr/sbin, which is not on every user's PATH.
need_haproxy() { ! command -v haproxy >/dev/null 2>&1 && [ ! -x /usr/sbin/haproxy ]; }

packages=()
need_prometheus && packages+=(prometheus)
need_haproxy && packages+=(haproxy)
command -v chromium >/dev/null 2>&1 || packages+=(chromium)
command -v tmux >/dev/null 2>&1 || packages+=(tmux)
if [ ${#packages[@]} -gt 0 ]; then
    what="${packages[*]}"
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO=sudo; else
            echo "bootstrap: missing Debian package(s): $what; installing them needs root." >&2
            echo "bootstrap: run 'sudo apt-get install $what' (or put prometheus, promtool, haproxy, chromium and tmux on PATH) and retry." >&2
            exit 2
        fi
    else
        SUDO=
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "bootstrap: missing: $what, and this machine has no apt-get; install Prometheus 2.x" \
             "('prometheus', 'promtool') and HAProxy 2.6+ ('haproxy') on PATH, and retry." >&2
        exit 2
    fi
    echo "bootstrap: installing Debian's $what" >&2
    $SUDO apt-get update -qq >&2
    # policy-rc.d may forbid starting services; the harness never uses the system services.
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${packages[@]}" >&2
    for service in prometheus haproxy; do
        $SUDO systemctl disable --now "$service" >/dev/null 2>&1 || true
    done
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
