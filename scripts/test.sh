#!/usr/bin/env bash
# The test command: installs what is needed, then runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
.venv/bin/ruff check reliability tests benchmarks
exec .venv/bin/python -m pytest "$@"
