"""The terminal view of `slo budget`: one rich table, one row per SLO. Every column folds instead of
cutting, so a long SLO name or reason is wrapped, never replaced by an ellipsis."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from reliability.slo.budget_model import AlertWindowStatus, BudgetReport, PolicyStepStatus, SLOBudget

COLUMNS = ("SLO", "SLI, events", "error budget", "burn rate: policy steps, alert windows", "valid")


def _pct(x: float | None, digits: int = 4) -> str:
    return "-" if x is None else f"{x * 100:.{digits}f}%"


def _rate(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def _count(x: float) -> str:
    return f"{x:,.0f}"


def slo_cell(s: SLOBudget) -> str:
    return f"{s.service}/{s.slo}\n{s.objective_percent:g}% over {s.window.duration}"


def sli_cell(s: SLOBudget) -> str:
    lines = [f"SLI {_pct(s.sli)}"]
    if s.events is not None:
        e = s.events
        lines += [f"good {_count(e.good)}", f"bad {_count(e.bad)}", f"total {_count(e.total)}"]
    elif s.sli_type == "raw":
        lines.append("events unknown (raw ratio)")
    return "\n".join(lines)


def budget_cell(s: SLOBudget) -> str:
    lines = [f"{s.budget_minutes:.2f} min ({_pct(s.budget_target, 3)})"]
    if s.budget_remaining is not None and s.budget_remaining_minutes is not None:
        lines.append(f"left {s.budget_remaining_minutes:.2f} min ({_pct(s.budget_remaining, 1)})")
    else:
        lines.append("left -")
    return "\n".join(lines)


def _flag(reason: str | None) -> str:
    """A window's reason in a few words (the SLO's own reasons are spelled out in `valid`)."""
    if reason is None:
        return ""
    if reason.startswith("data covers only"):
        return " [partial data]"
    return " [no traffic]" if reason.startswith("no traffic") else " [no data]"


def _step_line(p: PolicyStepStatus) -> str:
    verdict = "TRIGGERS" if p.triggers else "ok"
    return (
        f"{p.name} {p.window}: {_rate(p.burn_rate)} vs {p.burn_rate_threshold:.4g} {verdict}{_flag(p.reason)}"
    )


def _alert_line(a: AlertWindowStatus) -> str:
    verdict = "BURNING" if a.triggers else "ok"
    return (
        f"{a.severity} {a.long_window}/{a.short_window}: {_rate(a.long_burn_rate)}/"
        f"{_rate(a.short_burn_rate)} vs {a.burn_rate_threshold:.4g} {verdict}{_flag(a.reason)}"
    )


def burn_cell(s: SLOBudget) -> str:
    lines = [f"period {s.window.duration}: {_rate(s.burn_rate)}"]
    lines += [_step_line(p) for p in s.policy]
    lines += [_alert_line(a) for a in s.alert_windows]
    if s.firing_alerts:
        lines.append("firing: " + ", ".join(s.firing_alerts))
    return "\n".join(lines)


def valid_cell(s: SLOBudget) -> Text:
    if s.valid:
        return Text("yes", style="green")
    return Text("NO: " + "; ".join(s.reasons), style="bold yellow")


def render_table(report: BudgetReport, console: Console | None = None) -> None:
    console = console or Console()
    when = report.evaluated_at.isoformat().replace("+00:00", "Z")
    console.print(Text(f"SLO error budgets at {when} from Prometheus {report.prometheus}", style="bold"))
    console.print(Text(report.note))
    table = Table(show_lines=True)
    for name in COLUMNS:
        table.add_column(name, overflow="fold")
    for s in report.slos:
        # Text, not markup: names, reasons and "[partial data]" are shown as they are.
        cells = (slo_cell(s), sli_cell(s), budget_cell(s), burn_cell(s))
        table.add_row(*(Text(c) for c in cells), valid_cell(s))
    console.print(table)
    if any(not s.valid for s in report.slos):
        console.print(
            Text(
                "Numbers of SLOs marked NO are shown but do not describe their whole window.", style="yellow"
            )
        )
