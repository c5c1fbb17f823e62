"""`slo budget`: each SLO's error budget over its window, evaluated by a live Prometheus.

Every number comes from the SLI queries of the spec evaluated at one instant (`--at`, default now)
with the window put in place of `{{.window}}`; the compiled recording rules are not needed, so the
report is right even when the rules were loaded after the metrics started. Event counts are
`rate(...[window]) x window`. Validity: the earliest data of the SLI's total-events query (raw SLIs:
its error-ratio query) is found with two range queries (the window in 720 steps, then the step where
data begins in 720 finer steps), so a 28-day SLO over five minutes of history is flagged.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import urlsplit, urlunsplit

from reliability.errors import HarnessError, InputError
from reliability.slo import templates as t
from reliability.slo.budget_model import (
    AlertWindowStatus,
    BudgetReport,
    Events,
    PolicyStepStatus,
    SLOBudget,
    Window,
)
from reliability.slo.compiler import all_slos
from reliability.slo.durations import format_duration
from reliability.slo.model import SLO, EventsSLI, ServiceSLOs
from reliability.slo.render import number, with_window

TOKEN_ENV = "RELIABILITY_PROMETHEUS_BEARER_TOKEN"
HEADERS_ENV = "RELIABILITY_PROMETHEUS_HEADERS"
# Resolution of the coverage check: a window is looked at in this many steps (2 minutes a day).
COVERAGE_STEPS = 720
# The probe's range: rate() needs two samples, and 5m is Prometheus' own lookback.
MIN_PROBE_S = 300
QUERY_TIMEOUT_S = 120


def auth_headers(env: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ) if env is None else env
    headers: dict[str, str] = {}
    if env.get(HEADERS_ENV):
        try:
            extra = json.loads(env[HEADERS_ENV])
        except json.JSONDecodeError as exc:
            raise InputError(HEADERS_ENV, f"not valid JSON: {exc.msg}") from exc
        if not isinstance(extra, dict) or not all(isinstance(v, str) for v in extra.values()):
            raise InputError(HEADERS_ENV, "expected a JSON object of string header values")
        headers.update(extra)
    if env.get(TOKEN_ENV):
        headers["Authorization"] = f"Bearer {env[TOKEN_ENV]}"
    return headers


# ---- queries (pure) -------------------------------------------------------------------------


def ratio_query(slo: SLO, window_s: int) -> str:
    """The error ratio over any window, straight from the SLI (policy windows need not be recorded)."""
    if isinstance(slo.sli, EventsSLI):
        return t.EVENTS_RATIO.format(
            error=with_window(slo.sli.error_query, window_s), total=with_window(slo.sli.total_query, window_s)
        )
    return t.RAW_RATIO.format(raw=with_window(slo.sli.error_ratio_query, window_s))


def events_queries(sli: EventsSLI, window_s: int) -> tuple[str, str]:
    """Bad and total events per second over the window (bad is 0, not absent, before any error)."""
    error = with_window(sli.error_query, window_s)
    total = with_window(sli.total_query, window_s)
    return t.EVENTS_ERRORS.format(error=error, total=total), t.EVENTS_TOTAL.format(total=total)


def presence_query(slo: SLO) -> str:
    """The query whose data says the SLI is measured at all (with `{{.window}}`)."""
    return slo.sli.total_query if isinstance(slo.sli, EventsSLI) else slo.sli.error_ratio_query


def sli_type(slo: SLO) -> str:
    if slo.latency is not None:
        return "latency"
    return "events" if isinstance(slo.sli, EventsSLI) else "raw"


# ---- the math (pure) --------------------------------------------------------------------------


def budget_minutes(window_s: int, budget_target: Decimal) -> float:
    """Minutes of full outage the budget allows over the window."""
    return float(Decimal(window_s) / 60 * budget_target)


def burn_rate(error_ratio: float | None, budget_target: float) -> float | None:
    return None if error_ratio is None else error_ratio / budget_target


def span_text(seconds: int) -> str:
    """A readable length: whole minutes above an hour ('3d4h12m', not '3d4h12m7s')."""
    return format_duration(seconds - seconds % 60 if seconds >= 3600 else seconds)


@dataclass(frozen=True)
class Coverage:
    """Where the SLI's data begins inside the window, to within `resolution` seconds."""

    since: int | None
    resolution: int

    def covers(self, end: int, window_s: int) -> bool:
        start = end - window_s
        slack = max(self.resolution, window_s // COVERAGE_STEPS)
        return self.since is not None and self.since <= start + slack

    def gap(self, end: int, window_s: int, what: str) -> str | None:
        """Why the data does not cover the window, or None when it does."""
        if self.since is None:
            return f"no data: Prometheus has no sample of the SLI's {what} query in the window"
        if self.covers(end, window_s):
            return None
        return (
            f"data covers only the last {span_text(end - self.since)} of the {format_duration(window_s)} "
            f"window (since {iso(self.since)})"
        )


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def one(values: list[float], what: str) -> tuple[float | None, str | None]:
    """The single value of an aggregated SLI query, or why there is none to use."""
    if len(values) > 1:
        return None, f"the {what} query returns {len(values)} series; it must return one (aggregate it)"
    return (values[0] if values else None), None


# ---- Prometheus -------------------------------------------------------------------------------


class PrometheusReader:
    def __init__(self, url: str) -> None:
        from prometheus_api_client import PrometheusConnect

        self.prom = PrometheusConnect(url=url, headers=auth_headers(), timeout=QUERY_TIMEOUT_S)

    def values(self, query: str, at: int) -> list[float]:
        """The value of each series of an instant query (NaN is no value)."""
        try:
            result = self.prom.custom_query(query, params={"time": at})
        except Exception as exc:  # the client raises several unrelated types for one cause
            raise HarnessError(f"Prometheus query failed: {exc}") from exc
        return [v for v in (float(r["value"][1]) for r in result) if not math.isnan(v)]

    def first_point(self, query: str, start: int, end: int, step: int) -> int | None:
        """The first of the steps end, end-step, ... after `start` at which `query` (with its
        `{{.window}}` >= step, so the steps leave no gap) has a value."""
        n = -(-(end - start) // step)
        first = end - (n - 1) * step
        expr = with_window(query, max(step, MIN_PROBE_S))
        try:
            result = self.prom.custom_query_range(
                expr,
                datetime.fromtimestamp(first, UTC),
                datetime.fromtimestamp(end, UTC),
                step=str(step),
            )
        except Exception as exc:
            raise HarnessError(f"Prometheus query failed: {exc}") from exc
        times = [float(ts) for r in result for ts, v in r["values"] if not math.isnan(float(v))]
        return int(min(times)) if times else None

    def coverage(self, query: str, end: int, window_s: int) -> Coverage:
        step = max(1, -(-window_s // COVERAGE_STEPS))
        since = self.first_point(query, end - window_s, end, step)
        if since is None or since - step <= end - window_s:
            return Coverage(since, step)
        fine = max(1, -(-step // COVERAGE_STEPS))
        if fine == step:
            return Coverage(since, step)
        # Data begins within the step before `since`: look at that step closely.
        refined = self.first_point(query, since - step, since, fine)
        return Coverage(since if refined is None else refined, fine)

    def firing(self, slo: SLO, at: int) -> list[str]:
        if not slo.alerting.name:
            return []
        q = f'ALERTS{{alertname="{slo.alerting.name}", alertstate="firing", sloth_id="{slo.id}"}}'
        try:
            result = self.prom.custom_query(q, params={"time": at})
        except Exception as exc:
            raise HarnessError(f"Prometheus query failed: {exc}") from exc
        return sorted({f"{slo.alerting.name} ({r['metric'].get('sloth_severity', '?')})" for r in result})


# ---- one SLO ----------------------------------------------------------------------------------


class _Ratios:
    """Error ratio per window, each asked of Prometheus once (policy and alert windows overlap)."""

    def __init__(self, slo: SLO, reader: PrometheusReader, end: int) -> None:
        self.slo, self.reader, self.end = slo, reader, end
        self.cache: dict[int, tuple[float | None, str | None]] = {}

    def get(self, window_s: int) -> tuple[float | None, str | None]:
        if window_s not in self.cache:
            values = self.reader.values(ratio_query(self.slo, window_s), self.end)
            self.cache[window_s] = one(values, "error-ratio")
        return self.cache[window_s]


def _window_reason(
    slo: SLO, coverage: Coverage, end: int, window_s: int, ratio: float | None, problem: str | None
) -> str | None:
    gap = coverage.gap(end, window_s, _what(slo))
    if gap or problem:
        return gap or problem
    if ratio is None:
        no = "no traffic" if isinstance(slo.sli, EventsSLI) else "no data"
        return f"{no} in the {format_duration(window_s)} window"
    return None


def _what(slo: SLO) -> str:
    return "total-events" if isinstance(slo.sli, EventsSLI) else "error-ratio"


def slo_budget(slo: SLO, reader: PrometheusReader, end: int) -> SLOBudget:
    period = slo.period_s
    target = float(slo.error_budget)
    coverage = reader.coverage(presence_query(slo), end, period)
    reasons: list[str] = []
    notes: list[str] = []
    gap = coverage.gap(end, period, _what(slo))
    if gap:
        reasons.append(gap)

    events: Events | None = None
    error_ratio: float | None = None
    if isinstance(slo.sli, EventsSLI):
        bad_q, total_q = events_queries(slo.sli, period)
        total, problem = one(reader.values(total_q, end), "total-events")
        bad, bad_problem = one(reader.values(bad_q, end), "error-events")
        if problem or bad_problem:
            reasons.append(str(problem or bad_problem))
        elif total is not None:
            bad_n, total_n = (bad or 0.0) * period, total * period
            events = Events(good=total_n - bad_n, bad=bad_n, total=total_n)
            if total_n > 0:
                error_ratio = bad_n / total_n
            else:
                reasons.append("no traffic: 0 events in the window")
    else:
        notes.append("raw error-ratio SLI: event counts are unknown (the SLI is the ratio its query returns)")
        error_ratio, problem = one(reader.values(ratio_query(slo, period), end), "error-ratio")
        if problem:
            reasons.append(problem)
    if error_ratio is None and not reasons:
        reasons.append(f"no data: the SLI's {_what(slo)} query returns nothing over the window")

    ratios = _Ratios(slo, reader, end)
    policy = []
    for step in slo.policy:
        ratio, problem = ratios.get(step.window_s)
        burn = burn_rate(ratio, target)
        threshold = float(number(step.burn_rate_threshold))
        reason = _window_reason(slo, coverage, end, step.window_s, ratio, problem)
        policy.append(
            PolicyStepStatus(
                name=step.name,
                window=format_duration(step.window_s),
                window_seconds=step.window_s,
                burn_rate_threshold=threshold,
                action=step.action,
                error_ratio=ratio,
                burn_rate=burn,
                triggers=burn is not None and burn >= threshold,
                valid=reason is None,
                reason=reason,
            )
        )
    alert_windows = []
    for w in slo.windows:
        (long_r, long_p), (short_r, short_p) = ratios.get(w.long_s), ratios.get(w.short_s)
        long_b, short_b = burn_rate(long_r, target), burn_rate(short_r, target)
        threshold = float(number(w.factor))
        reason = _window_reason(slo, coverage, end, w.long_s, long_r, long_p) or _window_reason(
            slo, coverage, end, w.short_s, short_r, short_p
        )
        alert_windows.append(
            AlertWindowStatus(
                severity=w.severity,  # type: ignore[arg-type]
                long_window=format_duration(w.long_s),
                short_window=format_duration(w.short_s),
                burn_rate_threshold=threshold,
                long_burn_rate=long_b,
                short_burn_rate=short_b,
                triggers=long_b is not None and short_b is not None and min(long_b, short_b) > threshold,
                valid=reason is None,
                reason=reason,
            )
        )

    burn = burn_rate(error_ratio, target)
    allowed = budget_minutes(period, slo.error_budget)
    remaining = None if burn is None else 1 - burn
    return SLOBudget(
        service=slo.service,
        slo=slo.name,
        id=slo.id,
        file=str(slo.source),
        sli_type=sli_type(slo),  # type: ignore[arg-type]
        objective_percent=float(number(slo.objective)),
        budget_target=target,
        window=Window(
            duration=format_duration(period),
            seconds=period,
            start=datetime.fromtimestamp(end - period, UTC),
            end=datetime.fromtimestamp(end, UTC),
        ),
        valid=not reasons,
        reasons=reasons,
        notes=notes,
        data_since=None if coverage.since is None else datetime.fromtimestamp(coverage.since, UTC),
        events=events,
        sli=None if error_ratio is None else 1 - error_ratio,
        error_ratio=error_ratio,
        burn_rate=burn,
        budget_minutes=allowed,
        error_minutes=None if error_ratio is None else period / 60 * error_ratio,
        budget_remaining=remaining,
        budget_remaining_minutes=None if remaining is None else allowed * remaining,
        policy=policy,
        alert_windows=alert_windows,
        firing_alerts=reader.firing(slo, end),
    )


def _public_url(url: str) -> str:
    """The URL without credentials, fit to be printed."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def budget_report(services: list[ServiceSLOs], prometheus_url: str, at: int | None = None) -> BudgetReport:
    """Every SLO's budget at `at` (Unix seconds, default now), all evaluated at that one instant."""
    end = int(datetime.now(UTC).timestamp()) if at is None else int(at)
    reader = PrometheusReader(prometheus_url)
    return BudgetReport(
        evaluated_at=datetime.fromtimestamp(end, UTC),
        timestamp=end,
        prometheus=_public_url(prometheus_url),
        slos=[slo_budget(slo, reader, end) for slo in all_slos(services)],
    )


def parse_at(text: str) -> int:
    """`--at`: Unix seconds or an ISO 8601 time (a time without zone is UTC)."""
    try:
        return int(float(text))
    except (ValueError, OverflowError):  # not a number, NaN or infinite
        pass
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InputError("--at", f"{text!r} is neither Unix seconds nor an ISO 8601 time") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())
