"""The SLO compiler: Sloth / OpenSLO / native specs -> Prometheus recording and alert rules."""

from reliability.slo.compiler import compile_rules
from reliability.slo.loader import load_slo_files
from reliability.slo.model import SLO, ServiceSLOs
from reliability.slo.writer import compile_paths

__all__ = ["SLO", "ServiceSLOs", "compile_paths", "compile_rules", "load_slo_files"]
