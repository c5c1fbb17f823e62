"""`reliability recover` (being built)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Mount the chaos commands on the root app."""
