"""The game-day scenario file format (`scenarios/*.yaml`): one pydantic model, its JSON Schema.

Durations accept seconds as a number or a string with a unit ("90s", "2m", "1h"), because
scenario authors think in minutes while the harness works in seconds.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from reliability.errors import InputError
from reliability.files import load_yaml, parse_model

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
# No game-day duration is longer; past it a number is a typo (or `.inf`), not a plan.
MAX_DURATION_S = 365 * 86400.0
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")


def parse_duration(value: Any) -> Any:
    """'90s' / '2m' / 1.5 -> seconds as float; anything else is left for pydantic to reject."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        m = _DURATION.match(value)
        if m is None:
            shown = repr(value) if len(repr(value)) <= 24 else repr(value)[:20] + "...'"
            raise ValueError(f"invalid duration {shown} (use seconds or e.g. '30s', '2m', '1h')")
        seconds = float(m.group(1)) * _UNITS[m.group(2) or "s"]
    else:
        return value
    if math.isnan(seconds):
        raise ValueError("NaN is not a duration")
    if math.isinf(seconds) or seconds > MAX_DURATION_S:
        shown = repr(value) if len(repr(value)) <= 24 else repr(value)[:20] + "...'"
        raise ValueError(f"duration {shown} is too long (at most {MAX_DURATION_S:.0f} s, a year)")
    return seconds


# Every duration is finite and bounded: a phase of `.inf` would hold a lab (and its faults) forever.
MAX_SECONDS = 7 * 86400.0
Seconds = Annotated[
    float,
    Field(ge=0, le=MAX_SECONDS, allow_inf_nan=False),
    BeforeValidator(parse_duration, json_schema_input_type=float | str),
]
PositiveSeconds = Annotated[
    float,
    Field(gt=0, le=MAX_SECONDS, allow_inf_nan=False),
    BeforeValidator(parse_duration, json_schema_input_type=float | str),
]
Share = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LabTarget(_Strict):
    """The embedded lab: started for the run, or an already running one given by its state file."""

    kind: Literal["lab"] = "lab"
    config: str | None = Field(None, description="Lab config file (None: the default topology).")
    state_file: str | None = Field(
        None, description="Use an already running lab (e.g. .lab/state.json) instead of starting one."
    )
    isolation: Literal["auto", "netns", "proxy"] = "auto"


class LengthDistribution(_Strict):
    """Token counts drawn per request (prompt length, or the `max_tokens` asked for)."""

    dist: Literal["fixed", "uniform", "lognormal"] = "lognormal"
    mean: float = Field(gt=0, le=1_000_000, allow_inf_nan=False)
    sigma: float = Field(0.5, ge=0, le=5, allow_inf_nan=False, description="lognormal: sigma of log")
    min: int = Field(1, ge=1, le=1_000_000)
    max: int = Field(4096, ge=1, le=1_000_000)

    @model_validator(mode="after")
    def _bounds(self) -> LengthDistribution:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        return self


class GoodputTargets(_Strict):
    """Per-request latency targets a request must meet to count as goodput (DistServe's definition).
    Unset: taken from the scenario SLOs' TTFT and TPOT thresholds."""

    ttft: PositiveSeconds | None = None
    tpot: PositiveSeconds | None = None


class LoadSpec(_Strict):
    user: Literal["openai-chat", "openai-completions", "oip-predict", "locustfile"] = Field(
        "openai-chat",
        description="Built-in user (OpenAI chat/completions streaming, KServe OIP v2) or your locustfile.",
    )
    locustfile: str | None = None
    model: str | None = Field(None, description="Model name to ask for (default: the first of /v1/models).")
    users: int = Field(10, ge=1, le=10000)
    spawn_rate: float = Field(10.0, gt=0, le=10000, allow_inf_nan=False)
    shape: Literal["steady", "ramp", "spike"] = "steady"
    workers: int = Field(0, ge=0, le=64, description="Locust worker processes (0: local runner).")
    rps_per_user: float = Field(
        0.0,
        ge=0,
        le=10000,
        allow_inf_nan=False,
        description="Requests per second per user; 0 = closed loop (next request when the last ended).",
    )
    prompt_tokens: LengthDistribution = Field(
        default_factory=lambda: LengthDistribution(mean=128, sigma=0.5, min=8, max=1024)
    )
    output_tokens: LengthDistribution = Field(
        default_factory=lambda: LengthDistribution(mean=48, sigma=0.5, min=4, max=256)
    )
    judge_share: Share = Field(
        0.1, description="Share of requests sent as known prompts whose answers are checked (quality SLI)."
    )
    goodput: GoodputTargets = Field(default_factory=GoodputTargets)
    request_timeout: PositiveSeconds = Field(30.0, description="A request slower than this fails.")
    utilisation: str = Field(
        "", description="What share of the fleet's capacity this load uses, and how that was worked out."
    )

    @model_validator(mode="after")
    def _locustfile_given(self) -> LoadSpec:
        if self.user == "locustfile" and not self.locustfile:
            raise ValueError("user 'locustfile' needs 'locustfile' set")
        return self


class ExperimentSpec(_Strict):
    file: str = Field(description="Chaos Toolkit experiment file (experiments/*.yaml).")
    configuration: dict[str, Any] = Field(
        default_factory=dict, description="Overrides of the experiment's configuration keys."
    )


class Phases(_Strict):
    baseline: PositiveSeconds = Field(description="Load without faults before injection.")
    fault_hold: PositiveSeconds = Field(description="How long the fault stays injected.")
    recovery_max: PositiveSeconds = Field(description="Longest wait for recovery after rollback.")
    recovered_hold: Seconds = Field(
        5.0, description="How long the SLI must stay within objective to count as recovered."
    )


class AnyOf(_Strict):
    any_of: list[str] = Field(min_length=2, description="At least one of these alerts must fire.")


class Objectives(_Strict):
    rto_max: Seconds | None = Field(
        None, description="Injection -> every SLI of the scenario back within its objective (held)."
    )
    capacity_rto_max: Seconds | None = Field(
        None, description="Injection -> ready GPU nodes back at their pre-fault count (held)."
    )
    rpo_max: Seconds | None = Field(None, description="Acknowledged writes lost in the store's failover.")
    ttd_max: Seconds | None = Field(None, description="Injection -> the first expected alert that pages.")
    ttd_ticket_max: Seconds | None = Field(
        None, description="Injection -> the first expected alert that opens a ticket."
    )
    expected_alerts: list[str | AnyOf] = Field(
        default_factory=list, description="Each must fire after the injection (or one of an any_of group)."
    )
    max_budget_spent: Share | dict[str, Share] | None = Field(
        None,
        description="Share of each SLO's period budget the game day may spend (one number for every SLO, "
        "or per SLO name).",
    )
    runbooks: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _ttd_needs_alerts(self) -> Objectives:
        if (self.ttd_max is not None or self.ttd_ticket_max is not None) and not self.expected_alerts:
            raise ValueError("ttd_max needs expected_alerts (which alerts count as detection)")
        return self

    def all_of(self) -> list[str]:
        return [a for a in self.expected_alerts if isinstance(a, str)]

    def any_of(self) -> list[list[str]]:
        return [a.any_of for a in self.expected_alerts if isinstance(a, AnyOf)]

    def alert_names(self) -> list[str]:
        return [*self.all_of(), *(n for group in self.any_of() for n in group)]

    def budget_limits(self, slo_names: list[str]) -> dict[str, float]:
        if self.max_budget_spent is None:
            return {}
        if isinstance(self.max_budget_spent, dict):
            return dict(self.max_budget_spent)
        return dict.fromkeys(slo_names, float(self.max_budget_spent))


class Guardrail(_Strict):
    """A stop condition: `query` above `above` for `for_seconds` aborts the run and rolls back."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    query: str = Field(min_length=1, description="PromQL returning one number (first sample is used).")
    above: float = Field(allow_inf_nan=False)
    for_seconds: Seconds = Field(0.0, alias="for")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Scenario(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    description: str = ""
    target: LabTarget = Field(default_factory=LabTarget)
    slos: list[str] = Field(min_length=1, description="SLO files whose rules Prometheus evaluates.")
    load: LoadSpec = Field(default_factory=LoadSpec)
    experiment: ExperimentSpec
    phases: Phases
    objectives: Objectives = Field(default_factory=Objectives)
    guardrails: list[Guardrail] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_guardrails(self) -> Scenario:
        names = [g.name for g in self.guardrails]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"guardrail names must be unique: {', '.join(dupes)}")
        return self


def scenario_json_schema() -> dict[str, Any]:
    return Scenario.model_json_schema(by_alias=True)


def resolve(path: Path, rel: str) -> Path:
    """A path written in a scenario is relative to the scenario file's directory (as in
    docker-compose), so a scenario means the same thing from any working directory."""
    p = Path(rel)
    return p if p.is_absolute() else (Path(path).parent / p).resolve()


def load_scenario(path: Path) -> Scenario:
    """Parse and check a scenario: every referenced file must exist (InputError otherwise)."""
    path = Path(path)
    scenario = parse_model(Scenario, load_yaml(path), path)
    refs: list[tuple[str, str]] = [(f"slos[{i}]", s) for i, s in enumerate(scenario.slos)]
    refs.append(("experiment.file", scenario.experiment.file))
    if scenario.load.locustfile:
        refs.append(("load.locustfile", scenario.load.locustfile))
    if scenario.target.config:
        refs.append(("target.config", scenario.target.config))
    for field, rel in refs:
        shown = rel if len(rel) <= 80 else rel[:77] + "..."
        try:
            found = resolve(path, rel).is_file()
        except (OSError, ValueError) as exc:  # a name too long, a NUL byte
            reason = exc.strerror if isinstance(exc, OSError) else str(exc)
            raise InputError(f"{path}: {field}", f"not a usable path ({reason}): {shown}") from exc
        if not found:
            raise InputError(f"{path}: {field}", f"file not found: {shown}")
    return scenario
