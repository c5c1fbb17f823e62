"""The lab's supervisor (`python -m reliability.lab.supervisor WORKDIR`): starts every process of the
twin, runs its control plane, applies faults asked for on its admin API, and is the only writer of
`state.json`. It holds the lab directory's lock for its whole life.

Parts, one job each: `topology` plans names, ports and specs; `nodes` is the control plane over the
GPU nodes (heartbeats, GPU health tooling, replacement, rollouts); `gateways` runs the HAProxy
gateways; `storectl` fails the replicated store over; `prober` asks known prompts; `ksm` exports the
controller's view as kube-state-metrics; `admin` is the fault API. This module wires them together
and owns start and stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from reliability.errors import HarnessError
from reliability.lab.admin import admin_app
from reliability.lab.config import LabConfig
from reliability.lab.events import append_event
from reliability.lab.fabric import GLOBAL, choose_isolation, make_isolation
from reliability.lab.gateways import Gateways
from reliability.lab.llm.tinylm import read_golden
from reliability.lab.nodes import NodeController
from reliability.lab.prober import Prober
from reliability.lab.processes import Component
from reliability.lab.state import ComponentState, LabState, ProcessRef, StoreState, write_state
from reliability.lab.storectl import StoreController
from reliability.lab.topology import Planner, write_artifacts
from reliability.prometheus.server import LocalPrometheus, ScrapeTarget
from reliability.tools import signal_self_when_orphaned

START_TIMEOUT_S = 60.0
MARKER = "reliability.lab.supervisor"


class Supervisor:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir.resolve()
        launch = json.loads((self.workdir / "launch.json").read_text(encoding="utf-8"))
        self.config = LabConfig.model_validate(launch["config"])
        self.lab_id = str(launch["lab_id"])
        self.slo_files = [Path(p) for p in launch.get("slo_files", [])]
        self.rule_files = [Path(p) for p in launch.get("rule_files", [])]
        self.state_file = self.workdir / "state.json"
        self.events_path = self.workdir / "events.jsonl"
        self.log_dir = self.workdir / "logs"
        self.isolation = choose_isolation(str(launch.get("isolation", "auto")))
        self.regions = self.config.region_names()
        self.fabric = make_isolation(self.isolation, self.lab_id, self.regions)
        self.admin_port = self.fabric.free_port(None)
        self.partitioned: set[str] = set()
        self.phase = "starting"
        self.error: str | None = None
        self.started_at = time.time()
        self.ready_at: float | None = None
        self.components: dict[str, Component] = {}
        self.prometheus: LocalPrometheus | None = None
        self.gateways: Gateways | None = None
        self.nodes: NodeController | None = None
        self.stores: StoreController | None = None
        self.prober: Prober | None = None
        self.planner: Planner | None = None
        self.golden_path: Path | None = None
        self._background: set[asyncio.Future[None]] = set()

    # -- state ----------------------------------------------------------------------------------------
    def state(self) -> LabState:
        prom = self.prometheus
        endpoint = f"http://127.0.0.1:{self.gateways.ingress_spec.port}" if self.gateways else ""
        components = [
            ComponentState(
                name=c.name,
                kind=c.kind,
                region=c.region,
                host=c.host,
                port=c.port,
                url=c.url,
                pid=c.pid if c.alive() else None,
                marker=c.marker,
            )
            for c in self.components.values()
        ]
        if self.gateways is not None:
            for name, proc in self.gateways.procs.items():
                spec = proc.spec
                components.append(
                    ComponentState(
                        name="global-gateway" if name == "global" else f"region-gateway/{name}",
                        kind="global-gateway" if name == "global" else "region-gateway",
                        region=None if name == "global" else name,
                        host=spec.host,
                        port=spec.port,
                        url=f"http://{spec.host}:{spec.port}",
                        pid=proc.pid if proc.alive() else None,
                        marker=proc.marker,
                        extra_ports={"metrics": spec.metrics_port},
                    )
                )
        if self.nodes is not None:
            for n in self.nodes.nodes.values():
                components.append(
                    ComponentState(
                        name=f"node/{n.name}",
                        kind="node",
                        region=n.region,
                        host=n.plan.host,
                        port=n.plan.api_port,
                        url=n.plan.api_url,
                        pid=n.proc.pid if n.alive() and n.proc else None,
                        marker=f'"id": "{n.name}"',
                        extra_ports={"agent": n.plan.agent_port},
                    )
                )
        return LabState(
            lab_id=self.lab_id,
            workdir=str(self.workdir),
            phase=self.phase,  # type: ignore[arg-type]
            error=self.error,
            isolation=self.isolation,  # type: ignore[arg-type]
            fabric=self.fabric.to_state(),
            supervisor=ProcessRef(pid=os.getpid(), marker=MARKER),
            prometheus=ProcessRef(
                pid=prom.proc.pid if prom and prom.proc else None,
                marker=str(prom.config_path) if prom else "",
            ),
            started_at=self.started_at,
            ready_at=self.ready_at,
            endpoint=endpoint,
            admin_url=f"http://127.0.0.1:{self.admin_port}",
            prometheus_url=prom.url if prom else None,
            golden_path=str(self.golden_path) if self.golden_path else None,
            served_model_name=self.config.model.served_name,
            model_version=self.config.model.version,
            store=StoreState(primary=self.stores.primary, url=f"{endpoint}/store") if self.stores else None,
            regions=self.regions,
            partitioned=sorted(self.partitioned),
            faults=self.faults(),
            components=components,
            nodes=[n.to_state() for n in self.nodes.nodes.values()] if self.nodes else [],
            events_path=str(self.events_path),
        )

    def faults(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {
            f"partition:{r}": {"fault": "partition_region"} for r in self.partitioned
        }
        if self.nodes is not None:
            out.update(
                {f"model:{t}": {"fault": "fail_model", **body} for t, body in self.nodes.model_faults.items()}
            )
            out.update({f"stall:{r}": {"fault": "stall_replacements"} for r in self.nodes.stalled_regions})
        return out

    def save(self) -> None:
        write_state(self.state_file, self.state())

    def event(self, name: str, **fields: Any) -> None:
        append_event(self.events_path, name, **fields)

    # -- start / stop ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Everything is started at once (from this, the main thread: children die with the
        thread that started them); readiness is awaited in the event loop."""
        self.save()  # before anything exists, so `lab down` can always find what follows
        self.fabric.setup()
        self.save()
        artifacts = write_artifacts(self.config, self.workdir)
        self.golden_path = artifacts.golden
        self.planner = Planner(self.config, self.fabric, self.workdir, self.lab_id, artifacts)
        stores = self.planner.stores()
        node_plans = self.planner.initial_nodes()
        region_specs = {
            r: self.planner.region_gateway(r, [n for n in node_plans if n.region == r]) for r in self.regions
        }
        ingress = self.planner.global_gateway(region_specs, stores)
        self.gateways = Gateways(
            self.workdir / "gateways", self.events_path, region_specs, ingress, self._prefix
        )
        self.stores = StoreController(
            self.config.store,
            stores,
            self.config.store_primary(),
            self.fabric.address,
            lambda r: r in self.partitioned,
            self.events_path,
            self.save,
        )
        self.nodes = NodeController(
            self.config,
            self.planner,
            self.events_path,
            self.log_dir,
            self._prefix,
            self.gateways,
            read_golden(artifacts.golden),
            lambda r: r in self.partitioned,
            self._changed,
        )
        self.prober = Prober(
            read_golden(artifacts.golden), self.config.model.served_name, self.config.canary.rate_per_region
        )
        proxy = self.fabric.proxy_spec()
        if proxy is not None:
            self.components["proxy"] = Component(
                "proxy",
                "proxy",
                "reliability.lab.proxy",
                proxy,
                None,
                "127.0.0.1",
                proxy["admin_port"],
                f"http://127.0.0.1:{proxy['admin_port']}",
            )
        for region, plan in stores.items():
            self.components[f"store/{region}"] = Component(
                f"store/{region}",
                "store",
                "reliability.lab.store",
                plan.spec,
                region,
                plan.host,
                plan.port,
                plan.url,
            )
        for c in self.components.values():
            c.argv_prefix = self._prefix(c.region) if c.region else []
            c.start(self.log_dir)
        self.nodes.start_initial(node_plans)
        self.save()
        self.gateways.start()
        self.prometheus = LocalPrometheus(
            self.workdir / "prometheus", targets=self.scrape_targets(), rule_files=self.rules()
        )
        self.prometheus.spawn()
        self.save()

    def _prefix(self, region: str | None) -> list[str]:
        return self.fabric.wrap(region, []) if region else []

    def _changed(self) -> None:
        self.save()
        if self.prometheus is not None and self.phase == "ready":
            task = asyncio.ensure_future(self._retarget())
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _retarget(self) -> None:
        """Scrape replacement nodes, stop scraping removed ones."""
        assert self.prometheus is not None
        targets = self.scrape_targets()
        if targets != self.prometheus.targets:
            self.prometheus.targets = targets
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.prometheus.reload)

    def rules(self) -> list[Path]:
        files = []
        if self.slo_files:
            from reliability.slo import compile_paths

            files.append(compile_paths(self.slo_files, self.workdir / "rules" / "slo-rules.yaml"))
        return files + self.rule_files

    def scrape_targets(self) -> list[ScrapeTarget]:
        assert self.nodes is not None and self.gateways is not None and self.stores is not None
        out = []
        for n in self.nodes.nodes.values():
            if n.status in ("replaced", "stopped"):
                continue
            labels = {"region": n.region, "node": n.name}
            if n.status != "drained":  # a drained node's serving pod was evicted; its DCGM exporter stays
                api = self.fabric.scrape_address(n.region, n.plan.api_port)
                out.append(ScrapeTarget("vllm", api, labels))
            out.append(
                ScrapeTarget("dcgm-exporter", self.fabric.scrape_address(n.region, n.plan.agent_port), labels)
            )
        for region, spec in self.gateways.region_specs.items():
            out.append(
                ScrapeTarget(
                    "haproxy-region",
                    self.fabric.scrape_address(region, spec.metrics_port),
                    {"region": region},
                )
            )
        out.append(ScrapeTarget("haproxy-global", f"127.0.0.1:{self.gateways.ingress_spec.metrics_port}", {}))
        for region, plan in self.stores.stores.items():
            out.append(
                ScrapeTarget("store", self.fabric.scrape_address(region, plan.port), {"region": region})
            )
        admin = f"127.0.0.1:{self.admin_port}"
        out.append(ScrapeTarget("kube-state-metrics", admin, {}, metrics_path="/metrics/ksm"))
        out.append(ScrapeTarget("canary", admin, {}, metrics_path="/metrics/canary"))
        return out

    async def wait_ready(self, session: aiohttp.ClientSession) -> None:
        assert self.nodes is not None and self.stores is not None and self.prometheus is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            for c in self.components.values():
                if not c.alive():
                    raise RuntimeError(f"{c.name} exited during start; see {self.log_dir}")
            for n in self.nodes.nodes.values():
                if n.status not in ("replaced", "stopped") and not n.alive():
                    raise RuntimeError(f"node {n.name} exited during start; see {self.log_dir}")
            stores_ok = all([await self.stores.status(r) is not None for r in self.stores.stores])
            if (
                stores_ok
                and self.nodes.all_ready()
                and await asyncio.to_thread(self.prometheus.ready)
                and await asyncio.to_thread(self._gateways_serving)
            ):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the lab was not ready after {START_TIMEOUT_S}s")
            await asyncio.sleep(0.05)

    def _gateways_serving(self) -> bool:
        assert self.gateways is not None
        try:
            return self.gateways.serving()
        except HarnessError:
            return False  # a runtime socket not answering yet

    def stop_all(self) -> None:
        """Stop everything and tear the fabric down. A failed teardown leaves the lab marked
        `teardown_failed` (never `down`), so `reliability lab down` tries again."""
        self.phase = "stopping"
        with contextlib.suppress(Exception):
            self.save()
        if self.gateways is not None:
            with contextlib.suppress(Exception):
                self.gateways.stop()
        if self.nodes is not None:
            self.nodes.stop_all()
        procs = [c for c in self.components.values() if c.alive()]
        for c in procs:
            with contextlib.suppress(ProcessLookupError):
                c.proc.terminate()  # type: ignore[union-attr]
        for c in procs:
            try:
                c.proc.wait(3)  # type: ignore[union-attr]
            except Exception:
                with contextlib.suppress(ProcessLookupError):
                    c.proc.kill()  # type: ignore[union-attr]
        if self.prometheus is not None:
            self.prometheus.stop()
        try:
            self.fabric.teardown()
        except Exception as exc:
            self.phase, self.error = "teardown_failed", f"network teardown failed: {exc}"
            self.save()
            self.event("lab_teardown_failed", error=str(exc))
            return
        if self.planner is not None and self.planner.socket_dir() != self.workdir / "gateways":
            shutil.rmtree(self.planner.socket_dir(), ignore_errors=True)
        self.partitioned.clear()
        self.phase = "down"
        self.save()
        self.event("lab_down")

    # -- faults (called by the admin API) ------------------------------------------------------------
    async def partition_region(self, region: str) -> dict[str, Any]:
        from reliability.lab.nodes import FaultError

        if region not in self.regions:
            raise FaultError(f"unknown region {region!r}; regions are {', '.join(self.regions)}")
        assert self.stores is not None
        extra: dict[str, Any] = {}
        if region == self.stores.primary:
            # Ground truth for RPO: the primary's last acknowledged write as the region goes.
            status = await self.stores.status(region)
            if status is not None:
                extra = {
                    "store_last_ack_index": status["last_index"],
                    "store_last_ack_ts": status.get("last_ts"),
                }
        self.partitioned.add(region)  # recorded before the change: a crash in between still gets healed
        self.save()
        await asyncio.to_thread(self.fabric.partition, region)
        self.save()
        self.event("partition_applied", region=region, isolation=self.isolation, **extra)
        return {"region": region, "isolation": self.isolation}

    async def heal_partition(self, region: str) -> dict[str, Any]:
        if region not in self.partitioned:
            return {"region": region, "healed": False}
        await asyncio.to_thread(self.fabric.heal, region)
        self.partitioned.discard(region)
        self.save()
        self.event("partition_removed", region=region)
        return {"region": region, "healed": True}

    async def heal(self) -> dict[str, Any]:
        assert self.nodes is not None
        healed: list[str] = []
        for target in list(self.nodes.model_faults):
            await self.nodes.restore_model(target)
            healed.append(f"model:{target}")
        for region in list(self.nodes.stalled_regions):
            await self.nodes.unstall(region)
            healed.append(f"stall:{region}")
        for region in sorted(self.partitioned):
            await self.heal_partition(region)
            healed.append(f"partition:{region}")
        healed += [f"repaired:{name}" for name in await self.nodes.remove_drained()]
        self.save()
        return {"healed": healed}


async def run(sup: Supervisor) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    assert sup.nodes is not None and sup.stores is not None and sup.prober is not None
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    sup.nodes.session = sup.stores.session = session
    runner = web.AppRunner(admin_app(sup), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", sup.admin_port, reuse_address=True).start()
    tasks: list[asyncio.Task[None]] = [asyncio.create_task(sup.nodes.watch())]
    try:
        starting = asyncio.create_task(sup.wait_ready(session))
        waiter = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({starting, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if starting not in done:
            starting.cancel()
            return
        starting.result()
        waiter.cancel()
        tasks.append(asyncio.create_task(sup.stores.loop()))
        assert sup.gateways is not None
        for region, spec in sup.gateways.region_specs.items():
            url = f"http://{sup.fabric.address(GLOBAL, region, spec.port)}"
            tasks.append(asyncio.create_task(sup.prober.run_region(session, region, url)))
        sup.phase = "ready"
        sup.ready_at = time.time()
        sup.save()
        sup.event(
            "lab_up",
            isolation=sup.isolation,
            endpoint=sup.state().endpoint,
            startup_s=round(sup.ready_at - sup.started_at, 3),
        )
        await stop.wait()
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await runner.cleanup()
        await session.close()


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit(f"usage: python -m {MARKER} WORKDIR")

    def interrupted(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    # Until the event loop takes over, a stop request unwinds through stop_all() below.
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)
    if os.environ.get("RELIABILITY_LAB_STOP_WHEN_ORPHANED") == "1":
        # The harness that started this lab died (even by SIGKILL): tear down, exactly once.
        signal_self_when_orphaned(signal.SIGTERM)
    sup = Supervisor(Path(sys.argv[1]))
    try:
        sup.start()
        from reliability.lab.serving import new_event_loop

        loop = new_event_loop()
        try:
            loop.run_until_complete(run(sup))
        finally:
            loop.close()
    except BaseException as exc:
        if not isinstance(exc, (KeyboardInterrupt, SystemExit)):
            print(f"lab supervisor failed: {exc!r}", file=sys.stderr, flush=True)
            sup.error = str(exc)
        raise
    finally:
        # A second SIGTERM (or Ctrl-C) must not cut the cleanup short.
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        sup.stop_all()


if __name__ == "__main__":
    main()
