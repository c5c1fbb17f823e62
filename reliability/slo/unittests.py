"""`slo test`: generate promtool unit tests for every SLO and run `promtool test rules`.

Scenarios per SLO (each its own test group with its own input series): healthy traffic (no alert),
a fast burn (page), a slow burn (ticket only), zero traffic (no alert and no SLI sample, so no
NaN). For latency SLIs the burns are made of slow requests.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reliability.errors import HarnessError
from reliability.files import write_atomic
from reliability.slo.compiler import DEFAULT_RUNBOOK_BASE, compile_rules
from reliability.slo.durations import format_duration
from reliability.slo.loader import load_slo_files
from reliability.slo.model import SLO, ServiceSLOs
from reliability.slo.render import sloth_labels
from reliability.slo.series import Segment, SeriesPlan, counter_values, plan_for, window_stats
from reliability.slo.writer import to_yaml
from reliability.tools import require_tool


@dataclass(frozen=True)
class TestRun:
    ok: bool
    output: str
    cases: int
    slos: int
    skipped: tuple[str, ...] = ()


def interval_for(slo: SLO) -> int:
    shortest = min(w.short_s for w in slo.windows)
    return max(1, min(300, shortest // 2))


def scenarios(slo: SLO) -> list[tuple[str, list[Segment]]]:
    iv = interval_for(slo)
    budget = float(slo.error_budget)
    longest = max(w.long_s for w in slo.windows)
    page = [w for w in slo.windows if w.severity == "page"]
    ticket = [w for w in slo.windows if w.severity == "ticket"]
    rate = max(10.0, 4 * float(slo.min_request_rate or 0))
    steps = longest // iv + 1
    # No-alert scenarios only need to outlast the page windows; promtool's cost grows with steps.
    quiet = min(steps, 2 * max(w.long_s for w in page or slo.windows) // iv + 1)
    out: list[tuple[str, list[Segment]]] = [("healthy", [Segment(quiet, rate, budget * 0.5)])]
    if page:
        fast = min(1.0, 2 * float(max(w.factor for w in page)) * budget)
        burn = min(w.long_s for w in page) // iv
        name = "slow-request burn (page)" if slo.latency else "fast burn (page)"
        out.append((name, [Segment(steps, rate, 0.0), Segment(burn, rate, fast)]))
    if ticket:
        low = float(min(w.factor for w in ticket))
        high = float(min(w.factor for w in page)) if page else 4 * low
        # Between the lowest ticket and page factors with a margin to both, or no clean slow burn.
        if high > 1.5 * low:
            out.append(("slow burn (ticket)", [Segment(steps, rate, (low * high) ** 0.5 * budget)]))
    out.append(("zero traffic", [Segment(quiet, 0.0, 0.0)]))
    return out


def expected_severities(slo: SLO, segments: list[Segment]) -> set[str]:
    """Which severities the generated alert expressions should fire at the last sample."""
    iv = interval_for(slo)
    at = sum(s.steps for s in segments) - 1
    firing: set[str] = set()
    for w in slo.windows:
        short_ratio, _ = window_stats(segments, iv, at, w.short_s)
        long_ratio, long_rate = window_stats(segments, iv, at, w.long_s)
        threshold = float(w.factor) * float(slo.error_budget)
        gate = slo.min_request_rate is None or long_rate > float(slo.min_request_rate)
        if short_ratio > threshold and long_ratio > threshold and gate:
            firing.add(w.severity)
    return {sev for sev in firing if not getattr(slo.alerting, sev).disable and slo.alerting.name}


def _expand(text: str, labels: dict[str, str]) -> str:
    return re.sub(r"\{\{\s*\$labels\.(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), text)


def _alert(slo: SLO, severity: str, rule_file: dict[str, Any]) -> dict[str, Any]:
    rule = next(
        r
        for g in rule_file["groups"]
        for r in g["rules"]
        if r.get("alert") == slo.alerting.name and r["labels"]["sloth_severity"] == severity
    )
    labels = {**sloth_labels(slo), **rule["labels"]}
    return {
        "exp_labels": labels,
        "exp_annotations": {k: _expand(v, labels) for k, v in rule["annotations"].items()},
    }


def _input_series(plan: SeriesPlan, segments: list[Segment], iv: int) -> list[dict[str, str]]:
    def series(metric: str, labels: dict[str, str]) -> str:
        body = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        return f"{metric}{{{body}}}"

    if plan.latency_le is not None:
        labels = plan.bad[1]
        return [
            {"series": series(plan.bad[0], labels), "values": counter_values(segments, iv, "all")},
            {
                "series": series(plan.good[0], {**labels, "le": plan.latency_le}),
                "values": counter_values(segments, iv, "good"),
            },
        ]
    return [
        {"series": series(*plan.bad), "values": counter_values(segments, iv, "bad")},
        {"series": series(*plan.good), "values": counter_values(segments, iv, "good")},
    ]


def slo_tests(slo: SLO, rules: dict[str, Any]) -> list[dict[str, Any]] | None:
    plan = plan_for(slo)
    if plan is None:
        return None
    iv = interval_for(slo)
    sel = f'{{sloth_id="{slo.id}"}}'
    tests = []
    for name, segments in scenarios(slo):
        at = format_duration((sum(s.steps for s in segments) - 1) * iv)
        test: dict[str, Any] = {
            "name": f"{slo.id}: {name}",
            "interval": format_duration(iv),
            "input_series": _input_series(plan, segments, iv),
        }
        if slo.alerting.name:
            firing = sorted(expected_severities(slo, segments))
            test["alert_rule_test"] = [
                {
                    "eval_time": at,
                    "alertname": slo.alerting.name,
                    "exp_alerts": [_alert(slo, sev, rules) for sev in firing],
                }
            ]
        if name == "zero traffic":
            shortest = format_duration(min(w.short_s for w in slo.windows))
            test["promql_expr_test"] = [
                {"expr": f"slo:sli_error:ratio_rate{shortest}{sel}", "eval_time": at, "exp_samples": []},
                {
                    "expr": f"slo:sli_error:ratio_rate{format_duration(slo.period_s)}{sel}",
                    "eval_time": at,
                    "exp_samples": [],
                },
            ]
        tests.append(test)
    return tests


def generate(services: list[ServiceSLOs], directory: Path) -> tuple[list[Path], int, list[str]]:
    """Write rules.yaml and one <slo-id>.test.yaml per SLO; returns (test files, cases, skipped)."""
    files: list[Path] = []
    cases = 0
    skipped: list[str] = []
    for svc in services:
        for slo in svc.slos:
            rules = compile_rules([ServiceSLOs(svc.service, svc.source, (slo,))], DEFAULT_RUNBOOK_BASE)
            tests = slo_tests(slo, rules)
            if tests is None:
                skipped.append(
                    f"{slo.id}: cannot synthesise input series for this SLI (raw or joined queries)"
                )
                continue
            rule_path = directory / f"{slo.id}.rules.yaml"
            write_atomic(rule_path, to_yaml(rules))
            test_path = directory / f"{slo.id}.test.yaml"
            doc = {
                "rule_files": [rule_path.name],
                "evaluation_interval": tests[0]["interval"],
                "tests": tests,
            }
            write_atomic(test_path, to_yaml(doc))
            files.append(test_path)
            cases += len(tests)
    return files, cases, skipped


def run_slo_tests(paths: list[Path], keep: Path | None = None) -> TestRun:
    services = load_slo_files(paths)
    promtool = require_tool("promtool")
    with tempfile.TemporaryDirectory(prefix="slo-test-") as tmp:
        directory = Path(keep) if keep else Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        files, cases, skipped = generate(services, directory)
        notes = "".join(f"skipped {s}\n" for s in skipped)
        if not files:
            return TestRun(True, notes + "no SLO with testable series", 0, 0, tuple(skipped))
        results = _run_parallel(promtool, files, directory)
    ok = all(code == 0 for code, _ in results)
    output = notes + "".join(out for _, out in results)
    return TestRun(ok, output, cases, len(files), tuple(skipped))


def _run_parallel(promtool: str, files: list[Path], directory: Path) -> list[tuple[int, str]]:
    """One promtool per test file, at most two at a time (each is single-threaded, CPU-bound)."""

    def one(f: Path) -> tuple[int, str]:
        try:
            proc = subprocess.run(
                [promtool, "test", "rules", f.name],
                cwd=directory,
                capture_output=True,
                text=True,
                timeout=600,
            )
        except subprocess.TimeoutExpired as exc:
            raise HarnessError(f"promtool test rules {f.name} timed out after 600 s") from exc
        return proc.returncode, proc.stdout + proc.stderr

    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(one, files))
