"""The seams to the other areas' APIs (load generator, RPO canary, reports), in one place.

Imports are local: Locust runs in its own process behind `reliability.load`, and pandas/plotly
are only loaded when a run gets that far.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from reliability.analysis.sli import SliSpec
from reliability.files import write_atomic
from reliability.gameday.target import TargetInfo
from reliability.report.model import RunResult
from reliability.rundir import RunDir
from reliability.scenario import Scenario, resolve
from reliability.slo.model import SLO


def client_specs(slos: list[SLO]) -> list[SliSpec]:
    """The client-side SLIs of the scenario's SLOs (SLOs with no client counterpart are judged on
    Prometheus alone)."""
    from reliability.report.analyze import client_spec

    return [spec for spec in (client_spec(s) for s in slos) if spec is not None]


def prometheus_lag_s(slos: list[SLO]) -> float:
    """How far Prometheus' view of the SLIs trails the client's: their longest shortest window."""
    from reliability.slo.recording import base_window

    return float(max((base_window(s) for s in slos), default=5))


def goodput_targets_ms(sc: Scenario, slos: list[SLO]) -> tuple[float | None, float | None]:
    """(TTFT, TPOT) targets of goodput: the scenario's, else its SLOs' thresholds."""
    specs = client_specs(slos)
    ttft = sc.load.goodput.ttft * 1000 if sc.load.goodput.ttft else None
    tpot = sc.load.goodput.tpot * 1000 if sc.load.goodput.tpot else None
    if ttft is None:
        ttft = next((s.threshold_ms for s in specs if s.kind == "ttft"), None)
    if tpot is None:
        tpot = next((s.threshold_ms for s in specs if s.kind in ("tpot", "itl")), None)
    return ttft, tpot


@contextmanager
def start_load(
    sc: Scenario, scenario_path: Path, info: TargetInfo, rd: RunDir, duration_s: float, slos: list[SLO]
) -> Iterator[Any]:
    """Locust (own process) plus the RPO canary writer, both stopped on exit whatever happens;
    yields the `LoadRun`."""
    from reliability.load import LoadRun

    locustfile = str(resolve(scenario_path, sc.load.locustfile)) if sc.load.locustfile else None
    ttft, tpot = goodput_targets_ms(sc, slos)
    with ExitStack() as stack:
        load = LoadRun(
            target_url=info.endpoint,
            users=sc.load.users,
            spawn_rate=sc.load.spawn_rate,
            shape=sc.load.shape,
            duration_s=duration_s,
            out_dir=rd.root,
            locustfile=locustfile,
            workers=sc.load.workers,
            user=sc.load.user,
            model=sc.load.model,
            prompt_tokens=sc.load.prompt_tokens.model_dump(),
            output_tokens=sc.load.output_tokens.model_dump(),
            golden_path=str(info.golden_path) if info.golden_path else None,
            judge_share=sc.load.judge_share,
            ttft_target_ms=ttft,
            tpot_target_ms=tpot,
            request_timeout_s=sc.load.request_timeout,
            user_rps=sc.load.rps_per_user,
            master_bind_host=sc.load.master_bind_host,
            master_bind_port=sc.load.master_bind_port,
            expect_workers=sc.load.expect_workers,
        )
        stack.enter_context(load)
        stack.enter_context(_canary(info, rd))
        yield load


def _canary(info: TargetInfo, rd: RunDir) -> Any:
    from reliability.load import CanaryWriter

    return CanaryWriter(state_file=info.state_file, out_path=rd.canary_writes)


def build_reports(run_dir: Path) -> RunResult:
    from reliability.report import build_reports as build

    return build(Path(run_dir))


def write_error_result(run_dir: Path, scenario: str, error: str, interrupted: str | None = None) -> None:
    """A run the harness could not finish: result.json says so, junit.xml carries an <error>."""
    from reliability.report.junit import junit_xml

    result = RunResult(scenario=scenario, status="error", error=error, interrupted=interrupted)
    write_atomic(Path(run_dir) / "result.json", result.model_dump_json(indent=2) + "\n")
    write_atomic(Path(run_dir) / "junit.xml", junit_xml(result))
