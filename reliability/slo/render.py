"""Small pure helpers shared by the rule generators."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from functools import lru_cache

from reliability.slo.durations import fmt, format_duration
from reliability.slo.model import SLO, WINDOW_RE


@lru_cache(maxsize=4096)  # objectives, budgets and factors repeat across SLOs
def number(value: Decimal) -> str:
    """Exact, short rendering; derived factors like 0.1x28d/3d are rounded to 12 places."""
    with localcontext() as ctx:
        ctx.prec = 100  # the models bound every number far below this
        return fmt(value.quantize(Decimal("1e-12"), rounding=ROUND_HALF_EVEN))


def with_window(query: str, window_s: int) -> str:
    return WINDOW_RE.sub(format_duration(window_s), query.strip())


def selector(slo: SLO) -> str:
    return f'sloth_id="{slo.id}", sloth_service="{slo.service}", sloth_slo="{slo.name}"'


def sloth_labels(slo: SLO) -> dict[str, str]:
    return {
        **slo.labels,
        "sloth_id": slo.id,
        "sloth_service": slo.service,
        "sloth_slo": slo.name,
    }


def runbook_url(runbook_id: str, base_url: str) -> str:
    return f"{base_url.rstrip('/')}/{runbook_id}.md"
