"""Small Chaos Toolkit python providers for exercising the runner and controls without a lab."""

from __future__ import annotations

from pathlib import Path


def mark(path: str, text: str = "x") -> str:
    """Append a line to a file: lets tests see which activities (e.g. rollbacks) really ran."""
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text + "\n")
    return text


def read(path: str) -> list[str]:
    p = Path(path)
    return p.read_text(encoding="utf-8").splitlines() if p.exists() else []
