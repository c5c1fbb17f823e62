"""`state.json`: the contract between the lab's supervisor (its only writer) and everything that
reads it - `reliability lab status|down`, the fault functions, Chaos Toolkit probes, `reliability
recover`, the game-day harness. One pydantic model; readers never guess at keys.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from reliability.files import write_json_atomic

Phase = Literal["starting", "ready", "stopping", "down", "teardown_failed"]
# drained: replaced and out of the gateway, kept cordoned (its GPU awaiting repair) until healed.
NodeStatus = Literal["loading", "ready", "unhealthy", "cordoned", "drained", "lost", "replaced", "stopped"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProcessRef(_Model):
    """A process the lab started, recognisable again from another process (never kill a recycled
    pid: `marker` must appear in its command line)."""

    pid: int | None = None
    marker: str = ""


class ComponentState(_Model):
    name: str  # unique: "node/us-east-1", "region-gateway/us-east", "global-gateway", "store/eu-west"
    kind: Literal["node", "region-gateway", "global-gateway", "store", "proxy"]
    region: str | None = None
    host: str = "127.0.0.1"
    port: int = 0
    url: str = ""  # how the supervisor reaches it (possibly through the fabric)
    pid: int | None = None
    marker: str = ""
    extra_ports: dict[str, int] = Field(default_factory=dict)  # e.g. {"agent": 9400, "metrics": 8405}


class NodeState(_Model):
    """A GPU node as the controller sees it (what kube-state-metrics would report)."""

    name: str
    region: str
    status: NodeStatus
    ready: bool = False
    unschedulable: bool = False
    standby: bool = False  # a warm standby: model loaded, out of rotation, not serving capacity
    conditions: dict[str, bool] = Field(default_factory=dict)  # e.g. {"Ready": True, "GPUUnhealthy": False}
    model_version: str = ""
    replaces: str | None = None  # the lost node this one replaces
    api_url: str = ""
    agent_url: str = ""


class StoreState(_Model):
    primary: str
    url: str  # through the ingress: always reaches the current primary


class LabState(_Model):
    lab_id: str
    workdir: str
    phase: Phase
    error: str | None = None
    isolation: Literal["netns", "proxy"]
    fabric: dict[str, Any] = Field(default_factory=dict)  # the isolation fabric's own state
    supervisor: ProcessRef
    prometheus: ProcessRef = Field(default_factory=ProcessRef)
    started_at: float
    ready_at: float | None = None
    endpoint: str = ""  # the ingress: OpenAI API, OIP v2 and /store
    admin_url: str = ""  # the supervisor's fault API
    prometheus_url: str | None = None
    golden_path: str | None = None
    served_model_name: str = ""
    model_version: str = ""
    store: StoreState | None = None
    regions: list[str] = Field(default_factory=list)
    partitioned: list[str] = Field(default_factory=list)
    faults: dict[str, dict[str, Any]] = Field(default_factory=dict)
    components: list[ComponentState] = Field(default_factory=list)
    nodes: list[NodeState] = Field(default_factory=list)
    events_path: str = ""

    def component(self, name: str) -> ComponentState | None:
        return next((c for c in self.components if c.name == name), None)


def read_state(state_file: Path | str) -> LabState | None:
    """The lab's state, or None when there is no (readable, valid) state file."""
    try:
        return LabState.model_validate(json.loads(Path(state_file).read_text(encoding="utf-8")))
    except (OSError, ValueError, ValidationError):
        return None


def write_state(state_file: Path | str, state: LabState) -> None:
    write_json_atomic(Path(state_file), state.model_dump(mode="json"))
