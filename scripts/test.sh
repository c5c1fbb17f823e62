#!/usr/bin/env bash
# The test command: installs what is needed, then lints, checks runbooks and runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
.venv/bin/ruff check reliability tests benchmarks
.venv/bin/reliability runbook check
exec .venv/bin/python -m pytest "$@"
