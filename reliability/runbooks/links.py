"""Alert <-> runbook links: `runbook_url` construction and resolution, alert -> runbook lookup."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urldefrag

from reliability.runbooks.loader import load_runbooks
from reliability.runbooks.models import Runbook

BASE_URL_ENV = "RELIABILITY_RUNBOOK_BASE_URL"
DEFAULT_BASE_URL = "runbooks/"


def configured_base_url(explicit: str | None = None) -> str | None:
    """--base-url, else $RELIABILITY_RUNBOOK_BASE_URL, else None (nobody configured one)."""
    return explicit or os.environ.get(BASE_URL_ENV) or None


def runbook_base_url(explicit: str | None = None) -> str:
    """--base-url, else $RELIABILITY_RUNBOOK_BASE_URL, else the repo-relative `runbooks/`."""
    return configured_base_url(explicit) or DEFAULT_BASE_URL


def runbook_url(runbook_id: str, base_url: str | None = None) -> str:
    """The `runbook_url` annotation for a runbook: `<base>/<id>.md`."""
    return f"{runbook_base_url(base_url).rstrip('/')}/{runbook_id}.md"


def resolve_runbook_url(url: str, base_url: str | None = None) -> str | None:
    """The runbook id a `runbook_url` names, or None when it is not under the base URL.

    Accepts `<base>/<id>.md`, `<base>/<id>` (rendered sites drop the suffix) and an #anchor.
    """
    base = runbook_base_url(base_url).rstrip("/") + "/"
    url, _ = urldefrag(url.strip())
    for prefix in (base, base.removeprefix("./"), "./" + base):
        if url.startswith(prefix):
            rest = url[len(prefix) :].removesuffix(".md")
            return rest if rest and "/" not in rest else None
    return None


def alert_index(runbooks: Iterable[Runbook]) -> dict[str, Runbook]:
    """Alert name -> the runbook that lists it (the first one, by id, if several do)."""
    index: dict[str, Runbook] = {}
    for rb in sorted(runbooks, key=lambda r: r.id):
        for alert in rb.meta.alerts:
            index.setdefault(alert, rb)
    return index


def runbooks_for_alerts(alert_names: Iterable[str], runbook_dir: Path) -> dict[str, Runbook]:
    """For the game-day post-mortem: each alert that fired -> its runbook (alerts without one omitted)."""
    index = alert_index(load_runbooks(runbook_dir))
    return {name: index[name] for name in dict.fromkeys(alert_names) if name in index}


def find_runbook(key: str, runbooks: list[Runbook]) -> Runbook | None:
    """A runbook by id or by one of its alert names (case-insensitive)."""
    key_l = key.strip().lower().removesuffix(".md")
    for rb in runbooks:
        if rb.id == key_l:
            return rb
    for alert, rb in alert_index(runbooks).items():
        if alert.lower() == key_l:
            return rb
    return None
