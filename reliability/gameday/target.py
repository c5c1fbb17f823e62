"""The system under test for a game day: a lab the run starts, or one already running.

Only the lab exists as a target today; Kubernetes comes later behind the same small surface
(state file for the fault providers, Prometheus URL, service endpoint, ground-truth events).
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from reliability.errors import HarnessError, InputError
from reliability.scenario import Scenario, resolve


@dataclass(frozen=True)
class TargetInfo:
    state_file: Path
    prometheus_url: str
    endpoint: str
    events_path: Path
    started_by_us: bool
    golden_path: Path | None = None  # known prompts and answers (quality judged by the load generator)


class LabTarget(AbstractContextManager["LabTarget"]):
    def __init__(self, scenario: Scenario, scenario_path: Path, workdir: Path) -> None:
        self.scenario = scenario
        self.scenario_path = scenario_path
        self.workdir = workdir
        self._lab: Any = None
        self.info: TargetInfo | None = None

    def slo_paths(self) -> list[Path]:
        return [resolve(self.scenario_path, s) for s in self.scenario.slos]

    def __enter__(self) -> LabTarget:
        spec = self.scenario.target
        if spec.state_file:
            self.info = self._attach(resolve(self.scenario_path, spec.state_file))
            return self
        try:
            from reliability.lab import Lab, load_lab_config
        except ImportError as exc:
            raise HarnessError(f"the lab is not available in this installation: {exc}") from exc

        config_path = resolve(self.scenario_path, spec.config) if spec.config else None
        config = load_lab_config(config_path)
        self._lab = Lab(config, self.workdir, isolation=spec.isolation, slo_files=self.slo_paths())
        try:
            self._lab.start()
        except BaseException:
            self._lab.stop()
            raise
        self.info = TargetInfo(
            state_file=Path(self._lab.state_file),
            prometheus_url=str(self._lab.prometheus_url),
            endpoint=str(self._lab.endpoint),
            events_path=Path(self._lab.events_path),
            started_by_us=True,
            golden_path=_golden(Path(self._lab.workdir)),
        )
        return self

    def _attach(self, state_file: Path) -> TargetInfo:
        try:
            state = json.loads(state_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(
                f"{self.scenario_path}: target.state_file", f"cannot read lab state: {exc}"
            ) from exc
        prom = state.get("prometheus_url") or (state.get("prometheus") or {}).get("url")
        endpoint = state.get("endpoint")
        if not prom or not endpoint:
            raise HarnessError(f"lab state {state_file} has no prometheus_url/endpoint: is the lab up?")
        return TargetInfo(
            state_file=state_file,
            prometheus_url=str(prom),
            endpoint=str(endpoint),
            events_path=state_file.parent / "events.jsonl",
            started_by_us=False,
            golden_path=_golden(state_file.parent),
        )

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        lab, self._lab = self._lab, None
        if lab is not None:
            lab.stop()


def _golden(workdir: Path) -> Path | None:
    path = workdir / "golden.jsonl"
    return path if path.is_file() else None
