#!/usr/bin/env bash
# The main job: installs what is needed, then runs a game day on the embedded lab
# (one GPU node dies with Xid 79 under load) and prints where the post-mortem is.
# Exit code: 0 every objective held, 1 one was violated, 2 bad input or harness failure.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
live="--no-live"
if [ -t 1 ]; then live="--live"; fi
exec .venv/bin/reliability gameday run scenarios/gpu-node-loss.yaml "$live" "$@"
