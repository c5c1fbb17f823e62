"""The node's spec (one argv JSON object, docs/twin.md 1): one pydantic model."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from reliability.errors import InputError
from reliability.files import parse_model
from reliability.lab.llm.engine import EngineConfig


class GpuSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    uuid: str = Field(pattern=r"^GPU-[0-9a-f-]+$")
    model_name: str
    index: int = Field(ge=0)
    pci_bus_id: str
    fb_total_mib: int = Field(gt=0)
    driver_version: str = "570.172.08"
    memory_utilization: float = Field(
        0.92, gt=0, le=1, description="Share of the framebuffer vLLM takes at start (gpu_memory_utilization)."
    )


class NodeSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9._-]+$")
    region: str
    host: str = "127.0.0.1"
    api_port: int = Field(ge=0, le=65535)
    agent_port: int = Field(ge=0, le=65535)
    checkpoint: Path
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    predictor_checkpoint: Path
    predictor_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    served_model_name: str
    predictor_name: str
    model_version: str
    engine: EngineConfig
    gpu: GpuSpec
    load_s: float = Field(ge=0, le=3600, description="Weights to GPU: the api port opens after this.")
    warmup_s: float = Field(ge=0, le=3600, description="After the port opens, before /health turns 200.")
    # Not in docs/twin.md's list; defaults keep the contract's spec valid.
    hostname: str | None = Field(None, description="DCGM's Hostname label (default: id).")
    model_root: str | None = Field(None, description="/v1/models root (default: served_model_name).")
    predictor_max_batch: int = Field(64, ge=1, le=10_000)


def spec_from_argv(argv: list[str] | None = None) -> NodeSpec:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise InputError("argv", "usage: python -m reliability.lab.llm.node SPEC_JSON")
    try:
        data = json.loads(args[0])
    except ValueError as exc:
        raise InputError("spec", f"not JSON: {exc}") from exc
    return parse_model(NodeSpec, data, "spec")
