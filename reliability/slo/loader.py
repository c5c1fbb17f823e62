"""Reading SLO files: detect the format, validate with its pydantic model, normalise."""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from reliability.errors import InputError
from reliability.files import load_yaml_documents, parse_model
from reliability.slo import models as m
from reliability.slo.durations import decimal_of, parse_duration
from reliability.slo.model import (
    SLO,
    Alerting,
    AlertSpec,
    AlertWindow,
    EventsSLI,
    K8sMeta,
    LatencySLI,
    PolicyStep,
    RawSLI,
    ServiceSLOs,
)
from reliability.slo.windows import default_windows, factor_for

_OPENSLO_UNITS = {"Second": "s", "Minute": "m", "Hour": "h", "Day": "d", "Week": "w"}
_FORMATS: dict[str, type[BaseModel]] = {
    "prometheus/v1": m.SlothSpec,
    "sloth.slok.dev/v1": m.SlothK8sSpec,
    "reliability/v1": m.NativeSpec,
    "openslo/v1alpha": m.OpenSLOV1Alpha,
    "openslo/v1": m.OpenSLOV1,
}
# Sloth's sloth_mode label for what `sloth generate` read (pkg/common/model/info.go).
_MODE_PROM, _MODE_K8S, _MODE_OPENSLO = "cli-gen-prom", "cli-gen-k8s", "cli-gen-openslo"


SLOTH_DEFAULT_PERIOD = "30d"


def load_slo_files(paths: Iterable[Path | str], default_period: str | None = None) -> list[ServiceSLOs]:
    """Every SLO document of every file, normalised; raises InputError on the first problem.

    `default_period`: the period of Sloth specs, which have no period field (Sloth's
    `--default-slo-period`, 30d unless given).
    """
    try:
        sloth_period = parse_duration(default_period or SLOTH_DEFAULT_PERIOD)
    except ValueError as exc:
        raise InputError("--default-slo-period", str(exc)) from exc
    services: list[ServiceSLOs] = []
    for raw_path in paths:
        path = Path(raw_path)
        docs = load_yaml_documents(path)
        if not docs:
            raise InputError(str(path), "no SLO spec in file")
        for i, doc in enumerate(docs):
            services.append(parse_document(doc, path, i if len(docs) > 1 else None, sloth_period))
    check_unique(services)
    return services


def parse_document(
    doc: Any, path: Path, index: int | None = None, sloth_period: int = 30 * 86400
) -> ServiceSLOs:
    where = f"{path}" if index is None else f"{path} (document {index + 1})"
    if not isinstance(doc, dict):
        raise InputError(where, "expected a mapping with `version` or `apiVersion`")
    version = doc.get("version", doc.get("apiVersion"))
    model = _FORMATS.get(str(version)) if version is not None else None
    if model is None:
        known = ", ".join(_FORMATS)
        field = "apiVersion" if "apiVersion" in doc else "version"
        raise InputError(f"{where}: {field}", f"unknown SLO spec version {version!r} (known: {known})")
    try:
        spec = parse_model(model, doc, where)
    except InputError as exc:
        raise _with_slo_name(exc, doc) from exc
    if isinstance(spec, m.SlothSpec):
        _check_plugins(spec.slo_plugins, spec.slos, "slo_plugins", "slos", where)
        return _from_sloth(spec, path, sloth_period)
    if isinstance(spec, m.SlothK8sSpec):
        _check_plugins(spec.spec.sloPlugins, spec.spec.slos, "spec.sloPlugins", "spec.slos", where)
        return _from_sloth_k8s(spec, path, sloth_period)
    if isinstance(spec, m.NativeSpec):
        return _from_native(spec, path, where)
    if isinstance(spec, m.OpenSLOV1Alpha):
        return _from_openslo_v1alpha(spec, path)
    assert isinstance(spec, m.OpenSLOV1)
    return _from_openslo_v1(spec, path, where)


def _check_plugins(
    group: m.SlothSLOPlugins | None,
    slos: list[m.SlothSLO] | list[m.K8sSLO],
    group_field: str,
    slos_field: str,
    where: str,
) -> None:
    for i, slo in enumerate(slos):
        problem = m.plugin_chain_problem(
            group, slo.plugins, group_field, f"{slos_field}[{i}]({slo.name}).plugins"
        )
        if problem is not None:
            raise InputError(f"{where}: {problem[0]}", problem[1])


def _with_slo_name(exc: InputError, doc: dict[str, Any]) -> InputError:
    """Name the SLO, not just its index: 'slos[2](model-quality).objective'."""
    match = re.search(r"slos\[(\d+)\]", exc.location)
    slos = doc.get("slos")
    if not match or not isinstance(slos, list) or int(match.group(1)) >= len(slos):
        return exc
    entry = slos[int(match.group(1))]
    name = entry.get("name") if isinstance(entry, dict) else None
    if not isinstance(name, str):
        return exc
    return InputError(exc.location.replace(match.group(0), f"{match.group(0)}({name})", 1), exc.message)


def check_unique(services: list[ServiceSLOs]) -> None:
    seen: dict[str, Path] = {}
    for svc in services:
        for slo in svc.slos:
            if slo.id in seen:
                raise InputError(
                    f"{slo.source}: slos.{slo.name}",
                    f"duplicate SLO {slo.name!r} in service {slo.service!r} (also in {seen[slo.id]})",
                )
            seen[slo.id] = slo.source


def _alerting(a: m.SlothAlerting | m.K8sAlerting) -> Alerting:
    page = a.page_alert if isinstance(a, m.SlothAlerting) else a.pageAlert
    ticket = a.ticket_alert if isinstance(a, m.SlothAlerting) else a.ticketAlert
    return Alerting(
        name=a.name,
        labels=dict(a.labels),
        annotations=dict(a.annotations),
        page=AlertSpec(dict(page.labels), dict(page.annotations), page.disable),
        ticket=AlertSpec(dict(ticket.labels), dict(ticket.annotations), ticket.disable),
    )


def _events_or_raw(sli: m.SlothSLI | m.NativeSLI | m.K8sSLI) -> EventsSLI | RawSLI:
    if isinstance(sli, m.K8sSLI):
        if sli.events is not None:
            return EventsSLI(sli.events.errorQuery, sli.events.totalQuery)
        assert sli.raw is not None
        return RawSLI(sli.raw.errorRatioQuery)
    if sli.events is not None:
        return EventsSLI(sli.events.error_query, sli.events.total_query)
    assert sli.raw is not None
    return RawSLI(sli.raw.error_ratio_query)


def _from_sloth(spec: m.SlothSpec, path: Path, period: int) -> ServiceSLOs:
    slos = tuple(
        SLO(
            service=spec.service,
            name=s.name,
            objective=decimal_of(s.objective),
            sli=_events_or_raw(s.sli),
            period_s=period,
            windows=default_windows(period),
            source=path,
            description=s.description,
            labels={**spec.labels, **s.labels},
            alerting=_alerting(s.alerting),
        )
        for s in spec.slos
    )
    _check_names(slos, path)
    return ServiceSLOs(spec.service, path, slos)


def _from_sloth_k8s(spec: m.SlothK8sSpec, path: Path, period: int) -> ServiceSLOs:
    svc = spec.spec
    slos = tuple(
        SLO(
            service=svc.service,
            name=s.name,
            objective=decimal_of(s.objective),
            sli=_events_or_raw(s.sli),
            period_s=period,
            windows=default_windows(period),
            source=path,
            description=s.description,
            labels={**svc.labels, **s.labels},
            alerting=_alerting(s.alerting),
            mode=_MODE_K8S,
            spec="sloth.slok.dev/v1",
        )
        for s in svc.slos
    )
    _check_names(slos, path)
    meta = spec.metadata
    k8s = K8sMeta(meta.name, meta.namespace, dict(meta.labels), dict(meta.annotations))
    return ServiceSLOs(svc.service, path, slos, k8s)


def latency_queries(lat: m.LatencySLI) -> tuple[LatencySLI, EventsSLI]:
    le = lat.bucket_le or repr(float(lat.threshold_seconds))
    sel = lat.selector.strip().strip("{}").strip()
    extra = f"{sel}," if sel else ""
    count = f"sum(rate({lat.metric}_count{{{sel}}}[{{{{.window}}}}]))"
    fast = f'sum(rate({lat.metric}_bucket{{{extra}le="{le}"}}[{{{{.window}}}}]))'
    # slow = total - fast; `or` keeps the result when no fast bucket series exists yet.
    error = f"({count} - ({fast} or 0 * {count}))"
    buckets = None if lat.buckets is None else tuple(decimal_of(b) for b in lat.buckets)
    return LatencySLI(lat.metric, le, sel, decimal_of(lat.threshold_seconds), buckets), EventsSLI(
        error, count
    )


def _windows(s: m.NativeSLO, period: int, min_window: int, where: str, i: int) -> tuple[AlertWindow, ...]:
    if s.alert_windows is None:
        windows = default_windows(period)
    else:
        windows = tuple(
            AlertWindow(
                w.severity,
                parse_duration(w.long),
                parse_duration(w.short),
                decimal_of(w.factor)
                if w.factor is not None
                else factor_for(decimal_of(w.budget_share or 0), period, parse_duration(w.long)),
            )
            for w in s.alert_windows
        )
    for j, w in enumerate(windows):
        if w.short_s < 2 * min_window:
            raise InputError(
                f"{where}: slos[{i}].alert_windows[{j}].short",
                f"window {w.short_s}s is below twice the minimum window ({min_window}s)",
            )
        if w.long_s > period:
            raise InputError(
                f"{where}: slos[{i}].alert_windows[{j}].long",
                f"window {w.long_s}s is longer than the SLO period ({period}s)",
            )
    return windows


def _from_native(spec: m.NativeSpec, path: Path, where: str) -> ServiceSLOs:
    min_window = parse_duration(spec.min_window)
    out: list[SLO] = []
    for i, s in enumerate(spec.slos):
        period = parse_duration(s.period or spec.period)
        latency: LatencySLI | None = None
        if s.sli.latency is not None:
            latency, sli = latency_queries(s.sli.latency)
        else:
            sli = _events_or_raw(s.sli)
        out.append(
            SLO(
                service=spec.service,
                name=s.name,
                objective=decimal_of(s.objective),
                sli=sli,
                period_s=period,
                windows=_windows(s, period, min_window, where, i),
                source=path,
                description=s.description,
                labels={**spec.labels, **s.labels},
                alerting=_alerting(s.alerting),
                min_request_rate=None if s.min_request_rate is None else decimal_of(s.min_request_rate),
                runbook=s.runbook,
                policy=tuple(
                    PolicyStep(p.name, parse_duration(p.window), decimal_of(p.burn_rate_threshold), p.action)
                    for p in s.error_budget_policy
                ),
                spec="reliability/v1",
                latency=latency,
                client_sli=s.client_sli,
            )
        )
    _check_names(tuple(out), path)
    return ServiceSLOs(spec.service, path, tuple(out))


def _good_to_error(good: str, total: str) -> EventsSLI:
    # Sloth's OpenSLO conversion: error = 1 - good/total; as events, error = total - good.
    return EventsSLI(f"(({total}) - ({good}))", total)


def _from_openslo_v1alpha(spec: m.OpenSLOV1Alpha, path: Path) -> ServiceSLOs:
    tw = spec.spec.timeWindows[0]
    period = parse_duration(f"{tw.count}{_OPENSLO_UNITS[tw.unit]}")
    slos = []
    for i, obj in enumerate(spec.spec.objectives):
        r = obj.ratioMetrics
        sli = (
            EventsSLI(r.bad.query, r.total.query)
            if r.bad is not None
            else _good_to_error(r.good.query, r.total.query)  # type: ignore[union-attr]
        )
        slos.append(
            SLO(
                service=spec.spec.service,
                name=f"{spec.metadata.name}-{i}",
                objective=decimal_of(obj.target) * 100,
                sli=sli,
                period_s=period,
                windows=default_windows(period),
                source=path,
                description=spec.spec.description,
                alerting=Alerting(page=AlertSpec(disable=True), ticket=AlertSpec(disable=True)),
                mode=_MODE_OPENSLO,
                spec="openslo/v1alpha",
            )
        )
    return ServiceSLOs(spec.spec.service, path, tuple(slos))


def _from_openslo_v1(spec: m.OpenSLOV1, path: Path, where: str) -> ServiceSLOs:
    period = parse_duration(spec.spec.timeWindow[0].duration)
    ind = spec.spec.indicator.spec
    try:
        # thresholdMetric is refused by the model: ratioMetric is the only indicator left.
        r = ind.ratioMetric
        assert r is not None
        total = r.total.metricSource.query()
        if r.bad is not None:
            sli: EventsSLI | RawSLI = EventsSLI(r.bad.metricSource.query(), total)
        else:
            sli = _good_to_error(r.good.metricSource.query(), total)  # type: ignore[union-attr]
    except ValueError as exc:
        raise InputError(f"{where}: spec.indicator", str(exc)) from exc
    slos = tuple(
        SLO(
            service=spec.spec.service,
            name=spec.metadata.name if len(spec.spec.objectives) == 1 else f"{spec.metadata.name}-{i}",
            objective=decimal_of(obj.target) * 100,
            sli=sli,
            period_s=period,
            windows=default_windows(period),
            source=path,
            description=spec.spec.description,
            alerting=Alerting(page=AlertSpec(disable=True), ticket=AlertSpec(disable=True)),
            mode=_MODE_OPENSLO,
            spec="openslo/v1",
        )
        for i, obj in enumerate(spec.spec.objectives)
    )
    return ServiceSLOs(spec.spec.service, path, slos)


def _check_names(slos: tuple[SLO, ...], path: Path) -> None:
    names: set[str] = set()
    for i, s in enumerate(slos):
        if s.name in names:
            raise InputError(f"{path}: slos[{i}].name", f"duplicate SLO name {s.name!r}")
        names.add(s.name)


def objective_of(value: float) -> Decimal:
    return decimal_of(value)
