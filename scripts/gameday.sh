#!/usr/bin/env bash
# The main job: installs what is needed, then runs the main path of the harness.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
.venv/bin/reliability slo validate slos/*.yaml
.venv/bin/reliability slo test slos/*.yaml
.venv/bin/reliability slo compile slos/*.yaml -o out/slo-rules.yaml
echo "rules written to $(pwd)/out/slo-rules.yaml"
