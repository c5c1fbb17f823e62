"""The lab's topology and timings (`reliability lab up --config FILE`): one pydantic model.

The lab is a twin of an LLM-serving platform: GPU nodes running a vLLM-like engine with a DCGM-like
exporter, HAProxy region gateways and a global ingress, a controller standing for the cluster's
control plane and GPU health tooling, a replicated store and a known-answer prober. Every timing is
configurable because a game day's numbers (time to detect, recovery time) are made of them; the
defaults are compressed (seconds where a real cluster takes minutes) so a game day fits in CI.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from reliability.files import load_yaml, parse_model
from reliability.lab.llm.engine import EngineConfig

# The lab runs on one machine: bound what a config can ask for (1,000 regions of 16 nodes fit
# the schema's per-field limits but not a laptop).
MAX_REGIONS = 8
MAX_NODES = 32


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegionConfig(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")
    nodes: int = Field(3, ge=1, le=16, description="GPU nodes serving (one OS process each).")
    standby: int = Field(
        0, ge=0, le=8, description="Warm standby GPU nodes: model loaded, out of rotation until one is lost."
    )


class ModelConfig(_Strict):
    """The LLM every node serves. The lab's model is a small deterministic character model; the
    name is what clients ask for, so load and scenarios work unchanged against a real fleet."""

    served_name: str = Field("meta-llama/Llama-3.1-8B-Instruct", min_length=1, max_length=200)
    version: str = Field("v1", pattern=r"^[A-Za-z0-9._-]+$")
    seed: int = 11
    load_s: float = Field(
        1.5, ge=0, le=600, description="Weights to GPU before the API port opens (minutes on a real node)."
    )
    warmup_s: float = Field(0.5, ge=0, le=600, description="After the port opens, before /health is 200.")


class PredictorConfig(_Strict):
    """The predictive model every node also serves on KServe's Open Inference Protocol v2."""

    name: str = Field("fraud-detector", pattern=r"^[A-Za-z0-9._-]+$")
    features: int = Field(4, ge=1, le=4096)
    hidden: int = Field(64, ge=1, le=4096)
    outputs: int = Field(4, ge=1, le=4096)
    seed: int = 7
    version: str = Field("v1", pattern=r"^[A-Za-z0-9._-]+$")
    warmup_s: float = Field(0.0, ge=0, le=600)


class GpuConfig(_Strict):
    model_name: str = "NVIDIA H100 80GB HBM3"
    fb_total_mib: int = Field(81559, gt=0, le=1_000_000)


class RolloutConfig(_Strict):
    """Canary-based automatic rollback of a model version (Argo Rollouts / Flagger style): the new
    version goes to one node, the controller asks it known prompts, and rolls back on failure."""

    analysis_s: float = Field(6.0, gt=0, le=3600, description="How long the canary node is analysed.")
    probe_interval_s: float = Field(0.2, gt=0, le=60)
    max_failures: int = Field(3, ge=1, le=1000, description="Wrong or failed answers that abort the rollout.")


class ControllerConfig(_Strict):
    heartbeat_interval_s: float = Field(0.25, gt=0, le=60, description="How often node agents are polled.")
    missed_heartbeats: int = Field(4, ge=1, le=100, description="Misses before a node is NotReady (lost).")
    heartbeat_timeout_s: float = Field(
        1.0,
        gt=0,
        le=60,
        description="How long an agent may take to answer before the beat counts as missed: a dead "
        "node refuses at once, a busy one (the lab shares its CPUs with the load) answers late.",
    )
    fatal_xids: list[int] = Field(
        default_factory=lambda: [48, 64, 74, 79, 95],
        description="Xids on which GPU health tooling marks the GPU unhealthy, cordons and replaces "
        "the node.",
    )
    provisioning_delay_s: float = Field(
        3.0, ge=0, le=600, description="From the decision to replace a node to the new node booting."
    )
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)


class HealthCheckConfig(_Strict):
    interval_s: float = Field(0.25, gt=0, le=60)
    fall: int = Field(2, ge=1, le=100, description="Failed checks before a server is taken out.")
    rise: int = Field(2, ge=1, le=100, description="Passed checks before it takes traffic again.")


class RegionGatewayConfig(_Strict):
    check: HealthCheckConfig = Field(default_factory=HealthCheckConfig)
    error_limit: int = Field(
        3, ge=1, le=1000, description="Consecutive failed requests that eject a node (observe layer7)."
    )
    retries: int = Field(2, ge=0, le=10, description="Retries of a request that never reached a node.")
    health_checks: bool = Field(
        True,
        description="False reproduces a gateway that keeps routing to a dead backend (a misconfiguration).",
    )


class GlobalGatewayConfig(_Strict):
    routing: Literal["active-active", "active-passive"] = "active-active"
    primary_region: str | None = Field(
        None, description="Active-passive: the active region (default: first)."
    )
    check: HealthCheckConfig = Field(default_factory=HealthCheckConfig)


class StoreConfig(_Strict):
    primary_region: str | None = Field(None, description="Region of the store's primary (default: first).")
    replication_lag_s: float = Field(
        1.0, ge=0, le=600, description="Writes reach the secondaries this long after the primary acked them."
    )
    poll_interval_s: float = Field(0.1, gt=0, le=60)
    failover_after_s: float = Field(
        1.5, gt=0, le=600, description="Primary unreachable this long -> the best secondary is promoted."
    )


class CanaryConfig(_Strict):
    rate_per_region: float = Field(5.0, gt=0, le=100, description="Known prompts per second per region.")


class LabConfig(_Strict):
    regions: list[RegionConfig] = Field(
        default_factory=lambda: [RegionConfig(name="us-east"), RegionConfig(name="eu-west")],
        min_length=1,
        max_length=MAX_REGIONS,
    )
    model: ModelConfig = Field(default_factory=ModelConfig)
    predictor: PredictorConfig = Field(default_factory=PredictorConfig)
    engine: EngineConfig = Field(
        default_factory=EngineConfig.lab,
        description="The continuous-batching engine; default: the 2-core lab profile (EngineConfig.lab).",
    )
    gpu: GpuConfig = Field(default_factory=GpuConfig)
    controller: ControllerConfig = Field(default_factory=ControllerConfig)
    region_gateway: RegionGatewayConfig = Field(default_factory=RegionGatewayConfig)
    global_gateway: GlobalGatewayConfig = Field(default_factory=GlobalGatewayConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    canary: CanaryConfig = Field(default_factory=CanaryConfig)

    @field_validator("regions")
    @classmethod
    def _bounded(cls, regions: list[RegionConfig]) -> list[RegionConfig]:
        # One OS process per GPU node: 1,000 regions of 16 nodes must be an input error, not a fork bomb.
        total = sum(r.nodes + r.standby for r in regions)
        if total > MAX_NODES:
            raise ValueError(
                f"{total} GPU nodes in total: the lab runs one process per node, at most {MAX_NODES}"
            )
        return regions

    @model_validator(mode="after")
    def _check_regions(self) -> LabConfig:
        names = [r.name for r in self.regions]
        if len(set(names)) != len(names):
            raise ValueError(f"region names must be unique, got {names}")
        for field, region in (
            ("global_gateway.primary_region", self.global_gateway.primary_region),
            ("store.primary_region", self.store.primary_region),
        ):
            if region is not None and region not in names:
                raise ValueError(f"{field}: unknown region {region!r}; regions are {', '.join(names)}")
        return self

    def region_names(self) -> list[str]:
        return [r.name for r in self.regions]

    def region(self, name: str) -> RegionConfig:
        return next(r for r in self.regions if r.name == name)

    def store_primary(self) -> str:
        return self.store.primary_region or self.regions[0].name

    def active_region(self) -> str:
        return self.global_gateway.primary_region or self.regions[0].name


def load_lab_config(path: Path | str | None) -> LabConfig:
    """The default topology for None; otherwise the YAML file, with one-line errors naming the field."""
    if path is None:
        return LabConfig()
    data = load_yaml(Path(path)) or {}
    return parse_model(LabConfig, data, Path(path))


def lab_json_schema() -> dict[str, Any]:
    return LabConfig.model_json_schema()


def dump_config(config: LabConfig) -> str:
    return json.dumps(config.model_dump(mode="json"))
