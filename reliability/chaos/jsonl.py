"""Append-only JSON-lines files shared by the timeline and the fault ledger.

Each record is one `write` of one line; with O_APPEND the kernel keeps concurrent writers
(the chaos child, the game-day parent, `reliability recover`) from interleaving inside a line.
A crash can leave a torn last line: readers skip it rather than fail.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any


def stamp() -> dict[str, float]:
    """Wall and monotonic time, the pair every timeline/ledger/event record carries."""
    return {"ts": time.time(), "mono": time.monotonic()}


def append_record(path: Path, record: dict[str, Any], durable: bool = False) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record, default=str, separators=(",", ":")) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)


def read_records(path: Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.exists():
        return []
    out: list[dict[str, Any]] = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue  # torn line from a crash mid-write
        if isinstance(rec, dict):
            out.append(rec)
    return out
