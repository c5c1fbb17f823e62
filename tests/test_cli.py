"""The CLI's own contract: help works, bad input is one line and exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reliability.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def test_help_lists_command_groups() -> None:
    out = run_cli("--help")
    assert out.returncode == 0
    for group in ("slo", "lab", "runbook", "schema"):
        assert group in out.stdout


def test_cli_does_not_import_locust() -> None:
    # Locust monkey-patches the process with gevent; the harness must never import it.
    code = "import sys, reliability.cli; print('locust' in sys.modules or 'gevent' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr
