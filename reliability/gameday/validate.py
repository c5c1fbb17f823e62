"""Every check of a scenario that needs nothing running: a typo or an objective that cannot be
measured is found before a lab starts, not half-way through a fault (InputError -> exit 2)."""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from reliability.errors import HarnessError, InputError
from reliability.scenario import Scenario, resolve
from reliability.slo.model import SLO


@dataclass(frozen=True)
class AlertCatalogue:
    """Alert name -> the severities its rules carry ("page"/"ticket"), from compiled SLO rules and
    the target's platform rules."""

    severities: dict[str, set[str]] = field(default_factory=dict)


def alert_catalogue(slos: list[SLO], rule_files: list[Path]) -> AlertCatalogue:
    from reliability.analysis.detection import severity_of
    from reliability.runbooks.rulefile import alerts_of, load_rule_file
    from reliability.slo import compile_rules
    from reliability.slo.model import ServiceSLOs

    found: dict[str, set[str]] = {}
    services = [ServiceSLOs(s.service, s.source, (s,)) for s in slos]
    for group in compile_rules(services).get("groups", []):
        for rule in group.get("rules", []):
            if "alert" in rule:
                found.setdefault(rule["alert"], set()).add(severity_of(rule.get("labels", {})))
    for path in rule_files:
        for alert in alerts_of(load_rule_file(path), str(path)):
            found.setdefault(alert.name, set()).add(severity_of({"severity": alert.severity or ""}))
    return AlertCatalogue(found)


def longest_page_window(slos: list[SLO]) -> tuple[float, str] | None:
    windows = [(float(w.long_s), s.name) for s in slos for w in s.windows if w.severity == "page"]
    return max(windows) if windows else None


def check_scenario(
    sc: Scenario, path: Path, slos: list[SLO], rule_files: list[Path], runbook_dir: Path | None
) -> None:
    where = str(path)
    obj = sc.objectives
    cat = alert_catalogue(slos, rule_files)
    for i, item in enumerate(obj.expected_alerts):
        names = [item] if isinstance(item, str) else item.any_of
        for name in names:
            if name not in cat.severities:
                known = ", ".join(sorted(cat.severities)) or "none"
                raise InputError(
                    f"{where}: objectives.expected_alerts[{i}]",
                    f"no alert named {name!r} in the scenario's SLO rules or the platform rules "
                    f"(known: {known})",
                )
    for limit, severity, fld in (
        (obj.ttd_max, "page", "ttd_max"),
        (obj.ttd_ticket_max, "ticket", "ttd_ticket_max"),
    ):
        if limit is None:
            continue
        if not any(severity in cat.severities.get(a, set()) for a in obj.alert_names()):
            raise InputError(
                f"{where}: objectives.{fld}",
                f"none of the expected alerts has a {severity} severity, so {fld} cannot be measured",
            )
    slo_names = [s.name for s in slos]
    if isinstance(obj.max_budget_spent, dict):
        for name in obj.max_budget_spent:
            if name not in slo_names:
                raise InputError(
                    f"{where}: objectives.max_budget_spent.{name}",
                    f"no SLO named {name!r} in the scenario's SLO files (SLOs: {', '.join(slo_names)})",
                )
    page = longest_page_window(slos)
    if (
        page is not None
        and (obj.ttd_max is not None or obj.ttd_ticket_max is not None)
        and sc.phases.baseline < page[0]
    ):
        raise InputError(
            f"{where}: phases.baseline",
            f"{sc.phases.baseline:g}s is shorter than the longest page window ({page[0]:g}s, SLO {page[1]}): "
            "at injection the alert's long window would hold no healthy history and detection would look "
            f"faster than in production; make the baseline at least {page[0]:g}s",
        )
    if runbook_dir is not None and obj.runbooks:
        from reliability.runbooks.loader import load_runbooks

        ids = {rb.id for rb in load_runbooks(runbook_dir)} if runbook_dir.is_dir() else set()
        for i, rid in enumerate(obj.runbooks):
            if rid not in ids:
                raise InputError(f"{where}: objectives.runbooks[{i}]", f"no runbook {rid!r} in {runbook_dir}")
    check_promql([(f"{where}: guardrails[{i}].query", g.query) for i, g in enumerate(sc.guardrails)])


def check_promql(queries: list[tuple[str, str]]) -> None:
    """Each query must parse as PromQL (promtool check rules on recording rules made of them)."""
    if not queries:
        return
    from reliability.slo.writer import to_yaml
    from reliability.tools import require_tool

    promtool = require_tool("promtool")
    for location, query in queries:
        rules = {"groups": [{"name": "check", "rules": [{"record": "reliability:check", "expr": query}]}]}
        with tempfile.TemporaryDirectory(prefix="promql-check-") as tmp:
            rule_path = Path(tmp) / "rules.yaml"
            rule_path.write_text(to_yaml(rules), encoding="utf-8")
            try:
                proc = subprocess.run(
                    [promtool, "check", "rules", str(rule_path)], capture_output=True, text=True, timeout=60
                )
            except subprocess.TimeoutExpired as exc:
                raise HarnessError("promtool check rules timed out") from exc
        if proc.returncode != 0:
            lines = [ln.strip() for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
            errors = [ln for ln in lines if not ln.startswith(("Checking", "FAILED", "SUCCESS"))]
            message = (errors or lines or ["unknown error"])[0].replace(str(rule_path), "query")
            raise InputError(location, f"not valid PromQL: {message}")


def scenario_slos(sc: Scenario, path: Path) -> list[SLO]:
    from reliability.slo import load_slo_files

    return [slo for svc in load_slo_files([resolve(path, s) for s in sc.slos]) for slo in svc.slos]
