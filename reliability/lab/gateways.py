"""The lab's HAProxy gateways as the supervisor runs them: one per region (inside the region's
network namespace in netns mode) and the global ingress; their health-check transitions become
ground-truth events, and GPU nodes join and leave a region at run time through the runtime API."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from reliability.lab.events import append_event
from reliability.lab.haproxy import (
    GatewayEvent,
    GlobalGatewaySpec,
    HAProxyProcess,
    RegionGatewaySpec,
    Server,
    node_server_options,
)
from reliability.lab.topology import NodePlan

NODES_BACKEND = "vllm"
INGRESS_BACKEND = "regions"
STORE_BACKEND = "store"


class Gateways:
    def __init__(
        self,
        workdir: Path,
        events_path: Path,
        regions: dict[str, RegionGatewaySpec],
        ingress: GlobalGatewaySpec,
        argv_prefix: Callable[[str], list[str]],
    ) -> None:
        self.workdir = workdir
        self.events_path = events_path
        self.region_specs = regions
        self.ingress_spec = ingress
        self.procs: dict[str, HAProxyProcess] = {}
        for region, spec in regions.items():
            self.procs[region] = HAProxyProcess(
                spec, workdir, on_event=self._event, argv_prefix=argv_prefix(region)
            )
        self.procs["global"] = HAProxyProcess(ingress, workdir, on_event=self._event)

    def _event(self, e: GatewayEvent) -> None:
        append_event(self.events_path, e.event, **e.fields())

    def start(self) -> None:
        """From the thread that will outlive them (HAProxy dies with the thread that started it)."""
        for spec in self.region_specs.values():
            spec.stats_socket.parent.mkdir(parents=True, exist_ok=True)
        for proc in self.procs.values():
            proc.start()

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.stop(grace_s=1.0)

    def serving(self) -> bool:
        """Every server of every gateway passes its health checks: each region gateway routes to all
        its GPU nodes, the ingress to every region and to the store's primary. Blocking (runtime
        API); until then a request through the ingress may get a 503."""
        for name, proc in self.procs.items():
            backends = (NODES_BACKEND,) if name != "global" else (INGRESS_BACKEND, STORE_BACKEND)
            for backend in backends:
                rows = [r for r in proc.runtime.show_stat(backend) if r.is_server]
                usable = [r for r in rows if r.status in ("UP", "no check")]
                if backend == STORE_BACKEND:
                    if not usable:
                        return False  # the primary's store (the only one passing /primary)
                elif len(usable) < len(rows) or not rows:
                    return False
        return True

    def alive(self) -> dict[str, bool]:
        return {name: p.alive() for name, p in self.procs.items()}

    async def add_node(self, plan: NodePlan) -> None:
        spec = self.region_specs[plan.region]
        server = Server(name=plan.name, host=plan.host, port=plan.api_port)
        runtime = self.procs[plan.region].runtime
        await asyncio.to_thread(
            runtime.add_server,
            NODES_BACKEND,
            plan.name,
            plan.host,
            plan.api_port,
            options=node_server_options(spec, server),
            check=spec.health_checks,
            start_down=spec.health_checks,
        )

    async def remove_node(self, plan: NodePlan) -> None:
        runtime = self.procs[plan.region].runtime
        await asyncio.to_thread(runtime.del_server, NODES_BACKEND, plan.name, drain_timeout_s=1.0)
