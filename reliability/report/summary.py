"""Sentences and numbers the post-mortem, report.html and the CLI share, so they never disagree."""

from __future__ import annotations

from datetime import UTC, datetime

from reliability.report.model import PhaseSummary, RunResult, SliResult


def utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%H:%M:%S.%f")[:-3]


def fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def pct(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value * 100:.{digits}f}%"


def with_unit(value: float | None, unit: str, spec: str = ".3g") -> str:
    """`2.4 s`, or a bare `n/a`: a unit after "n/a" reads as if something had been measured."""
    if value is None:
        return "n/a"
    if unit == "ratio":
        return pct(value, 3)
    return f"{value:{spec}} {unit}".rstrip()


def sli_recovery_text(s: SliResult) -> str:
    return {
        "recovered": f"recovered {s.rto_seconds:.1f} s after injection"
        if s.rto_seconds is not None
        else "recovered",
        "no_impact": "never left its objective",
        "unrecovered": "did not recover within the observation window",
        "unmeasured": f"could not be measured ({s.detail})" if s.detail else "could not be measured",
        "baseline_violated": "was already outside its objective before the fault",
    }[s.status]


def headline(r: RunResult) -> str:
    if r.status == "error":
        return "NOT JUDGED (harness error)"
    if r.status == "interrupted":
        return "INTERRUPTED"
    return "PASSED" if r.passed else "FAILED"


def summary_sentence(r: RunResult) -> str:
    """Detection, recovery of each SLI and (when capacity was lost) capacity, in a few sentences."""
    if r.inject_ts is None:
        return "No fault was injected" + (
            f": the run was interrupted ({r.interrupted})." if r.interrupted else "."
        )
    page = next((d for d in r.detection if d.severity == "page"), None)
    ticket = next((d for d in r.detection if d.severity == "ticket"), None)
    if page is not None:
        detected = f"paged on-call after {page.ttd_seconds:.1f} s ({page.alertname})"
    elif ticket is not None:
        detected = (
            f"opened only a ticket, after {ticket.ttd_seconds:.1f} s ({ticket.alertname}); nothing paged"
        )
    else:
        detected = "was not detected by any expected alert"
    parts = [f"The injected fault {detected}."]
    left = [s for s in r.slis if s.status != "no_impact"]
    if r.slis and not left:
        parts.append("No SLI left its objective: no visible impact.")
    for s in left:
        parts.append(f"{s.slo} {sli_recovery_text(s)}.")
    cap = r.capacity
    if cap is not None and cap.status == "recovered" and cap.rto_seconds is not None:
        parts.append(
            f"Serving capacity (ready GPU nodes {cap.baseline} -> {cap.lowest}) was back "
            f"{cap.rto_seconds:.1f} s after injection."
        )
    elif cap is not None and cap.status == "unrecovered":
        parts.append(f"Serving capacity was not restored (ready GPU nodes {cap.lowest} of {cap.baseline}).")
    return " ".join(parts)


def impact_lines(r: RunResult) -> list[str]:
    """What users saw during the fault, stated whether or not an objective was violated."""
    during = r.impact.get("during")
    before = r.impact.get("before")
    if during is None or (during.requests == 0 and during.seconds == 0):
        return []
    lines: list[str] = []
    if during.failures:
        lines.append(
            f"{pct(during.error_ratio, 1)} of requests failed during the fault ({during.failures} of "
            f"{during.requests}, in {during.failed_seconds} of its {during.seconds} seconds)."
        )
    if during.wrong:
        lines.append(f"{during.wrong} of {during.judged} checked answers were wrong (served with HTTP 200).")
    lines += _latency_lines(before, during)
    if during.good is not None and during.requests and during.good < during.requests - during.failures:
        lines.append(
            f"Goodput during the fault: {during.good / during.requests:.1%} of requests met every "
            "latency target."
        )
    if r.rpo is not None and r.rpo.failed_writes:
        span = f" over {r.rpo.failed_span_s:.1f} s" if r.rpo.failed_span_s else ""
        lines.append(f"{r.rpo.failed_writes} writes to the store failed{span}.")
    if r.rpo is not None and r.rpo.lost_writes:
        lines.append(
            f"{r.rpo.lost_writes} acknowledged writes were lost (RPO {fmt(r.rpo.rpo_seconds, 2)} s)."
        )
    return lines


def _latency_lines(before: PhaseSummary | None, during: PhaseSummary) -> list[str]:
    out = []
    for label, b, d in (
        ("p99 latency", before.p99_ms if before else None, during.p99_ms),
        ("TTFT p99", before.ttft_p99_ms if before else None, during.ttft_p99_ms),
        ("inter-token latency p99", before.itl_p99_ms if before else None, during.itl_p99_ms),
    ):
        if d is None:
            continue
        if b is not None and d > 1.5 * b and d - b >= 20:
            out.append(f"{label} rose from {b:.0f} ms to {d:.0f} ms during the fault.")
    slowest = during.max_latency_ms
    baseline_p99 = before.p99_ms if before is not None else None
    if slowest is not None and baseline_p99 is not None and slowest > 4 * baseline_p99 and slowest >= 500:
        out.append(f"The slowest request during the fault took {during.max_latency_ms:.0f} ms.")
    return out


def silent_alerts(r: RunResult) -> list[str]:
    """Alerts the scenario expected that never fired."""
    return list(r.expected_alerts_silent)
