"""`reliability schema KIND`: JSON Schema of each file format, for editors."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable

import typer

app = typer.Typer(no_args_is_help=True)

# kind -> "module:function returning the JSON Schema dict"; imported only when asked for.
SCHEMAS: dict[str, str] = {
    "slo": "reliability.slo.models:slo_json_schema",
    "lab": "reliability.lab.config:lab_json_schema",
    "scenario": "reliability.scenario:scenario_json_schema",
    "runbook": "reliability.runbooks.models:runbook_json_schema",
    "slo-budget": "reliability.slo.budget_model:budget_json_schema",
}


def _make(kind: str, target: str) -> Callable[[], None]:
    def show() -> None:
        module, func = target.split(":")
        schema = getattr(importlib.import_module(module), func)()
        typer.echo(json.dumps(schema, indent=2))

    show.__doc__ = f"JSON Schema of the {kind} file format."
    return show


for _kind, _target in SCHEMAS.items():
    app.command(_kind)(_make(_kind, _target))
