"""Runbooks: parse `runbooks/*.md`, search them, link alerts to them, check the links."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reliability.runbooks.check import CheckReport, Problem, check_runbooks
    from reliability.runbooks.links import (
        find_runbook,
        resolve_runbook_url,
        runbook_base_url,
        runbook_url,
        runbooks_for_alerts,
    )
    from reliability.runbooks.loader import load_runbook, load_runbooks, parse_runbook
    from reliability.runbooks.models import Runbook, RunbookMeta, runbook_json_schema
    from reliability.runbooks.search import SearchIndex, SearchResult

# Imported on first use (PEP 562) so `reliability --help` and `runbook search` pay only for
# what they touch.
_EXPORTS = {
    "CheckReport": "check",
    "Problem": "check",
    "check_runbooks": "check",
    "find_runbook": "links",
    "resolve_runbook_url": "links",
    "runbook_base_url": "links",
    "runbook_url": "links",
    "runbooks_for_alerts": "links",
    "load_runbook": "loader",
    "load_runbooks": "loader",
    "parse_runbook": "loader",
    "Runbook": "models",
    "RunbookMeta": "models",
    "runbook_json_schema": "models",
    "SearchIndex": "search",
    "SearchResult": "search",
}

__all__ = [
    "CheckReport",
    "Problem",
    "Runbook",
    "RunbookMeta",
    "SearchIndex",
    "SearchResult",
    "check_runbooks",
    "find_runbook",
    "load_runbook",
    "load_runbooks",
    "parse_runbook",
    "resolve_runbook_url",
    "runbook_base_url",
    "runbook_json_schema",
    "runbook_url",
    "runbooks_for_alerts",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'reliability.runbooks' has no attribute {name!r}")
    return getattr(importlib.import_module(f"reliability.runbooks.{_EXPORTS[name]}"), name)
