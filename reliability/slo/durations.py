"""Prometheus durations ("5m", "1h30m", "4w") <-> seconds, and exact decimal rendering.

Rendering follows Prometheus' own `model.Duration.String()` (prometheus/common, the version Sloth
v0.16 builds with): each unit from the largest down, years and weeks only when they divide the
whole duration exactly. So 28d is `4w`, 7d `1w`, 30d `30d`, 90m `1h30m`; Sloth names its rules and
`sloth_window` labels this way, and dashboards select on those names.
"""

from __future__ import annotations

import re
from decimal import Decimal, localcontext
from functools import lru_cache

_UNITS = {"y": 365 * 86400, "w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
# Prometheus' grammar: units largest first, each at most once (ms is refused: SLO windows are
# whole seconds).
_DURATION = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
# time.Duration in Prometheus is int64 nanoseconds, model.Duration int64 milliseconds: ~292 years.
MAX_SECONDS = (1 << 63) // 1_000_000_000


def parse_duration(text: str) -> int:
    """'30d' -> 2592000, '1h30m' -> 5400. Raises ValueError on anything Prometheus would not accept
    here (or a duration of zero)."""
    raw = str(text).strip()
    m = _DURATION.match(raw)
    if not raw or not m:
        raise ValueError(f"invalid duration {text!r} (expected e.g. 30s, 5m, 1h, 1h30m, 28d, 4w)")
    if any(g is not None and len(g) > 20 for g in m.groups()):
        raise ValueError(f"duration {text!r} is out of range (Prometheus allows up to 292y)")
    seconds = sum(int(g) * size for g, size in zip(m.groups(), _UNITS.values(), strict=True) if g)
    if seconds == 0:
        raise ValueError(f"invalid duration {text!r}: must be longer than 0s")
    if seconds > MAX_SECONDS:
        raise ValueError(f"duration {text!r} is out of range (Prometheus allows up to 292y)")
    return seconds


@lru_cache(maxsize=1024)  # a few distinct windows, asked for tens of thousands of times
def format_duration(seconds: int) -> str:
    """Prometheus' rendering: 2419200 -> '4w', 2592000 -> '30d', 5400 -> '1h30m'."""
    if seconds <= 0:
        return "0s"
    out = ""
    rest = seconds
    for unit, size in _UNITS.items():
        if unit in ("y", "w") and rest % size:
            continue
        if rest >= size:
            out += f"{rest // size}{unit}"
            rest %= size
    return out


def decimal_of(value: float | int | str | Decimal) -> Decimal:
    """The decimal a user wrote: 99.9 stays 99.9 (via repr), never 99.900000000000005684."""
    if isinstance(value, Decimal):
        return value
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value))


def fmt(value: Decimal) -> str:
    """Exact, shortest rendering: Decimal('0.0010') -> '0.001', Decimal('14.40') -> '14.4'."""
    with localcontext() as ctx:
        ctx.prec = 100  # the models bound every number far below this
        text = format(value.normalize(), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"
