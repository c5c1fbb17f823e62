"""The lab's topology and timings (`reliability lab up --config FILE`): one pydantic model.

Every timing is configurable because a game day's numbers (time to detect, recovery time) are made
of them; the defaults give a lab that starts in a few seconds and recovers in well under a minute.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from reliability.files import load_yaml, parse_model


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegionConfig(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")
    nodes: int = Field(3, ge=1, le=16, description="GPU nodes (one OS process each).")


class ModelConfig(_Strict):
    """The small MLP every node serves; weights are seeded, written once as a checksummed checkpoint."""

    features: int = Field(4, ge=1, le=4096)
    hidden: int = Field(64, ge=1, le=4096)
    outputs: int = Field(4, ge=1, le=4096)
    seed: int = 7
    version: str = Field("v1", pattern=r"^[A-Za-z0-9._-]+$")
    warmup_s: float = Field(
        1.0, ge=0, le=600, description="Stands in for loading large weights onto the GPU at start."
    )


class NodeConfig(_Strict):
    xid_die_after_s: float = Field(
        1.5, ge=0, le=60, description="Xid 79 mode: how long the node reports the lost GPU before it dies."
    )
    max_batch: int = Field(64, ge=1, le=10_000, description="Largest accepted `inputs` batch.")


class ControllerConfig(_Strict):
    heartbeat_interval_s: float = Field(0.5, gt=0, le=60)
    missed_heartbeats: int = Field(3, ge=1, le=100, description="Misses before a node is declared lost.")
    provisioning_delay_s: float = Field(
        3.0, ge=0, le=600, description="From detection to the replacement process starting."
    )


class RegionGatewayConfig(_Strict):
    health_interval_s: float = Field(0.25, gt=0, le=60)
    request_timeout_s: float = Field(1.0, gt=0, le=60)
    retry: bool = Field(True, description="Retry a failed prediction once on another node (idempotent).")
    breaker_failures: int = Field(3, ge=1, le=1000, description="Consecutive failures that open a breaker.")
    breaker_cooldown_s: float = Field(2.0, gt=0, le=600)
    max_ejected_ratio: float = Field(
        0.5, ge=0, le=1, description="Share of a region's nodes breakers may eject at once (as Envoy)."
    )


class GlobalGatewayConfig(_Strict):
    routing: Literal["active-active", "active-passive"] = "active-active"
    primary_region: str | None = Field(
        None, description="Active-passive: the active region (default: first)."
    )
    health_interval_s: float = Field(0.25, gt=0, le=60)
    unhealthy_after: int = Field(
        2, ge=1, le=100, description="Failed checks before a region is failed away from."
    )
    request_timeout_s: float = Field(1.0, gt=0, le=60)


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
    rate_per_region: float = Field(10.0, gt=0, le=1000, description="Known-answer predictions per second.")


# One OS process per GPU node (plus a gateway per region): a topology beyond this would not start on
# one machine, and 1,000 regions x 16 nodes must be an input error, not 16,000 processes.
MAX_REGIONS = 16
MAX_TOTAL_NODES = 64


class LabConfig(_Strict):
    regions: list[RegionConfig] = Field(
        default_factory=lambda: [RegionConfig(name="us-east"), RegionConfig(name="eu-west")],
        min_length=1,
        max_length=MAX_REGIONS,
    )
    model: ModelConfig = Field(default_factory=ModelConfig)
    node: NodeConfig = Field(default_factory=NodeConfig)
    controller: ControllerConfig = Field(default_factory=ControllerConfig)
    region_gateway: RegionGatewayConfig = Field(default_factory=RegionGatewayConfig)
    global_gateway: GlobalGatewayConfig = Field(default_factory=GlobalGatewayConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    canary: CanaryConfig = Field(default_factory=CanaryConfig)

    @field_validator("regions")
    @classmethod
    def _bounded(cls, regions: list[RegionConfig]) -> list[RegionConfig]:
        total = sum(r.nodes for r in regions)
        if total > MAX_TOTAL_NODES:
            raise ValueError(
                f"{total} GPU nodes in total; the lab runs one process per node: at most {MAX_TOTAL_NODES}"
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

    def node_ids(self, region: str) -> list[str]:
        count = next(r.nodes for r in self.regions if r.name == region)
        return [f"{region}-{i}" for i in range(1, count + 1)]

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
