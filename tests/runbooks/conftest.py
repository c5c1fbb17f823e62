"""Helpers for the runbook tests: writing small runbook files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

BODY = """
## Meaning

Something broke.

## Impact

Users notice.

## Diagnosis

Look at it.

## Mitigation

1. Fix it with `fix --now`.
2. Then tell people.
"""


def front(rb_id: str, alerts: list[str] | None = None, **extra: str) -> str:
    """Front matter; `extra` adds keys or replaces the defaults (a duplicate key is an error)."""
    fields = {
        "id": rb_id,
        "title": f"Runbook {rb_id}",
        "alerts": f"[{', '.join(alerts or [])}]",
        "severity": "warning",
        "owners": "[team]",
        "last_reviewed": "2026-01-01",
        **extra,
    }
    return "\n".join(["---", *(f"{k}: {v}" for k, v in fields.items()), "---"]) + "\n"


WriteRunbook = Callable[..., Path]


@pytest.fixture
def write_runbook(tmp_path: Path) -> WriteRunbook:
    directory = tmp_path / "runbooks"
    directory.mkdir()

    def write(rb_id: str, alerts: list[str] | None = None, body: str = BODY, **extra: str) -> Path:
        path = directory / f"{rb_id}.md"
        path.write_text(front(rb_id, alerts, **extra) + body, encoding="utf-8")
        return path

    return write


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own index cache, never the user's."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("RELIABILITY_CACHE_DIR", str(cache))
    return cache
