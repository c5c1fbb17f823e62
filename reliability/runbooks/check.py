"""`runbook check`: every alert has a runbook, every runbook's alerts exist, every runbook_url resolves."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reliability.errors import HarnessError
from reliability.runbooks.links import DEFAULT_BASE_URL, resolve_runbook_url, runbook_base_url
from reliability.runbooks.loader import load_runbooks
from reliability.runbooks.models import Runbook
from reliability.runbooks.rulefile import AlertRule, alerts_of, load_rule_file, parse_rule_file


@dataclass(frozen=True)
class Problem:
    kind: str  # stable key for scripts: no-runbook, no-runbook-url, unresolved-url, ...
    subject: str  # the alert or runbook concerned
    message: str

    def __str__(self) -> str:
        return f"{self.subject}: {self.message}"


@dataclass
class CheckReport:
    alerts: list[AlertRule] = field(default_factory=list)
    runbooks: list[Runbook] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "alerts": sorted({a.name for a in self.alerts}),
            "runbooks": [rb.id for rb in self.runbooks],
            "problems": [{"kind": p.kind, "subject": p.subject, "message": p.message} for p in self.problems],
        }


def yaml_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])


def compiled_slo_alerts(slo_files: Sequence[Path], base_url: str) -> list[AlertRule]:
    """Alerts the SLO compiler produces for each file (compiled in memory, nothing written)."""
    if not slo_files:
        return []
    try:
        from reliability.slo import compile_rules, load_slo_files
    except ImportError as exc:
        raise HarnessError(f"the SLO compiler (reliability.slo) is not available: {exc}") from exc
    alerts: list[AlertRule] = []
    for path in slo_files:
        rules = compile_rules(load_slo_files([path]), runbook_base_url=base_url)
        source = f"{path} (compiled)"
        alerts.extend(alerts_of(parse_rule_file(rules, source), source))
    return alerts


def rule_file_alerts(rule_files: Sequence[Path]) -> list[AlertRule]:
    return [a for p in rule_files for a in alerts_of(load_rule_file(p), str(p))]


def check_links(alerts: list[AlertRule], runbooks: list[Runbook], base_url: str) -> list[Problem]:
    """The cross-checks, as a pure function of what was loaded."""
    problems: list[Problem] = []
    by_id = {rb.id: rb for rb in runbooks}
    owners: dict[str, list[str]] = {}
    for rb in runbooks:
        for alert in rb.meta.alerts:
            owners.setdefault(alert, []).append(rb.id)
        if rb.missing_sections:
            problems.append(
                Problem(
                    "missing-section",
                    rb.id,
                    f"{rb.path}: missing section(s) " + ", ".join(rb.missing_sections),
                )
            )
        elif rb.first_mitigation_step is None:
            problems.append(Problem("empty-mitigation", rb.id, f"{rb.path}: ## Mitigation has no first step"))

    defined = {a.name for a in alerts}
    seen: set[tuple[str, str | None]] = set()
    for a in alerts:
        if (a.name, a.runbook_url) in seen:
            continue  # one alert split into several rules (e.g. by severity) is checked once per URL
        seen.add((a.name, a.runbook_url))
        if a.name not in owners:
            problems.append(Problem("no-runbook", a.name, f"no runbook lists it ({a.source})"))
        if not a.runbook_url:
            problems.append(Problem("no-runbook-url", a.name, f"no runbook_url annotation ({a.source})"))
            continue
        # Hand-written rule files keep the repo-relative default whatever base the SLOs compile with.
        target = resolve_runbook_url(a.runbook_url, base_url) or resolve_runbook_url(
            a.runbook_url, DEFAULT_BASE_URL
        )
        if target is None or target not in by_id:
            problems.append(
                Problem(
                    "unresolved-url",
                    a.name,
                    f"runbook_url {a.runbook_url!r} does not resolve to a runbook under base {base_url!r} "
                    f"({a.source})",
                )
            )
        elif a.name not in by_id[target].meta.alerts:
            problems.append(
                Problem(
                    "url-mismatch",
                    a.name,
                    f"runbook_url points at runbook {target!r}, which does not list this alert ({a.source})",
                )
            )
    for alert, ids in sorted(owners.items()):
        if alert not in defined:
            for rb_id in ids:
                problems.append(
                    Problem("unknown-alert", rb_id, f"lists alert {alert!r}, which no rule or SLO defines")
                )
        if len(ids) > 1:
            problems.append(
                Problem("ambiguous-alert", alert, f"listed by several runbooks: {', '.join(ids)}")
            )
    return problems


def check_runbooks(
    runbook_dir: Path,
    slo_dir: Path | None = None,
    alert_dir: Path | None = None,
    base_url: str | None = None,
) -> CheckReport:
    """Load runbooks, compile slos/, read alerts/*.yaml and cross-check them all."""
    base = runbook_base_url(base_url)
    runbooks = load_runbooks(Path(runbook_dir))
    alerts = [
        *compiled_slo_alerts(yaml_files(Path(slo_dir)) if slo_dir else [], base),
        *rule_file_alerts(yaml_files(Path(alert_dir)) if alert_dir else []),
    ]
    return CheckReport(alerts=alerts, runbooks=runbooks, problems=check_links(alerts, runbooks, base))
