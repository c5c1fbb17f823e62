"""The system under test for a game day: a lab the run starts, or one already running.

Only the lab exists as a target today; Kubernetes comes later behind the same small surface
(state file for the fault providers, Prometheus URL, service endpoint, ground-truth events).
"""

from __future__ import annotations

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
            golden_path=self._lab.golden_path,
        )
        return self

    def _attach(self, state_file: Path) -> TargetInfo:
        from reliability.lab.state import read_state

        state = read_state(state_file)
        if state is None:
            raise InputError(
                f"{self.scenario_path}: target.state_file", f"no readable lab state at {state_file}"
            )
        if state.phase != "ready" or not state.prometheus_url or not state.endpoint:
            raise HarnessError(f"the lab of {state_file} is {state.phase}, not ready: is it up?")
        return TargetInfo(
            state_file=state_file,
            prometheus_url=state.prometheus_url,
            endpoint=state.endpoint,
            events_path=Path(state.events_path) if state.events_path else state_file.parent / "events.jsonl",
            started_by_us=False,
            golden_path=Path(state.golden_path) if state.golden_path else None,
        )

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        lab, self._lab = self._lab, None
        if lab is not None:
            lab.stop()
