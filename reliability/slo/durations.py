"""Prometheus durations ("5m", "1h", "30d") <-> seconds, and exact decimal rendering."""

from __future__ import annotations

import re
from decimal import Decimal

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^(\d+)(s|m|h|d|w)$")


def parse_duration(text: str) -> int:
    """'30d' -> 2592000. Raises ValueError on anything Prometheus would not accept here."""
    m = _DURATION.match(str(text).strip())
    if not m or int(m.group(1)) == 0:
        raise ValueError(f"invalid duration {text!r} (expected e.g. 30s, 5m, 1h, 28d)")
    return int(m.group(1)) * _UNITS[m.group(2)]


def format_duration(seconds: int) -> str:
    """2592000 -> '30d'; the largest unit that divides exactly (w is skipped: Sloth says 7d)."""
    for unit in ("d", "h", "m"):
        size = _UNITS[unit]
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def decimal_of(value: float | int | str | Decimal) -> Decimal:
    """The decimal a user wrote: 99.9 stays 99.9 (via repr), never 99.900000000000005684."""
    if isinstance(value, Decimal):
        return value
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value))


def fmt(value: Decimal) -> str:
    """Exact, shortest rendering: Decimal('0.0010') -> '0.001', Decimal('14.40') -> '14.4'."""
    text = format(value.normalize(), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"
