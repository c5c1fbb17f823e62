"""Finding the lab a chaos activity acts on, from the experiment configuration or the environment."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

STATE_ENV = "RELIABILITY_LAB_STATE"
LAB_DIR_ENV = "RELIABILITY_LAB_DIR"


def default_lab_dir() -> Path:
    return Path(os.environ.get(LAB_DIR_ENV) or ".lab")


def resolve_state_file(state_file: str | None = None, configuration: dict[str, Any] | None = None) -> Path:
    """Explicit argument, then the experiment's `lab_state` key, then $RELIABILITY_LAB_STATE,
    then `<$RELIABILITY_LAB_DIR or .lab>/state.json` (where `reliability lab up` puts it)."""
    cfg = configuration or {}
    chosen = state_file or cfg.get("lab_state") or os.environ.get(STATE_ENV)
    if chosen:
        return Path(str(chosen))
    return default_lab_dir() / "state.json"
