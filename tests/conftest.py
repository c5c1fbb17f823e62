"""Shared fixtures: paths of the repository and a real Prometheus on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reliability.prometheus import LocalPrometheus

REPO = Path(__file__).resolve().parent.parent
# Sloth specs and the rules Sloth generated for them (vendored; see its README).
COMPAT = REPO / "tests" / "slo" / "data" / "compat"


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture
def local_prometheus(tmp_path: Path) -> Iterator[LocalPrometheus]:
    """A real, empty Prometheus on 127.0.0.1; callers add targets and call reload()."""
    with LocalPrometheus(tmp_path / "prometheus") as prom:
        yield prom
