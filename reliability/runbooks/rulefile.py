"""Prometheus rule files (`alerts/*.yaml`, compiled SLO rules) as far as runbook checks need them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from reliability.files import load_yaml, parse_model


class Rule(BaseModel):
    # Prometheus rejects unknown keys in a rule, so do we.
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    alert: str | None = None
    record: str | None = None
    expr: str | int | float
    for_: str | None = Field(default=None, alias="for")
    keep_firing_for: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _alert_xor_record(self) -> Rule:
        if (self.alert is None) == (self.record is None):
            raise ValueError("a rule needs exactly one of 'alert' and 'record'")
        return self


class RuleGroup(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    interval: str | None = None
    query_offset: str | None = None
    limit: int | None = None
    rules: list[Rule] = Field(default_factory=list)


class RuleFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    groups: list[RuleGroup]


@dataclass(frozen=True)
class AlertRule:
    name: str
    source: str  # file (or "slos/x.yaml (compiled)") it came from
    runbook_url: str | None
    severity: str | None


def alerts_of(rule_file: RuleFile, source: str) -> list[AlertRule]:
    return [
        AlertRule(r.alert, source, r.annotations.get("runbook_url"), r.labels.get("severity"))
        for g in rule_file.groups
        for r in g.rules
        if r.alert is not None
    ]


def parse_rule_file(data: Any, source: str) -> RuleFile:
    return parse_model(RuleFile, data, source)


def load_rule_file(path: Path) -> RuleFile:
    return parse_rule_file(load_yaml(path), str(path))
