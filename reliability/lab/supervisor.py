"""The lab's supervisor (`python -m reliability.lab.supervisor WORKDIR`): starts every component,
then runs the control plane - node heartbeats and replacement, store failover, the canary prober -
and applies faults asked for on its admin API. It is the only writer of `state.json`.

`reliability.lab.Lab` starts it as a child process and talks to it through the state file and the
admin API, so the harness (and Chaos Toolkit, and tests) never host the lab in their own process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
from aiohttp import web
from prometheus_client import Counter

from reliability.files import write_json_atomic
from reliability.lab.config import LabConfig
from reliability.lab.events import append_event
from reliability.lab.fabric import GLOBAL, choose_isolation, make_isolation
from reliability.lab.model import canary_inputs, init_weights, outputs_match, write_checkpoint
from reliability.lab.processes import Component
from reliability.lab.serving import json_response
from reliability.prometheus.server import LocalPrometheus, ScrapeTarget

SERVICE = "inference-api"
CANARY = Counter(
    "inference_canary_predictions",
    "Known-answer predictions sent to each region; NaN, wrong or failed counts as wrong.",
    ["service", "region", "outcome"],
)
START_TIMEOUT_S = 60.0


class FaultError(Exception):
    """A fault request that cannot be applied (unknown node, region, mode): HTTP 400."""


def lab_id_for(workdir: Path) -> str:
    return format(zlib.crc32(str(workdir.resolve()).encode()), "x")[:8]


class Supervisor:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir.resolve()
        launch = json.loads((self.workdir / "launch.json").read_text(encoding="utf-8"))
        self.config = LabConfig.model_validate(launch["config"])
        self.slo_files = [Path(p) for p in launch.get("slo_files", [])]
        self.rule_files = [Path(p) for p in launch.get("rule_files", [])]
        self.state_file = self.workdir / "state.json"
        self.events_path = self.workdir / "events.jsonl"
        self.log_dir = self.workdir / "logs"
        self.lab_id = lab_id_for(self.workdir)
        self.isolation = choose_isolation(str(launch.get("isolation", "auto")))
        self.regions = self.config.region_names()
        self.fabric = make_isolation(self.isolation, self.lab_id, self.regions)
        self.components: dict[str, Component] = {}
        self.prometheus: LocalPrometheus | None = None
        self.admin_port = self.fabric.free_port(None)
        self.store_primary = self.config.store_primary()
        self.partitioned: set[str] = set()
        self.faults: dict[str, Any] = {}
        self.node_status: dict[str, str] = {}  # node name -> up | lost | replacing
        self.phase = "starting"
        self.started_at = time.time()
        self.ready_at: float | None = None
        self.endpoint = ""
        self.error: str | None = None
        self._replacing: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._killed_by_us: set[str] = set()
        self.session: aiohttp.ClientSession | None = None

    # -- planning -------------------------------------------------------------------------------------
    def _add(self, c: Component) -> Component:
        self.components[c.name] = c
        return c

    def plan(self) -> None:
        cfg = self.config
        ckpt = self.workdir / "model" / "checkpoint.npz"
        sha = write_checkpoint(ckpt, cfg.model)
        store_ports = {r: self.fabric.free_port(r) for r in self.regions}
        for region in self.regions:
            host = self.fabric.bind_host(region)
            node_urls = []
            for node_id in cfg.node_ids(region):
                port = self.fabric.free_port(region)
                spec = {
                    "id": node_id,
                    "region": region,
                    "host": host,
                    "port": port,
                    "checkpoint": str(ckpt),
                    "sha256": sha,
                    "version": cfg.model.version,
                    "warmup_s": cfg.model.warmup_s,
                    "xid_die_after_s": cfg.node.xid_die_after_s,
                    "max_batch": cfg.node.max_batch,
                }
                url = f"http://{host}:{port}"
                node_urls.append({"id": node_id, "url": url})
                self._add(
                    Component(
                        f"node/{node_id}", "node", "reliability.lab.node", spec, region, host, port, url
                    )
                )
            gw_port = self.fabric.free_port(region)
            rg = cfg.region_gateway
            self._add(
                Component(
                    f"region-gateway/{region}",
                    "region-gateway",
                    "reliability.lab.region_gateway",
                    {"region": region, "host": host, "port": gw_port, "nodes": node_urls, **rg.model_dump()},
                    region,
                    host,
                    gw_port,
                    f"http://{self.fabric.address(GLOBAL, region, gw_port)}",
                )
            )
            primary = self.store_primary
            self._add(
                Component(
                    f"store/{region}",
                    "store",
                    "reliability.lab.store",
                    {
                        "region": region,
                        "host": host,
                        "port": store_ports[region],
                        "role": "primary" if region == primary else "secondary",
                        "primary_url": ""
                        if region == primary
                        else f"http://{self.fabric.address(region, primary, store_ports[primary])}",
                        "replication_lag_s": cfg.store.replication_lag_s,
                        "poll_interval_s": cfg.store.poll_interval_s,
                    },
                    region,
                    host,
                    store_ports[region],
                    f"http://{self.fabric.address(GLOBAL, region, store_ports[region])}",
                )
            )
        # Every region -> region store path exists up front (a promoted primary is reached from the others).
        for src in self.regions:
            for dst in self.regions:
                self.fabric.address(src, dst, store_ports[dst])
        gport = self.fabric.free_port(None)
        gg = cfg.global_gateway
        self.endpoint = f"http://127.0.0.1:{gport}"
        self._add(
            Component(
                "global-gateway",
                "global-gateway",
                "reliability.lab.global_gateway",
                {
                    "host": "127.0.0.1",
                    "port": gport,
                    "regions": [
                        {
                            "name": r,
                            "url": self.components[f"region-gateway/{r}"].url,
                            "store_url": self.components[f"store/{r}"].url,
                        }
                        for r in self.regions
                    ],
                    "routing": gg.routing,
                    "primary_region": cfg.active_region(),
                    "health_interval_s": gg.health_interval_s,
                    "unhealthy_after": gg.unhealthy_after,
                    "request_timeout_s": gg.request_timeout_s,
                    "events_path": str(self.events_path),
                    "state_file": str(self.state_file),
                    "store_primary": self.store_primary,
                },
                None,
                "127.0.0.1",
                gport,
                self.endpoint,
            )
        )
        proxy = self.fabric.proxy_spec()
        if proxy is not None:
            self._add(
                Component(
                    "proxy",
                    "proxy",
                    "reliability.lab.proxy",
                    proxy,
                    None,
                    "127.0.0.1",
                    proxy["admin_port"],
                    f"http://127.0.0.1:{proxy['admin_port']}",
                )
            )
        weights = init_weights(cfg.model)
        self.canary_x = canary_inputs(cfg.model.features)
        self.canary_y = weights.predict(self.canary_x)

    def components_of(self, kind: str) -> list[Component]:
        return [c for c in self.components.values() if c.kind == kind]

    # -- state ----------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        prom = self.prometheus
        return {
            "lab_id": self.lab_id,
            "workdir": str(self.workdir),
            "phase": self.phase,
            "error": self.error,
            "isolation": self.isolation,
            "fabric": self.fabric.to_state(),
            "supervisor": {"pid": os.getpid(), "marker": "reliability.lab.supervisor"},
            "started_at": self.started_at,
            "ready_at": self.ready_at,
            "endpoint": self.endpoint,
            "admin_url": f"http://127.0.0.1:{self.admin_port}",
            "prometheus_url": prom.url if prom else None,
            "prometheus": {
                "url": prom.url if prom else None,
                "pid": prom.proc.pid if prom and prom.proc else None,
                "marker": str(prom.config_path) if prom else "",
            },
            "store_url": f"{self.endpoint}/store",
            "store": {"primary": self.store_primary, "url": f"{self.endpoint}/store"},
            "regions": self.regions,
            "partitioned": sorted(self.partitioned),
            "faults": self.faults,
            "components": [c.to_state() for c in self.components.values()],
            "nodes": dict(self.node_status),
            "events_path": str(self.events_path),
        }

    def save(self) -> None:
        write_json_atomic(self.state_file, self.state())

    def event(self, name: str, **fields: Any) -> None:
        append_event(self.events_path, name, **fields)

    # -- start / stop ---------------------------------------------------------------------------------
    def start(self) -> None:
        self.save()  # before anything exists, so `lab down` can always find what follows
        self.fabric.setup()
        self.save()
        self.plan()
        order = ["proxy", "store", "node", "region-gateway", "global-gateway"]
        for kind in order:
            for c in self.components_of(kind):
                c.argv_prefix = self.fabric.wrap(c.region, []) if c.region else []
                c.start(self.log_dir)
            self.save()
        for c in self.components_of("node"):
            self.node_status[c.name] = "up"
        self.prometheus = LocalPrometheus(
            self.workdir / "prometheus",
            targets=self.scrape_targets(),
            rule_files=self.rules(),
        )
        self.prometheus.start()
        self.save()

    def rules(self) -> list[Path]:
        files = []
        if self.slo_files:
            from reliability.slo import compile_paths

            files.append(compile_paths(self.slo_files, self.workdir / "rules" / "slo-rules.yaml"))
        return files + self.rule_files

    def scrape_targets(self) -> list[ScrapeTarget]:
        out = []
        for c in self.components.values():
            if c.kind == "proxy":
                continue
            labels = {"region": c.region} if c.region else {}
            if c.kind == "node":
                labels["node"] = c.spec["id"]
            job = "gpu-node" if c.kind == "node" else c.kind
            out.append(ScrapeTarget(job, self.fabric.scrape_address(c.region, c.port), labels))
        out.append(ScrapeTarget("canary", f"127.0.0.1:{self.admin_port}", {}))
        return out

    async def wait_ready(self) -> None:
        assert self.session is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        pending = [c for c in self.components.values() if c.kind != "proxy"]
        while pending:
            for c in list(pending):
                if not c.alive():
                    raise RuntimeError(f"{c.name} exited during start; see {self.log_dir}")
                if await self._get_ok(self._direct_url(c) + "/readyz"):
                    pending.remove(c)
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"not ready after {START_TIMEOUT_S}s: {', '.join(c.name for c in pending)}"
                )
            await asyncio.sleep(0.05)

    def _direct_url(self, c: Component) -> str:
        return f"http://{c.host}:{c.port}"

    async def _get_ok(self, url: str, timeout: float = 0.5) -> bool:
        assert self.session is not None
        try:
            async with self.session.get(url, timeout=aiohttp.ClientTimeout(total=timeout)) as r:
                return r.status == 200
        except (TimeoutError, aiohttp.ClientError):
            return False

    def stop_all(self) -> None:
        self.phase = "stopping"
        with contextlib.suppress(Exception):
            self.save()
        procs = [c for c in self.components.values() if c.alive()]
        for c in procs:
            with contextlib.suppress(ProcessLookupError):
                c.proc.terminate()  # type: ignore[union-attr]
        deadline = time.monotonic() + 3.0
        for c in procs:
            try:
                c.proc.wait(max(0.0, deadline - time.monotonic()))  # type: ignore[union-attr]
            except Exception:
                with contextlib.suppress(ProcessLookupError):
                    c.proc.kill()  # type: ignore[union-attr]
                    c.proc.wait(2)  # type: ignore[union-attr]
        if self.prometheus is not None:
            self.prometheus.stop()
        with contextlib.suppress(Exception):
            self.fabric.teardown()
        self.partitioned.clear()
        self.phase = "down"
        for c in self.components.values():
            c.pid = None
        self.prometheus = None
        self.save()
        self.event("lab_down")

    # -- control plane --------------------------------------------------------------------------------
    async def heartbeat_loop(self, node: Component) -> None:
        cfg = self.config.controller
        misses = 0
        while True:
            await asyncio.sleep(cfg.heartbeat_interval_s)
            if node.region in self.partitioned or node.name in self._replacing:
                misses = 0  # the region's control plane is cut off with it; a partition is not node loss
                continue
            if await self._get_ok(self._direct_url(node) + "/healthz", cfg.heartbeat_interval_s):
                misses = 0
                continue
            misses += 1
            if misses >= cfg.missed_heartbeats:
                misses = 0
                self._replacing.add(node.name)
                self.node_status[node.name] = "lost"
                self.event(
                    "node_lost_detected",
                    node=node.spec["id"],
                    region=node.region,
                    missed_heartbeats=cfg.missed_heartbeats,
                )
                self.save()
                # Kept so the task is not garbage-collected mid-replacement.
                self._tasks.add(asyncio.create_task(self.replace(node)))

    async def replace(self, node: Component) -> None:
        try:
            await asyncio.sleep(self.config.controller.provisioning_delay_s)
            if node.alive():
                # A node declared lost but still running (hung, or an Xid node slower to die than the
                # provisioning delay) is fenced off before its replacement takes its place.
                self._killed_by_us.add(node.name)
                node.proc.kill()  # type: ignore[union-attr]
                await asyncio.to_thread(node.proc.wait)  # type: ignore[union-attr]
                self.event(
                    "node_killed", node=node.spec["id"], region=node.region, mode="fenced", pid=node.pid
                )
            node.start(self.log_dir)
            self.node_status[node.name] = "replacing"
            self.event("replacement_started", node=node.spec["id"], region=node.region, pid=node.pid)
            self.save()
            while not await self._get_ok(self._direct_url(node) + "/readyz"):
                if not node.alive():
                    self.event("replacement_failed", node=node.spec["id"], region=node.region)
                    return
                await asyncio.sleep(0.05)
            self.node_status[node.name] = "up"
            self.faults.pop(f"node:{node.spec['id']}", None)
            self.event("replacement_ready", node=node.spec["id"], region=node.region, pid=node.pid)
            self.save()
        finally:
            self._replacing.discard(node.name)
            self._tasks.discard(asyncio.current_task())  # type: ignore[arg-type]

    async def exit_watch_loop(self) -> None:
        """Record when a component's process actually ended (a node dying of Xid 79, a crash)."""
        seen: dict[str, int | None] = {}
        while True:
            for c in self.components.values():
                if c.proc is None:
                    continue
                code = c.proc.poll()
                key = f"{c.name}#{c.generation}"
                if code is not None and key not in seen:
                    seen[key] = code
                    if c.name in self._killed_by_us:
                        self._killed_by_us.discard(c.name)
                        continue
                    if c.kind == "node":
                        mode = (self.faults.get(f"node:{c.spec['id']}") or {}).get("mode", "crash")
                        if mode != "sigkill":  # sigkill was logged when we sent it
                            self.event(
                                "node_killed",
                                node=c.spec["id"],
                                region=c.region,
                                mode=mode,
                                returncode=code,
                                pid=c.pid,
                            )
                    else:
                        self.event("component_exited", component=c.name, returncode=code)
            await asyncio.sleep(0.05)

    async def store_failover_loop(self) -> None:
        cfg = self.config.store
        down_since: float | None = None
        while True:
            await asyncio.sleep(0.25)
            primary = self.components[f"store/{self.store_primary}"]
            if await self._get_ok(primary.url + "/healthz", 0.25):
                down_since = None
            else:
                down_since = down_since or time.monotonic()
                if time.monotonic() - down_since >= cfg.failover_after_s and len(self.regions) > 1:
                    await self.promote_best_secondary()
                    down_since = None
            await self.demote_stale_primaries()

    async def _store_status(self, c: Component) -> dict[str, Any] | None:
        assert self.session is not None
        try:
            async with self.session.get(c.url + "/healthz", timeout=aiohttp.ClientTimeout(total=0.5)) as r:
                return dict(await r.json()) if r.status == 200 else None
        except (TimeoutError, aiohttp.ClientError, ValueError):
            return None

    async def _post(self, url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        assert self.session is not None
        async with self.session.post(url, json=body or {}, timeout=aiohttp.ClientTimeout(total=2)) as r:
            data = await r.json()
            if r.status != 200:
                raise FaultError(f"{url}: {r.status} {data}")
            return dict(data)

    async def promote_best_secondary(self) -> None:
        old = self.store_primary
        best: tuple[dict[str, Any], str] | None = None
        for region in self.regions:
            if region == old:
                continue
            status = await self._store_status(self.components[f"store/{region}"])
            if status is not None and (best is None or status["last_index"] > best[0]["last_index"]):
                best = (status, region)
        if best is None:
            return  # no secondary reachable either: nothing to promote to
        new = best[1]
        await self._post(self.components[f"store/{new}"].url + "/promote")
        self.store_primary = new
        self.event(
            "store_promoted",
            old_primary=old,
            new_primary=new,
            last_index=best[0]["last_index"],
            last_ts=best[0].get("last_ts"),
        )
        self.save()
        await self._point_secondaries()

    async def _point_secondaries(self) -> None:
        primary = self.components[f"store/{self.store_primary}"]
        for region in self.regions:
            if region == self.store_primary or region in self.partitioned:
                continue
            url = f"http://{self.fabric.address(region, self.store_primary, primary.port)}"
            with contextlib.suppress(FaultError, aiohttp.ClientError, asyncio.TimeoutError):
                await self._post(self.components[f"store/{region}"].url + "/follow", {"primary_url": url})

    async def demote_stale_primaries(self) -> None:
        """A healed old primary still believes it is primary: make it follow the new one."""
        for region in self.regions:
            if region == self.store_primary or region in self.partitioned:
                continue
            c = self.components[f"store/{region}"]
            status = await self._store_status(c)
            if status is not None and status.get("role") == "primary":
                primary = self.components[f"store/{self.store_primary}"]
                url = f"http://{self.fabric.address(region, self.store_primary, primary.port)}"
                with contextlib.suppress(FaultError, aiohttp.ClientError, asyncio.TimeoutError):
                    await self._post(c.url + "/follow", {"primary_url": url})
                    self.event("store_demoted", region=region, primary=self.store_primary)

    async def canary_loop(self, region: str) -> None:
        assert self.session is not None
        gw = self.components[f"region-gateway/{region}"]
        interval = 1.0 / self.config.canary.rate_per_region
        i = 0
        while True:
            started = time.monotonic()
            i = (i + 1) % len(self.canary_x)
            outcome = "wrong"
            try:
                async with self.session.post(
                    gw.url + "/v1/predict",
                    json={"inputs": self.canary_x[i : i + 1].tolist()},
                    timeout=aiohttp.ClientTimeout(total=1.0),
                ) as r:
                    if r.status == 200:
                        body = json.loads(await r.read())
                        outputs = np.asarray(
                            [[np.nan if v is None else v for v in row] for row in body.get("outputs", [])]
                        )
                        if outputs_match(self.canary_y[i : i + 1], outputs):
                            outcome = "correct"
            except (TimeoutError, aiohttp.ClientError, ValueError, TypeError):
                pass
            CANARY.labels(service=SERVICE, region=region, outcome=outcome).inc()
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))

    # -- faults ---------------------------------------------------------------------------------------
    def _node(self, node_id: str) -> Component:
        c = self.components.get(f"node/{node_id}")
        if c is None:
            known = ", ".join(n.spec["id"] for n in self.components_of("node"))
            raise FaultError(f"unknown node {node_id!r}; nodes are {known}")
        return c

    def _region(self, region: str) -> str:
        if region not in self.regions:
            raise FaultError(f"unknown region {region!r}; regions are {', '.join(self.regions)}")
        return region

    def _targets(self, target: str) -> list[Component]:
        if target in self.regions:
            return [c for c in self.components_of("node") if c.region == target]
        return [self._node(target)]

    async def kill_node(self, node: str, mode: str = "sigkill") -> dict[str, Any]:
        c = self._node(node)
        if mode not in ("sigkill", "xid79"):
            raise FaultError(f"unknown kill mode {mode!r}; use sigkill or xid79")
        if not c.alive() or self.node_status.get(c.name) != "up":
            raise FaultError(f"node {node} is not serving (status {self.node_status.get(c.name)})")
        self.faults[f"node:{node}"] = {"fault": "kill_node", "mode": mode}
        self.save()
        if mode == "sigkill":
            c.proc.kill()  # type: ignore[union-attr]
            self.event("node_killed", node=node, region=c.region, mode=mode, pid=c.pid)
        else:
            await self._post(self._direct_url(c) + "/admin/fault", {"mode": "xid79"})
            self.event("node_xid", node=node, region=c.region, xid=79, pid=c.pid)
        return {"node": node, "mode": mode, "pid": c.pid}

    async def partition_region(self, region: str) -> dict[str, Any]:
        self._region(region)
        extra: dict[str, Any] = {}
        if region == self.store_primary:
            # Ground truth for RPO: the primary's last acknowledged write as the region goes.
            status = await self._store_status(self.components[f"store/{region}"])
            if status is not None:
                extra = {
                    "store_last_ack_index": status["last_index"],
                    "store_last_ack_ts": status.get("last_ts"),
                }
        # Recorded before the change, so a crash between the two still gets healed by `lab down`.
        self.partitioned.add(region)
        self.save()
        await asyncio.to_thread(self.fabric.partition, region)
        self.save()
        self.event("partition_applied", region=region, isolation=self.isolation, **extra)
        return {"region": region, "isolation": self.isolation}

    async def heal_partition(self, region: str) -> dict[str, Any]:
        self._region(region)
        if region not in self.partitioned:
            return {"region": region, "healed": False}
        await asyncio.to_thread(self.fabric.heal, region)
        self.partitioned.discard(region)
        self.save()
        self.event("partition_removed", region=region)
        return {"region": region, "healed": True}

    async def fail_model(
        self, target: str, mode: str = "errors", rate: float = 1.0, latency_ms: float = 0
    ) -> dict[str, Any]:
        nodes = self._targets(target)
        if mode not in ("errors", "latency", "nan", "wrong", "bad_version"):
            raise FaultError(f"unknown model fault {mode!r}; use errors, latency, nan, wrong or bad_version")
        self.faults[f"model:{target}"] = {
            "fault": "fail_model",
            "mode": mode,
            "rate": rate,
            "latency_ms": latency_ms,
        }
        self.save()
        applied = []
        for c in nodes:
            if c.alive():
                with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                    await self._post(
                        self._direct_url(c) + "/admin/fault",
                        {"mode": mode, "rate": rate, "latency_ms": latency_ms},
                    )
                    applied.append(c.spec["id"])
        self.event(
            "fault_set",
            fault="fail_model",
            target=target,
            mode=mode,
            rate=rate,
            latency_ms=latency_ms,
            nodes=applied,
        )
        return {"target": target, "nodes": applied}

    async def restore_model(self, target: str) -> dict[str, Any]:
        nodes = self._targets(target)
        restored = []
        for c in nodes:
            if c.alive():
                with contextlib.suppress(FaultError, aiohttp.ClientError, asyncio.TimeoutError):
                    await self._post(self._direct_url(c) + "/admin/fault", {"mode": None})
                    restored.append(c.spec["id"])
        had = self.faults.pop(f"model:{target}", None)
        self.save()
        if had is not None:
            self.event("fault_cleared", fault="fail_model", target=target, nodes=restored)
        return {"target": target, "nodes": restored}

    async def heal(self) -> dict[str, Any]:
        healed: list[str] = []
        for key in [k for k in self.faults if k.startswith("model:")]:
            await self.restore_model(key.split(":", 1)[1])
            healed.append(key)
        for region in sorted(self.partitioned):
            await self.heal_partition(region)
            healed.append(f"partition:{region}")
        return {"healed": healed}

    async def status(self) -> dict[str, Any]:
        """The state plus, per component: process alive, the controller's view of a node
        (up | lost | replacing) and readiness as its own `/readyz` answers right now (a
        partitioned region's components read not ready: the supervisor is cut off from them too)."""
        state = self.state()
        comps = [self.components[comp["name"]] for comp in state["components"]]
        ready = await asyncio.gather(
            *(self._get_ok(self._direct_url(c) + "/readyz") if c.alive() else _false() for c in comps)
        )
        for comp, c, is_ready in zip(state["components"], comps, ready, strict=True):
            comp["alive"] = c.alive()
            comp["ready"] = is_ready
            if c.kind == "node":
                comp["status"] = self.node_status.get(c.name)
        return state

    # -- admin API ------------------------------------------------------------------------------------
    def admin_app(self) -> web.Application:
        from reliability.lab.serving import metrics

        app = web.Application()
        handlers = {
            "kill_node": self.kill_node,
            "partition_region": self.partition_region,
            "heal_partition": self.heal_partition,
            "fail_model": self.fail_model,
            "restore_model": self.restore_model,
            "heal": self.heal,
        }

        async def fault(request: web.Request) -> web.Response:
            name = request.match_info["name"]
            if name not in handlers:
                return json_response({"error": f"unknown fault {name!r}"}, 404)
            if self.phase != "ready":
                return json_response({"error": f"lab is {self.phase}"}, 409)
            try:
                args = await request.json() if request.can_read_body else {}
                return json_response(await handlers[name](**args))
            except (FaultError, TypeError, ValueError) as exc:
                return json_response({"error": str(exc)}, 400)

        async def status(_: web.Request) -> web.Response:
            return json_response(await self.status())

        app.router.add_post("/faults/{name}", fault)
        app.router.add_get("/status", status)
        app.router.add_get("/metrics", metrics)
        app.router.add_get("/readyz", lambda _: _ready(self.phase == "ready"))
        return app


async def _false() -> bool:
    return False


async def _ready(ok: bool) -> web.Response:
    return json_response({"ready": ok}, 200 if ok else 503)


async def run(sup: Supervisor) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    sup.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    runner = web.AppRunner(sup.admin_app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", sup.admin_port, reuse_address=True).start()
    tasks: list[asyncio.Task[None]] = []
    try:
        starting = asyncio.create_task(sup.wait_ready())
        waiter = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({starting, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if starting not in done:
            starting.cancel()
            return
        starting.result()
        waiter.cancel()
        tasks = [asyncio.create_task(sup.exit_watch_loop()), asyncio.create_task(sup.store_failover_loop())]
        tasks += [asyncio.create_task(sup.heartbeat_loop(n)) for n in sup.components_of("node")]
        tasks += [asyncio.create_task(sup.canary_loop(r)) for r in sup.regions]
        sup.phase = "ready"
        sup.ready_at = time.time()
        sup.save()
        sup.event(
            "lab_up",
            isolation=sup.isolation,
            endpoint=sup.endpoint,
            startup_s=round(sup.ready_at - sup.started_at, 3),
        )
        await stop.wait()
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await runner.cleanup()
        await sup.session.close()


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m reliability.lab.supervisor WORKDIR")

    def interrupted(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    # Until the event loop takes over, a stop request unwinds through stop_all() below.
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)
    sup = Supervisor(Path(sys.argv[1]))
    try:
        sup.start()
        asyncio.run(run(sup))
    except BaseException as exc:
        if not isinstance(exc, (KeyboardInterrupt, SystemExit)):
            print(f"lab supervisor failed: {exc!r}", file=sys.stderr, flush=True)
            sup.error = str(exc)
        raise
    finally:
        sup.stop_all()


if __name__ == "__main__":
    main()
