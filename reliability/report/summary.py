"""Sentences and numbers the post-mortem and report.html share, so the two never disagree."""

from __future__ import annotations

from datetime import UTC, datetime

from reliability.report.model import RunResult
from reliability.scenario import Scenario


def utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%H:%M:%S.%f")[:-3]


def fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def sig(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.4f}%"


def with_unit(value: float | None, unit: str, spec: str = ".3g") -> str:
    """`2.4 s`, or a bare `n/a`: a unit after "n/a" reads as if something had been measured."""
    return "n/a" if value is None else f"{value:{spec}} {unit}".rstrip()


def recovery_text(r: RunResult) -> str:
    if r.recovery == "recovered" and r.rto_seconds is not None:
        return f"recovered {r.rto_seconds:.1f} s after injection"
    return {
        "recovered": "recovered",
        "no_impact": "showed no visible impact",
        "unrecovered": "did not recover within the observation window",
        "unknown": "recovery could not be measured",
    }[r.recovery]


def summary_sentence(r: RunResult) -> str:
    """Detection, recovery and (when measured) capacity, in one sentence or two."""
    detected = (
        f"was detected after {r.ttd_seconds:.1f} s"
        if r.ttd_seconds is not None
        else "was not detected by any expected alert"
    )
    text = f"The injected fault {detected}; service {recovery_text(r)}."
    if r.capacity_rto_seconds is not None:
        text += (
            f" Serving capacity (ready GPU nodes) was back {r.capacity_rto_seconds:.1f} s after injection."
        )
    return text


def silent_alerts(r: RunResult, sc: Scenario) -> list[str]:
    """Alerts the scenario expected that never fired."""
    return [a for a in sc.objectives.expected_alerts if a not in r.alerts_fired]
