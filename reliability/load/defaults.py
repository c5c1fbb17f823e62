"""Default prompt and output length distributions (plain data: the Locust side reads them without
loading pydantic; `reliability.load.workload` validates them)."""

from __future__ import annotations

from typing import Any

DEFAULT_PROMPT_TOKENS: dict[str, Any] = {
    "dist": "lognormal", "mean": 256, "sigma": 0.5, "min": 8, "max": 2048,
}  # fmt: skip
DEFAULT_OUTPUT_TOKENS: dict[str, Any] = {
    "dist": "lognormal", "mean": 128, "sigma": 0.5, "min": 8, "max": 1024,
}  # fmt: skip
