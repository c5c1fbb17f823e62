"""SLO files -> the normalised model: format detection, validation, conversion."""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from reliability.errors import InputError
from reliability.files import format_loc, load_yaml_documents
from reliability.slo import models as m
from reliability.slo.durations import decimal_of, parse_duration
from reliability.slo.model import (
    WINDOW_PLACEHOLDER,
    SLO,
    AlertSpec,
    Alerting,
    AlertWindow,
    EventsSLI,
    PolicyStep,
    RawSLI,
    ServiceSLOs,
)
from reliability.slo.windows import default_windows, factor_for

_FORMATS: dict[str, type[BaseModel]] = {
    "prometheus/v1": m.SlothSpec,
    "reliability/v1": m.NativeSpec,
    "openslo/v1alpha": m.OpenSLOAlpha,
    "openslo/v1": m.OpenSLOV1,
}
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
_OS_UNITS = {"Second": 1, "Minute": 60, "Hour": 3600, "Day": 86400, "Week": 604800}
# Scrape and evaluation run every second at the finest (the lab); a rate() needs two samples.
MIN_WINDOW_S = 2


def load_slo_files(paths: Iterable[Path | str]) -> list[ServiceSLOs]:
    """Every SLO in the files, validated; the first problem raises an InputError."""
    services: list[ServiceSLOs] = []
    seen: dict[str, Path] = {}
    for raw_path in paths:
        path = Path(raw_path)
        for doc in load_yaml_documents(path):
            svc = parse_document(doc, path)
            for slo in svc.slos:
                if slo.id in seen:
                    other = seen[slo.id]
                    where = "" if other == path else f" (also in {other})"
                    raise InputError(
                        f"{path}: slo {slo.name!r}", f"duplicate SLO name in service {slo.service!r}{where}"
                    )
                seen[slo.id] = path
            services.append(svc)
    if not services:
        raise InputError(", ".join(str(p) for p in paths) or "(no files)", "no SLO specs found")
    return services


def parse_document(doc: Any, path: Path) -> ServiceSLOs:
    if not isinstance(doc, dict):
        raise InputError(str(path), "an SLO spec must be a YAML mapping")
    version = doc.get("version") or doc.get("apiVersion")
    if version not in _FORMATS:
        field = "apiVersion" if "apiVersion" in doc else "version"
        known = ", ".join(sorted(_FORMATS))
        raise InputError(f"{path}: {field}", f"unknown SLO format {version!r} (expected one of: {known})")
    model = _FORMATS[version]
    try:
        spec = model.model_validate(doc)
    except ValidationError as exc:
        raise _located(path, doc, exc) from exc
    if isinstance(spec, m.SlothSpec):
        return _from_sloth(spec, path)
    if isinstance(spec, m.NativeSpec):
        return _from_native(spec, path)
    if isinstance(spec, m.OpenSLOAlpha):
        return _from_openslo_alpha(spec, path)
    return _from_openslo_v1(spec, path)


def _located(path: Path, doc: dict[str, Any], exc: ValidationError) -> InputError:
    """'FILE: slo "name": slos[0].objective: message' - file, SLO and field in one line."""
    err = exc.errors()[0]
    loc = tuple(err["loc"])
    msg = "unknown field" if err["type"] == "extra_forbid" or err["type"] == "extra_forbidden" else err["msg"]
    where = f"{path}"
    if len(loc) >= 2 and loc[0] == "slos" and isinstance(loc[1], int):
        try:
            name = doc["slos"][loc[1]].get("name")
        except (KeyError, IndexError, AttributeError, TypeError):
            name = None
        if name:
            where += f": slo {name!r}"
    return InputError(f"{where}: {format_loc(loc)}", msg)


def _check_name(path: Path, field: str, name: str) -> None:
    if not _NAME.match(name):
        raise InputError(f"{path}: {field}", f"invalid name {name!r} (letters, digits, '-', '_', '.')")


def _check_window_query(path: Path, field: str, query: str) -> None:
    if WINDOW_PLACEHOLDER not in query:
        raise InputError(f"{path}: {field}", f"query has no {WINDOW_PLACEHOLDER} placeholder")


def _sli_of(path: Path, where: str, sli: m.SlothSLI | m.NativeSLI) -> EventsSLI | RawSLI:
    kinds = [k for k in ("events", "raw", "latency") if getattr(sli, k, None) is not None]
    if len(kinds) != 1:
        raise InputError(f"{path}: {where}.sli", "exactly one of events, raw or latency is required")
    if sli.events is not None:
        _check_window_query(path, f"{where}.sli.events.error_query", sli.events.error_query)
        _check_window_query(path, f"{where}.sli.events.total_query", sli.events.total_query)
        return EventsSLI(sli.events.error_query.strip(), sli.events.total_query.strip())
    if sli.raw is not None:
        _check_window_query(path, f"{where}.sli.raw.error_ratio_query", sli.raw.error_ratio_query)
        return RawSLI(sli.raw.error_ratio_query.strip())
    lat = sli.latency  # type: ignore[union-attr]
    assert lat is not None
    return latency_sli(lat.metric, decimal_of(lat.threshold_seconds), lat.selector)


def latency_sli(metric: str, threshold: Decimal, selector: str) -> EventsSLI:
    """Slow requests = all requests - requests in the bucket le=threshold."""
    sel = selector.strip().strip("{}").strip()
    extra = f",{sel}" if sel else ""
    le = _le_value(threshold)
    total = f"sum(rate({metric}_count{{{sel}}}[{WINDOW_PLACEHOLDER}]))"
    good = f'sum(rate({metric}_bucket{{le="{le}"{extra}}}[{WINDOW_PLACEHOLDER}]))'
    return EventsSLI(error_query=f"({total} - {good})", total_query=total)


def _le_value(threshold: Decimal) -> str:
    # prometheus_client renders bucket bounds with repr(float): 0.25 -> "0.25", 1 -> "1.0".
    return repr(float(threshold))


def _alerting(a: m.SlothAlerting) -> Alerting:
    return Alerting(
        name=a.name,
        labels=dict(a.labels),
        annotations=dict(a.annotations),
        page=AlertSpec(dict(a.page_alert.labels), dict(a.page_alert.annotations), a.page_alert.disable),
        ticket=AlertSpec(dict(a.ticket_alert.labels), dict(a.ticket_alert.annotations), a.ticket_alert.disable),
    )


def _require_alert_name(path: Path, where: str, alerting: Alerting) -> None:
    if not alerting.name and not (alerting.page.disable and alerting.ticket.disable):
        raise InputError(f"{path}: {where}.alerting.name", "required unless both alerts are disabled")


def _from_sloth(spec: m.SlothSpec, path: Path) -> ServiceSLOs:
    _check_name(path, "service", spec.service)
    slos = []
    for i, s in enumerate(spec.slos):
        where = f"slos[{i}]"
        _check_name(path, f"{where}.name", s.name)
        alerting = _alerting(s.alerting)
        _require_alert_name(path, where, alerting)
        period = 30 * 86400
        slos.append(
            SLO(
                service=spec.service,
                name=s.name,
                objective=decimal_of(s.objective),
                sli=_sli_of(path, where, s.sli),
                period_s=period,
                windows=default_windows(period),
                source=path,
                description=s.description,
                labels={**spec.labels, **s.labels},
                alerting=alerting,
            )
        )
    return ServiceSLOs(spec.service, path, tuple(slos))


def _native_windows(path: Path, where: str, s: m.NativeSLO, period_s: int) -> tuple[AlertWindow, ...]:
    if s.alerting.windows is None:
        return default_windows(period_s)
    out = []
    for j, w in enumerate(s.alerting.windows):
        wf = f"{where}.alerting.windows[{j}]"
        try:
            long_s, short_s = parse_duration(w.long), parse_duration(w.short)
        except ValueError as exc:
            raise InputError(f"{path}: {wf}", str(exc)) from exc
        if short_s >= long_s:
            raise InputError(f"{path}: {wf}.short", "the short window must be shorter than the long one")
        if short_s < MIN_WINDOW_S:
            raise InputError(f"{path}: {wf}.short", f"windows under {MIN_WINDOW_S}s cannot hold two samples")
        if long_s > period_s:
            raise InputError(f"{path}: {wf}.long", "the long window is longer than the SLO period")
        if (w.factor is None) == (w.budget_share is None):
            raise InputError(f"{path}: {wf}", "give exactly one of budget_share or factor")
        factor = (
            decimal_of(w.factor)
            if w.factor is not None
            else factor_for(decimal_of(w.budget_share), period_s, long_s)  # type: ignore[arg-type]
        )
        out.append(AlertWindow(w.severity, long_s, short_s, factor))
    return tuple(out)


def _from_native(spec: m.NativeSpec, path: Path) -> ServiceSLOs:
    _check_name(path, "service", spec.service)
    slos = []
    for i, s in enumerate(spec.slos):
        where = f"slos[{i}]"
        _check_name(path, f"{where}.name", s.name)
        try:
            period_s = parse_duration(s.period)
        except ValueError as exc:
            raise InputError(f"{path}: slo {s.name!r}: {where}.period", str(exc)) from exc
        alerting = _alerting(s.alerting)
        _require_alert_name(path, where, alerting)
        policy = []
        for j, p in enumerate(s.policy):
            try:
                window_s = parse_duration(p.window)
            except ValueError as exc:
                raise InputError(f"{path}: {where}.policy[{j}].window", str(exc)) from exc
            policy.append(PolicyStep(p.name, window_s, decimal_of(p.burn_rate_threshold), p.action))
        slos.append(
            SLO(
                service=spec.service,
                name=s.name,
                objective=decimal_of(s.objective),
                sli=_sli_of(path, where, s.sli),
                period_s=period_s,
                windows=_native_windows(path, where, s, period_s),
                source=path,
                description=s.description,
                labels={**spec.labels, **s.labels},
                alerting=alerting,
                min_request_rate=decimal_of(s.min_request_rate) if s.min_request_rate is not None else None,
                runbook=s.runbook,
                policy=tuple(policy),
                mode="cli-gen-reliability",
            )
        )
    return ServiceSLOs(spec.service, path, tuple(slos))


def _ratio_error_query(path: Path, where: str, good: str | None, bad: str | None, total: str) -> EventsSLI | RawSLI:
    _check_window_query(path, f"{where}.total", total)
    if bad is not None:
        _check_window_query(path, f"{where}.bad", bad)
        return EventsSLI(bad.strip(), total.strip())
    if good is None:
        raise InputError(f"{path}: {where}", "one of good or bad is required")
    _check_window_query(path, f"{where}.good", good)
    # Sloth's own rendering for OpenSLO good/total: 1 - good/total.
    return RawSLI(f"(\n  1 - (\n    (\n      {good.strip()}\n    )\n    /\n    (\n      {total.strip()}\n    )\n  )\n)")


def _from_openslo_alpha(spec: m.OpenSLOAlpha, path: Path) -> ServiceSLOs:
    w = spec.spec.timeWindows[0]
    period_s = w.count * _OS_UNITS[w.unit]
    slos = []
    for i, o in enumerate(spec.spec.objectives):
        where = f"spec.objectives[{i}].ratioMetrics"
        r = o.ratioMetrics
        sli = _ratio_error_query(
            path, where, r.good.query if r.good else None, r.bad.query if r.bad else None, r.total.query
        )
        slos.append(
            SLO(
                service=spec.spec.service,
                name=f"{spec.metadata.name}-{i}",
                objective=decimal_of(o.target) * 100,
                sli=sli,
                period_s=period_s,
                windows=default_windows(period_s),
                source=path,
                description=spec.spec.description,
                alerting=Alerting(page=AlertSpec(disable=True), ticket=AlertSpec(disable=True)),
                mode="cli-gen-openslo",
            )
        )
    return ServiceSLOs(spec.spec.service, path, tuple(slos))


def _os_query(ref: m.OSMetricRef | None) -> str | None:
    if ref is None:
        return None
    q = ref.metricSource.spec.get("query")
    return str(q) if q is not None else None


def _from_openslo_v1(spec: m.OpenSLOV1, path: Path) -> ServiceSLOs:
    s = spec.spec
    if s.indicator is None:
        raise InputError(f"{path}: spec.indicator", "an inline indicator is required (indicatorRef is not resolved)")
    try:
        period_s = parse_duration(s.timeWindow[0].duration)
    except ValueError as exc:
        raise InputError(f"{path}: spec.timeWindow[0].duration", str(exc)) from exc
    ind = s.indicator.spec
    slos = []
    for i, o in enumerate(s.objectives):
        where = f"spec.objectives[{i}]"
        if o.target is not None:
            objective = decimal_of(o.target) * 100
        elif o.targetPercent is not None:
            objective = decimal_of(o.targetPercent)
        else:
            raise InputError(f"{path}: {where}.target", "target or targetPercent is required")
        if not Decimal(0) < objective < Decimal(100):
            raise InputError(f"{path}: {where}.target", "the objective must be between 0 and 100% (exclusive)")
        sli: EventsSLI | RawSLI
        if ind.ratioMetric is not None:
            r = ind.ratioMetric
            total = _os_query(r.total)
            if total is None:
                raise InputError(f"{path}: spec.indicator.spec.ratioMetric.total", "query is required")
            sli = _ratio_error_query(
                path, "spec.indicator.spec.ratioMetric", _os_query(r.good), _os_query(r.bad), total
            )
        elif ind.thresholdMetric is not None:
            q = _os_query(ind.thresholdMetric)
            if q is None or o.op is None or o.value is None:
                raise InputError(f"{path}: {where}", "a thresholdMetric needs a query, op and value")
            good_op = {"lte": "<=", "lt": "<", "gte": ">=", "gt": ">"}[o.op]
            sli = RawSLI(f"1 - avg_over_time((({q.strip()}) {good_op} bool {o.value})[{WINDOW_PLACEHOLDER}:])")
        else:
            raise InputError(f"{path}: spec.indicator.spec", "ratioMetric or thresholdMetric is required")
        name = spec.metadata.name if len(s.objectives) == 1 else f"{spec.metadata.name}-{i}"
        slos.append(
            SLO(
                service=s.service,
                name=name,
                objective=objective,
                sli=sli,
                period_s=period_s,
                windows=default_windows(period_s),
                source=path,
                description=s.description,
                alerting=Alerting(page=AlertSpec(disable=True), ticket=AlertSpec(disable=True)),
                mode="cli-gen-openslo",
            )
        )
    return ServiceSLOs(s.service, path, tuple(slos))
