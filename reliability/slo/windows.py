"""Multi-window multi-burn-rate alert windows (Google SRE Workbook, "Alerting on SLOs").

The factor of a window pair is the burn rate that spends `share` of the period's budget
within the long window: factor = share x period / long window. For a 30-day period the
default shares give the Workbook's 14.4 / 6 / 3 / 1.
"""

from __future__ import annotations

from decimal import Decimal

from reliability.slo.model import AlertWindow

# (severity, long window s, short window s, budget share)
DEFAULT_WINDOWS: tuple[tuple[str, int, int, Decimal], ...] = (
    ("page", 3600, 300, Decimal("0.02")),
    ("page", 21600, 1800, Decimal("0.05")),
    ("ticket", 86400, 7200, Decimal("0.1")),
    ("ticket", 259200, 21600, Decimal("0.1")),
)


def factor_for(share: Decimal, period_s: int, long_s: int) -> Decimal:
    return share * Decimal(period_s) / Decimal(long_s)


def default_windows(period_s: int) -> tuple[AlertWindow, ...]:
    return tuple(
        AlertWindow(sev, long_s, short_s, factor_for(share, period_s, long_s))
        for sev, long_s, short_s, share in DEFAULT_WINDOWS
    )


def windows_to_record(windows: tuple[AlertWindow, ...]) -> list[int]:
    """Every distinct window an alert needs, shortest first."""
    return sorted({w.short_s for w in windows} | {w.long_s for w in windows})
