"""A lab shared by the game-day tests of a module, and scenario files written against it.

Scenarios here use `target.state_file`, so runs attach to this lab instead of starting their own:
faults left behind by an interrupted run stay visible to the test afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from reliability.lab import Lab, load_lab_config

REPO = Path(__file__).resolve().parents[2]
GAMEDAY_SLOS = REPO / "scenarios" / "slos" / "llm-gameday.yaml"
TWIN = REPO / "scenarios" / "labs" / "llm-twin.yaml"
LOAD = {"users": 12, "spawn_rate": 12, "request_timeout": "10s", "judge_share": 0.2,
        "output_tokens": {"dist": "lognormal", "mean": 32, "sigma": 0.4, "min": 4, "max": 96}}  # fmt: skip


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    config = load_lab_config(TWIN).model_copy(deep=True)
    config.controller.provisioning_delay_s = 1.0
    with Lab(config, tmp_path_factory.mktemp("gameday-lab"), slo_files=[GAMEDAY_SLOS]) as lab:
        yield lab


def write_scenario(
    directory: Path,
    lab: Lab,
    experiment: str,
    configuration: dict[str, Any],
    phases: dict[str, str],
    objectives: dict[str, Any],
    guardrails: list[dict[str, Any]] | None = None,
    name: str = "test-scenario",
    load: dict[str, Any] | None = None,
    slos: Path = GAMEDAY_SLOS,
) -> Path:
    scenario = {
        "name": name,
        "target": {"kind": "lab", "state_file": str(lab.state_file)},
        "slos": [str(slos)],
        "load": {**LOAD, **(load or {})},
        "experiment": {"file": str(REPO / "experiments" / experiment), "configuration": configuration},
        "phases": phases,
        "objectives": objectives,
        "guardrails": guardrails or [],
    }
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False))
    return path
