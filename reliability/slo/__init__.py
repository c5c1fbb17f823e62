"""The SLO compiler: Sloth / OpenSLO / native specs -> Prometheus recording and alert rules.

The names below are imported on first use (PEP 562), so mounting `reliability slo` in the CLI
does not build the pydantic models of every format for commands that never read an SLO.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reliability.slo.compiler import compile_rules
    from reliability.slo.loader import load_slo_files
    from reliability.slo.model import SLO, ServiceSLOs
    from reliability.slo.writer import compile_paths

__all__ = ["SLO", "ServiceSLOs", "compile_paths", "compile_rules", "load_slo_files"]

_WHERE = {
    "SLO": "reliability.slo.model",
    "ServiceSLOs": "reliability.slo.model",
    "compile_paths": "reliability.slo.writer",
    "compile_rules": "reliability.slo.compiler",
    "load_slo_files": "reliability.slo.loader",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'reliability.slo' has no attribute {name!r}")
