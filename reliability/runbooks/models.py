"""The runbook file format: Markdown with YAML front matter, modelled here and nowhere else."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

RUNBOOK_ID = r"^[a-z0-9][a-z0-9-]*$"
# Prometheus' own rule for alert names (a metric-name-like identifier).
ALERT_NAME = r"^[A-Za-z_:][A-Za-z0-9_:]*$"

# The prometheus-operator runbook convention; Rollback/Verification are optional.
REQUIRED_SECTIONS = ("Meaning", "Impact", "Diagnosis", "Mitigation")

AlertName = Annotated[str, StringConstraints(pattern=ALERT_NAME)]
NonEmpty = Annotated[str, StringConstraints(min_length=1, strip_whitespace=True)]


class RunbookMeta(BaseModel):
    """The front matter of `runbooks/<id>.md`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, StringConstraints(pattern=RUNBOOK_ID)] = Field(
        description="Equal to the file name without `.md`; alerts link to it as `<base>/<id>.md`."
    )
    title: NonEmpty
    alerts: list[AlertName] = Field(
        default_factory=list, description="Alert names this runbook answers (each in exactly one runbook)."
    )
    services: list[NonEmpty] = Field(default_factory=list)
    severity: Literal["critical", "warning", "info"]
    tags: list[NonEmpty] = Field(default_factory=list)
    owners: list[NonEmpty] = Field(min_length=1)
    last_reviewed: date


def runbook_json_schema() -> dict[str, Any]:
    """JSON Schema of the front matter, for `reliability schema runbook` and editors."""
    schema = RunbookMeta.model_json_schema()
    schema["title"] = "Runbook front matter"
    schema["description"] = (
        "YAML front matter of runbooks/<id>.md; the body follows the prometheus-operator convention "
        "(## Meaning, ## Impact, ## Diagnosis, ## Mitigation, optionally ## Rollback, ## Verification)."
    )
    return schema


_FENCE = re.compile(r"^\s*(```|~~~)")
_LIST_ITEM = re.compile(r"^(\s*)(?:[-*+]|\d+[.)])\s+(.*)$")


def split_sections(body: str) -> dict[str, str]:
    """`## Heading` -> text under it; headings inside fenced code blocks are not headings."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    in_fence = False
    for line in body.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
        if not in_fence and line.startswith("## "):
            current = sections.setdefault(line[3:].strip(), [])
            continue
        if current is not None:
            current.append(line)
    return {name: "\n".join(lines).strip("\n") for name, lines in sections.items()}


def first_list_item(text: str) -> str | None:
    """The first top-level list item of a Markdown section, with its continuation lines.

    Continuation = indented lines (including an indented code block with the command) up to
    the next item at the same or lower indent or a non-indented paragraph.
    """
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = _LIST_ITEM.match(line)
        if not m:
            continue
        indent = len(m.group(1))
        content = m.start(2)  # continuation lines are indented to the item's text
        out = [m.group(2)]
        for nxt in lines[i + 1 :]:
            stripped = nxt.strip()
            if not stripped:
                out.append("")
                continue
            nxt_indent = len(nxt) - len(nxt.lstrip())
            if nxt_indent <= indent:
                break
            out.append(nxt[content:] if nxt_indent >= content else stripped)
        return "\n".join(out).strip()
    # A section written as prose: its first paragraph is the first step.
    para = text.strip().split("\n\n", 1)[0].strip()
    return para or None


@dataclass(frozen=True)
class Runbook:
    meta: RunbookMeta
    body: str
    path: Path
    sections: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.meta.id

    @property
    def title(self) -> str:
        return self.meta.title

    @property
    def alerts(self) -> list[str]:
        return list(self.meta.alerts)

    @cached_property
    def first_mitigation_step(self) -> str | None:
        """What to do first: the first item of `## Mitigation` (None if the section is missing)."""
        text = self.sections.get("Mitigation")
        return first_list_item(text) if text else None

    @property
    def missing_sections(self) -> list[str]:
        return [s for s in REQUIRED_SECTIONS if not self.sections.get(s, "").strip()]
