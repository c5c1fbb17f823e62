"""Signals profiles: the PromQL the harness reads, so it never hard-codes a platform's metric names.

A profile maps what the harness needs (alerts, the SLO recording rules, ready GPU nodes, requests by
region, TTFT/ITL, Xid, node conditions, gateway state, store replication) to PromQL over one
platform's metric names. The default profile, `vllm-dcgm-ksm`, is written on the names real
platforms export (vLLM, NVIDIA DCGM exporter, kube-state-metrics, HAProxy), which the lab twin
exports too - so the same profile reads the lab and a real cluster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from reliability.errors import InputError
from reliability.files import load_yaml, parse_model

PROFILES_DIR = Path(__file__).resolve().parent / "profiles"
DEFAULT_PROFILE = "vllm-dcgm-ksm"
# Series the analysis reads by name; a profile must define each.
REQUIRED = ("alerts", "sli_error_ratio", "slo_error_events", "slo_total_events", "ready_nodes")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SeriesSpec(_Strict):
    query: str = Field(min_length=1, description="PromQL, pulled as a range query over the run.")
    step: float = Field(1.0, gt=0, le=60, description="Seconds between samples.")
    description: str = ""


class SignalsProfile(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    description: str = ""
    series: dict[str, SeriesSpec]

    @model_validator(mode="after")
    def _required(self) -> SignalsProfile:
        missing = [n for n in REQUIRED if n not in self.series]
        if missing:
            raise ValueError(f"series missing: {', '.join(missing)} (the analysis reads them)")
        return self


def load_profile(name_or_path: str | Path | None = None) -> SignalsProfile:
    """A shipped profile by name (default `vllm-dcgm-ksm`) or a profile file."""
    ref = str(name_or_path or DEFAULT_PROFILE)
    path = Path(ref) if ref.endswith((".yaml", ".yml")) else PROFILES_DIR / f"{ref}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in PROFILES_DIR.glob("*.yaml")))
        raise InputError("signals", f"no signals profile {ref!r} (shipped: {known})")
    return parse_model(SignalsProfile, load_yaml(path), path)


def profile_json_schema() -> dict[str, Any]:
    return SignalsProfile.model_json_schema()
