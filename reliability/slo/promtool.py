"""promtool integration: rule checking with errors mapped back to the SLO that caused them."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import yaml

from reliability.errors import HarnessError, InputError
from reliability.slo.model import ServiceSLOs

PROMTOOL_TIMEOUT_S = 120


def run_promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    from reliability.tools import require_tool

    try:
        return subprocess.run(
            [require_tool("promtool"), *args],
            capture_output=True,
            text=True,
            cwd=cwd,
            timeout=PROMTOOL_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        raise HarnessError(f"promtool {args[0]} timed out after {PROMTOOL_TIMEOUT_S}s") from exc


def check_rule_text(text: str) -> str | None:
    """None when promtool accepts the rule file, else its complaint in one line."""
    with tempfile.TemporaryDirectory(prefix="reliability-check-") as tmp:
        f = Path(tmp) / "rules.yaml"
        f.write_text(text)
        res = run_promtool("check", "rules", str(f))
    if res.returncode == 0:
        return None
    lines = [ln.strip() for ln in (res.stderr + res.stdout).splitlines() if ln.strip()]
    detail = [ln for ln in lines if not ln.startswith(("Checking", "FAILED", "SUCCESS"))]
    return " ".join(detail or lines).replace(str(f), "rules")


def check_services(services: list[ServiceSLOs], runbook_base_url: str | None = None) -> None:
    """promtool must accept the compiled rules; a failure names the file and SLO at fault."""
    from reliability.slo.compiler import compile_rules, service_groups

    text = yaml.safe_dump(compile_rules(services, runbook_base_url), sort_keys=False)
    if check_rule_text(text) is None:
        return
    for svc in services:
        for slo in svc.slos:
            one = ServiceSLOs(svc.service, svc.source, (slo,))
            problem = check_rule_text(yaml.safe_dump({"groups": service_groups(one, runbook_base_url)}))
            if problem:
                raise InputError(f"{slo.source}: slo {slo.name!r}: sli", f"invalid PromQL: {problem}")
    raise InputError(", ".join(str(s.source) for s in services), "promtool rejected the compiled rules")
