"""Planning the lab's processes: names, ports, and each component's spec, from the config and the
isolation fabric. No process is started here.

Naming: GPU nodes are `<region>-<n>`, numbered in order of creation (serving nodes first, then warm
standbys, then replacements), so a replacement never reuses a lost node's name - as a new
Kubernetes node would not.
"""

from __future__ import annotations

import hashlib
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reliability.lab.config import LabConfig
from reliability.lab.fabric import GLOBAL, NetnsIsolation, ProxyIsolation
from reliability.lab.haproxy import GlobalGatewaySpec, HealthCheck, RegionGatewaySpec, Server

UNIX_PATH_MAX = 100


@dataclass(frozen=True)
class Artifacts:
    """Checkpoints every node verifies before serving, and the known answers of the LLM."""

    checkpoint: Path
    sha256: str
    predictor_checkpoint: Path
    predictor_sha256: str
    golden: Path


def write_artifacts(config: LabConfig, workdir: Path) -> Artifacts:
    from reliability.lab.llm.tinylm import LmConfig, golden_cases, write_checkpoint, write_golden
    from reliability.lab.model import write_checkpoint as write_predictor

    models = workdir / "model"
    lm = LmConfig(seed=config.model.seed, version=config.model.version)
    sha = write_checkpoint(models / "llm.npz", lm)
    predictor_sha = write_predictor(models / "predictor.npz", config.predictor)
    golden = workdir / "golden.jsonl"
    write_golden(golden, golden_cases(models / "llm.npz", sha))
    return Artifacts(models / "llm.npz", sha, models / "predictor.npz", predictor_sha, golden)


def tmp_socket_dir(lab_id: str) -> Path:
    """Where a lab with a long work dir keeps its unix sockets (removed with the lab)."""
    return Path(tempfile.gettempdir()) / f"rl-{lab_id}"


@dataclass
class NodePlan:
    name: str
    region: str
    host: str
    api_port: int
    agent_port: int
    spec: dict[str, Any]
    standby: bool = False
    replaces: str | None = None

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}"

    @property
    def agent_url(self) -> str:
        return f"http://{self.host}:{self.agent_port}"


@dataclass
class StorePlan:
    region: str
    host: str
    port: int
    url: str  # as the supervisor reaches it
    spec: dict[str, Any]


@dataclass
class Planner:
    config: LabConfig
    fabric: NetnsIsolation | ProxyIsolation
    workdir: Path
    lab_id: str
    artifacts: Artifacts
    _count: dict[str, int] = field(default_factory=dict)

    def socket_dir(self) -> Path:
        """Unix sockets (HAProxy runtime API) need short paths: the work dir when it is short
        enough, else a directory of this lab's under /tmp."""
        if (
            len(str(self.workdir / "gateways" / "region-gateway-xxxxxxxxxxxxxxxxxxxxxxxx.sock"))
            <= UNIX_PATH_MAX
        ):
            return self.workdir / "gateways"
        return tmp_socket_dir(self.lab_id)

    def node(self, region: str, standby: bool = False, replaces: str | None = None) -> NodePlan:
        n = self._count.get(region, 0) + 1
        self._count[region] = n
        name = f"{region}-{n}"
        host = self.fabric.bind_host(region)
        api_port, agent_port = self.fabric.free_port(region), self.fabric.free_port(region)
        cfg = self.config
        spec = {
            "id": name,
            "region": region,
            "host": host,
            "api_port": api_port,
            "agent_port": agent_port,
            "checkpoint": str(self.artifacts.checkpoint),
            "sha256": self.artifacts.sha256,
            "predictor_checkpoint": str(self.artifacts.predictor_checkpoint),
            "predictor_sha256": self.artifacts.predictor_sha256,
            "served_model_name": cfg.model.served_name,
            "predictor_name": cfg.predictor.name,
            "model_version": cfg.model.version,
            "engine": cfg.engine.model_dump(mode="json"),
            "gpu": gpu_of(name, cfg.gpu.model_name, cfg.gpu.fb_total_mib),
            "load_s": cfg.model.load_s,
            "warmup_s": cfg.model.warmup_s,
        }
        return NodePlan(name, region, host, api_port, agent_port, spec, standby, replaces)

    def initial_nodes(self) -> list[NodePlan]:
        out = []
        for region in self.config.regions:
            out += [self.node(region.name) for _ in range(region.nodes)]
            out += [self.node(region.name, standby=True) for _ in range(region.standby)]
        return out

    def stores(self) -> dict[str, StorePlan]:
        cfg = self.config.store
        primary = self.config.store_primary()
        ports = {r: self.fabric.free_port(r) for r in self.config.region_names()}
        plans = {}
        for region, port in ports.items():
            host = self.fabric.bind_host(region)
            spec = {
                "region": region,
                "host": host,
                "port": port,
                "role": "primary" if region == primary else "secondary",
                "primary_url": ""
                if region == primary
                else f"http://{self.fabric.address(region, primary, ports[primary])}",
                "replication_lag_s": cfg.replication_lag_s,
                "poll_interval_s": cfg.poll_interval_s,
            }
            url = f"http://{self.fabric.address(GLOBAL, region, port)}"
            plans[region] = StorePlan(region, host, port, url, spec)
        # Every region -> region store path exists up front (a promoted primary is reached from the others).
        for src in ports:
            for dst, port in ports.items():
                self.fabric.address(src, dst, port)
        return plans

    def region_gateway(self, region: str, nodes: list[NodePlan]) -> RegionGatewaySpec:
        rg = self.config.region_gateway
        return RegionGatewaySpec(
            name=f"region-{region}",
            region=region,
            host=self.fabric.bind_host(region),
            port=self.fabric.free_port(region),
            metrics_port=self.fabric.free_port(region),
            stats_socket=self.socket_dir() / f"region-{region}.sock",
            nodes=[Server(name=n.name, host=n.host, port=n.api_port) for n in nodes if not n.standby],
            check=HealthCheck(interval_s=rg.check.interval_s, fall=rg.check.fall, rise=rg.check.rise),
            error_limit=rg.error_limit,
            retries=rg.retries,
            health_checks=rg.health_checks,
        )

    def global_gateway(
        self, regions: dict[str, RegionGatewaySpec], stores: dict[str, StorePlan]
    ) -> GlobalGatewaySpec:
        gg = self.config.global_gateway
        servers = []
        for region, spec in regions.items():
            host, port = self.fabric.address(GLOBAL, region, spec.port).rsplit(":", 1)
            _, check_port = self.fabric.address(GLOBAL, region, spec.metrics_port).rsplit(":", 1)
            servers.append(Server(name=region, host=host, port=int(port), check_port=int(check_port)))
        store_servers = []
        for region, store in stores.items():
            host, port = store.url.removeprefix("http://").rsplit(":", 1)
            store_servers.append(Server(name=region, host=host, port=int(port)))
        return GlobalGatewaySpec(
            name="global",
            host="127.0.0.1",
            port=self.fabric.free_port(None),
            metrics_port=self.fabric.free_port(None),
            stats_socket=self.socket_dir() / "global.sock",
            regions=servers,
            routing=gg.routing,
            primary_region=self.config.active_region(),
            region_check=HealthCheck(interval_s=gg.check.interval_s, fall=gg.check.fall, rise=gg.check.rise),
            stores=store_servers,
            store_primary=self.config.store_primary(),
        )


def gpu_of(node: str, model_name: str, fb_total_mib: int) -> dict[str, Any]:
    """A node's one GPU, with identifiers derived from its name (stable across runs)."""
    digest = hashlib.sha256(node.encode()).digest()
    return {
        "uuid": f"GPU-{uuid.UUID(bytes=digest[:16])}",
        "model_name": model_name,
        "index": 0,
        "pci_bus_id": f"00000000:{digest[16] % 200 + 16:02X}:00.0",
        "fb_total_mib": fb_total_mib,
    }
