"""The lab's ground-truth event log: one JSON object per line, wall clock and monotonic time.

Several lab processes append to it (the supervisor, the global gateway); each record is one
`write()` on an O_APPEND descriptor, which the kernel keeps whole and ordered on a local file.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any


def stamp() -> dict[str, float]:
    return {"ts": time.time(), "mono": time.monotonic()}


def append_event(path: Path | str, event: str, **fields: Any) -> dict[str, Any]:
    record = {**stamp(), "event": event, **fields}
    line = (json.dumps(record, separators=(",", ":"), default=str) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    return record


def read_events(path: Path | str) -> list[dict[str, Any]]:
    p = Path(path)
    if not p.exists():
        return []
    out = []
    for line in p.read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue  # a line cut by a crash
    return out
