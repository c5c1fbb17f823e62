"""Runbooks and search results for the terminal (rich is imported only when something is shown)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reliability.runbooks.models import Runbook
    from reliability.runbooks.search import SearchResult


def print_runbook(rb: Runbook, width: int | None = None) -> None:
    from rich.console import Console
    from rich.markdown import Markdown
    from rich.panel import Panel

    console = Console(width=width)
    m = rb.meta
    header = (
        f"[bold]{m.title}[/bold]\n"
        f"id: {m.id}   severity: {m.severity}   last reviewed: {m.last_reviewed}\n"
        f"alerts: {', '.join(m.alerts) or '-'}\n"
        f"services: {', '.join(m.services) or '-'}   owners: {', '.join(m.owners)}\n"
        f"file: {rb.path}"
    )
    console.print(Panel(header, expand=False))
    console.print(Markdown(rb.body))


def format_results(results: list[SearchResult]) -> str:
    """Plain text (no rich): the search path must start fast and pipe cleanly."""
    lines: list[str] = []
    for n, r in enumerate(results, 1):
        lines.append(f"{n}. {r.id}  {r.title}  (score {r.score:.2f})")
        why = "; ".join(f"{f}: {', '.join(terms)}" for f, terms in r.matched.items())
        lines.append(f"   matched  {why}")
        if r.corrections:
            fixes = ", ".join(f"{q} -> {t}" for q, t in r.corrections.items())
            lines.append(f"   fuzzy    {fixes}")
        if r.first_mitigation_step:
            step = r.first_mitigation_step.splitlines()
            lines.append(f"   first    {step[0]}")
            lines.extend(f"            {s}" for s in step[1:] if s.strip())
        lines.append(f"   file     {r.path}")
    return "\n".join(lines)
