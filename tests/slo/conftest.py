"""Fixtures of the SLO compiler tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture
def write_spec(tmp_path: Path):
    """Write YAML text to a spec file and return its path."""

    def write(text: str, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real entry point (exit codes and error printing included), as a user runs it."""
    return subprocess.run(
        [sys.executable, "-c", "from reliability.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
