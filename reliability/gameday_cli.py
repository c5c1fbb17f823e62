"""`reliability gameday run`, `reliability gate`, `reliability report` (being built)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Mount the game-day commands on the root app."""
