"""The control plane's view of the GPU nodes: what kubelet, NVIDIA's GPU health tooling, the
cluster autoscaler and a rollout controller do on a real cluster.

- Heartbeats: each node's agent (its DCGM exporter port) is polled; missed beats make it NotReady
  (`lost`) and it is replaced.
- GPU health: a fatal Xid reported by DCGM sets the `GPUUnhealthy` condition, cordons the node and
  replaces it; the gateway ejects it on its own (health checks, `observe layer7`).
- Replacement: a warm standby of the region takes over at once; otherwise a new node is provisioned
  after `provisioning_delay_s` and must load and warm the model before it is ready.
- Rollout: a new model version goes to one canary node first; known prompts sent to it decide
  whether the rollout goes on or is rolled back.

Every change is written to the event log as ground truth (`node_state` for capacity, `node_xid`,
`node_condition`, `node_cordoned`, `replacement_started` / `replacement_ready`, `model_rollback`...).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from reliability.lab.config import LabConfig
from reliability.lab.events import append_event
from reliability.lab.llm.tinylm import GoldenCase
from reliability.lab.state import NodeState
from reliability.lab.topology import NodePlan, Planner
from reliability.tools import parent_death_signal

NODE_MODULE = "reliability.lab.llm.node"
BOOT_TIMEOUT_S = 120.0
DRAIN_WAIT_S = 30.0  # longer than any request the lab serves (the load's timeouts are shorter)
# The nodes whose heartbeats the controller watches (a drained node is out of service already).
HEARTBEATING = ("loading", "ready", "unhealthy", "cordoned")
# No longer part of the fleet: neither serving, nor a fault's target, nor awaited by readiness.
OUT_OF_SERVICE = ("drained", "replaced", "stopped")


class FaultError(Exception):
    """A fault request that cannot be applied (unknown node or region, bad mode): HTTP 400."""


@dataclass
class Node:
    plan: NodePlan
    proc: subprocess.Popen[bytes] | None = None
    status: str = "loading"  # loading | ready | unhealthy | cordoned | lost | replaced | stopped
    ready: bool = False
    standby: bool = False
    unschedulable: bool = False
    conditions: dict[str, bool] = field(default_factory=lambda: {"GPUUnhealthy": False})
    misses: int = 0
    answered: bool = False  # its agent has answered once: it has booted and joined
    spawned_at: float = field(default_factory=time.monotonic)
    last_xid: int = 0
    model_version: str = ""
    replacing: bool = False
    stalled: bool = False  # a replacement stuck loading its model (fault)

    @property
    def name(self) -> str:
        return self.plan.name

    @property
    def region(self) -> str:
        return self.plan.region

    @property
    def serving(self) -> bool:
        return not self.standby and self.status not in OUT_OF_SERVICE

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def to_state(self) -> NodeState:
        return NodeState(
            name=self.name,
            region=self.region,
            status=self.status,  # type: ignore[arg-type]
            ready=self.ready,
            unschedulable=self.unschedulable,
            standby=self.standby,
            conditions=dict(self.conditions),
            model_version=self.model_version,
            replaces=self.plan.replaces,
            api_url=self.plan.api_url,
            agent_url=self.plan.agent_url,
        )


class GatewayOps:
    """What the controller asks of the region gateways (implemented over HAProxy's runtime API)."""

    add_node: Callable[[NodePlan], Awaitable[None]]
    remove_node: Callable[[NodePlan], Awaitable[None]]


class NodeController:
    def __init__(
        self,
        config: LabConfig,
        planner: Planner,
        events_path: Path,
        log_dir: Path,
        argv_prefix: Callable[[str], list[str]],
        gateways: GatewayOps,
        golden: list[GoldenCase],
        partitioned: Callable[[str], bool],
        on_change: Callable[[], None],
    ) -> None:
        self.config = config
        self.planner = planner
        self.events_path = events_path
        self.log_dir = log_dir
        self.argv_prefix = argv_prefix
        self.gateways = gateways
        self.golden = golden
        self.partitioned = partitioned
        self.on_change = on_change
        self.nodes: dict[str, Node] = {}
        self.session: aiohttp.ClientSession | None = None
        self.stalled_regions: set[str] = set()
        self.model_faults: dict[str, dict[str, Any]] = {}  # target -> fault body
        self._tasks: set[asyncio.Task[None]] = set()
        self._rollout: asyncio.Task[None] | None = None
        self._rollout_target = ""
        self._injecting: set[str] = set()  # nodes whose Xid is being injected right now

    # -- processes ---------------------------------------------------------------------------------
    def event(self, name: str, **fields: Any) -> None:
        append_event(self.events_path, name, **fields)

    def spawn(self, plan: NodePlan, standby: bool = False, load_s: float | None = None) -> Node:
        """Start a node process (from the event loop's thread: children die with the thread that
        started them)."""
        spec = dict(plan.spec)
        if load_s is not None:
            spec["load_s"] = load_s
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"node_{plan.name}.log", "ab")  # noqa: SIM115 - the child owns it
        proc = subprocess.Popen(
            [*self.argv_prefix(plan.region), sys.executable, "-m", NODE_MODULE, json.dumps(spec)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=parent_death_signal(signal.SIGKILL),
            close_fds=True,
        )
        log.close()
        node = self.nodes.get(plan.name) or Node(
            plan, standby=standby, model_version=self.config.model.version
        )
        node.proc, node.status, node.ready, node.misses = proc, "loading", False, 0
        node.answered, node.spawned_at = False, time.monotonic()
        self.nodes[plan.name] = node
        return node

    def start_initial(self, plans: list[NodePlan]) -> None:
        for plan in plans:
            self.spawn(plan, standby=plan.standby)

    def serving(self, region: str | None = None) -> list[Node]:
        return [n for n in self.nodes.values() if n.serving and (region is None or n.region == region)]

    def node(self, name: str) -> Node:
        node = self.nodes.get(name)
        if node is None or node.status in OUT_OF_SERVICE:
            known = ", ".join(n.name for n in self.serving())
            raise FaultError(f"unknown node {name!r}; serving nodes are {known}")
        return node

    def targets(self, target: str) -> list[Node]:
        """A node name, a region (its serving nodes) or `all`."""
        if target == "all":
            return self.serving()
        if target in self.config.region_names():
            return self.serving(target)
        return [self.node(target)]

    def all_ready(self) -> bool:
        return all(n.ready for n in self.nodes.values() if n.status not in OUT_OF_SERVICE)

    def stop_all(self) -> None:
        procs = [n.proc for n in self.nodes.values() if n.proc is not None and n.proc.poll() is None]
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                p.terminate()
        deadline = time.monotonic() + 3.0
        for p in procs:
            try:
                p.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    p.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.wait(2)
        for n in self.nodes.values():
            n.status = "stopped" if n.status != "replaced" else n.status

    # -- agent calls -------------------------------------------------------------------------------
    async def agent_status(self, node: Node, timeout: float) -> dict[str, Any] | None:
        assert self.session is not None
        try:
            async with self.session.get(
                node.plan.agent_url + "/admin/status", timeout=aiohttp.ClientTimeout(total=timeout)
            ) as r:
                return dict(await r.json()) if r.status == 200 else None
        except (TimeoutError, aiohttp.ClientError, ValueError):
            return None

    async def set_node_fault(self, node: Node, body: dict[str, Any]) -> dict[str, Any]:
        assert self.session is not None
        try:
            async with self.session.post(
                node.plan.agent_url + "/admin/fault", json=body, timeout=aiohttp.ClientTimeout(total=5)
            ) as r:
                data = await r.json(content_type=None)
                if r.status != 200:
                    raise FaultError(f"node {node.name}: {r.status} {data}")
                return dict(data)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise FaultError(f"node {node.name} did not answer: {exc}") from exc

    # -- the control loop ----------------------------------------------------------------------------
    async def watch(self) -> None:
        """One pass over every node each heartbeat interval (bounded by the interval)."""
        cfg = self.config.controller
        while True:
            started = time.monotonic()
            nodes = [n for n in self.nodes.values() if n.status in HEARTBEATING]
            await asyncio.gather(*(self.check(n) for n in nodes))
            await asyncio.sleep(max(0.0, cfg.heartbeat_interval_s - (time.monotonic() - started)))

    async def check(self, node: Node) -> None:
        cfg = self.config.controller
        if self.partitioned(node.region):
            node.misses = 0  # the region's control plane is cut off with it: a partition is not node loss
            return
        if node.name in self._injecting:
            return
        status = await self.agent_status(node, cfg.heartbeat_timeout_s)
        if node.name in self._injecting:
            return  # this answer may already carry the Xid being injected: the next beat will tell
        if status is None:
            if not node.answered:
                # Still booting: a node that never joined is lost only after the boot timeout.
                if time.monotonic() - node.spawned_at > BOOT_TIMEOUT_S:
                    self.lose(node, reason=f"did not boot within {BOOT_TIMEOUT_S:g}s")
                return
            node.misses += 1
            if node.misses >= cfg.missed_heartbeats:
                self.lose(node, reason=f"{cfg.missed_heartbeats} heartbeats missed")
            return
        node.misses, node.answered = 0, True
        node.model_version = str(status.get("model_version") or node.model_version)
        # The Xid first: GPU health tooling's condition and cordon are the cause of the node's
        # not-ready (one heartbeat sees both), and the event log must read in that order.
        xid = int(status.get("last_xid") or 0)
        if xid and xid != node.last_xid:
            node.last_xid = xid
            if xid in cfg.fatal_xids and not node.conditions.get("GPUUnhealthy"):
                self.gpu_unhealthy(node, xid)
        ready = status.get("state") == "ready" and status.get("engine") in ("running", "hung")
        ready = ready and not node.conditions.get("GPUUnhealthy")
        if ready != node.ready:
            node.ready = ready
            if node.status == "loading" and ready:
                node.status = "ready"
            if not node.standby:
                self.event(
                    "node_state", node=node.name, region=node.region, ready=ready, reason=_why(status, ready)
                )
                if ready and node.plan.replaces:
                    self.event(
                        "replacement_ready", node=node.name, region=node.region, replaces=node.plan.replaces
                    )
            self.on_change()

    def lose(self, node: Node, reason: str) -> None:
        """The node stopped reporting: NotReady (Unknown), its pod lost; replace it."""
        was_ready = node.ready
        node.status, node.ready = "lost", False
        self.event("node_lost_detected", node=node.name, region=node.region, reason=reason)
        if was_ready and not node.standby:
            self.event("node_state", node=node.name, region=node.region, ready=False, reason=reason)
        self.on_change()
        self._start(self.replace(node))

    def gpu_unhealthy(self, node: Node, xid: int) -> None:
        """What NVIDIA's GPU health tooling does on a fatal Xid: condition, cordon, replace."""
        node.conditions["GPUUnhealthy"] = True
        self.event(
            "node_condition",
            node=node.name,
            region=node.region,
            condition="GPUUnhealthy",
            status=True,
            reason=f"Xid {xid}",
        )
        node.unschedulable = True
        node.status = "cordoned"
        self.event("node_cordoned", node=node.name, region=node.region, reason=f"Xid {xid}")
        if node.ready:
            node.ready = False
            if not node.standby:
                self.event("node_state", node=node.name, region=node.region, ready=False, reason=f"Xid {xid}")
        self.on_change()
        self._start(self.replace(node))

    # -- replacement ---------------------------------------------------------------------------------
    def _start(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def replace(self, old: Node) -> None:
        """A standby takes over, or a new node is provisioned; the old node stays in the gateway's
        pool (ejected by its health checks, if it has any) until its replacement is ready."""
        if old.replacing or old.standby:
            return
        old.replacing = True
        standby = next(
            (n for n in self.nodes.values() if n.standby and n.region == old.region and n.ready), None
        )
        if standby is not None:
            await self._promote(standby, old)
        else:
            await asyncio.sleep(self.config.controller.provisioning_delay_s)
            plan = self.planner.node(old.region, replaces=old.name)
            stalled = old.region in self.stalled_regions
            new = self.spawn(plan, load_s=3600.0 if stalled else None)
            new.stalled = stalled
            self.event(
                "replacement_started", node=new.name, region=new.region, replaces=old.name, stalled=stalled
            )
            self.on_change()
            with contextlib.suppress(Exception):
                await self.gateways.add_node(plan)
            deadline = time.monotonic() + BOOT_TIMEOUT_S
            while not new.ready and new.status not in ("lost", "replaced", "stopped"):
                if time.monotonic() > deadline and not new.stalled:
                    break
                await asyncio.sleep(0.1)
        await self._retire(old)
        self.on_change()

    async def _promote(self, standby: Node, old: Node) -> None:
        standby.standby = False
        standby.plan.replaces = old.name
        self.event("standby_promoted", node=standby.name, region=standby.region, replaces=old.name)
        with contextlib.suppress(Exception):
            await self.gateways.add_node(standby.plan)
        # It is ready already: it serves as soon as the gateway's health checks pass.
        self.event(
            "node_state", node=standby.name, region=standby.region, ready=True, reason="standby promoted"
        )
        self.event("replacement_ready", node=standby.name, region=standby.region, replaces=old.name)

    async def _retire(self, old: Node) -> None:
        """Take the old node out of the gateway. A node whose GPU failed is drained and kept,
        cordoned, its DCGM exporter still reporting the Xid - as on a real cluster, where it waits
        for a GPU reset or an RMA - until `heal` repairs it away (`remove_drained`). A lost node
        (it may still be running, hung) is fenced and removed now."""
        with contextlib.suppress(Exception):
            await self.gateways.remove_node(old.plan)
        if old.alive() and old.conditions.get("GPUUnhealthy"):
            old.status = "drained"
            self.event("node_drained", node=old.name, region=old.region, reason="awaiting GPU repair")
            return
        await self._remove(old, mode="fenced")

    async def remove_drained(self) -> list[str]:
        """The repair of every drained node: it leaves the cluster (`heal`)."""
        drained = [n for n in self.nodes.values() if n.status == "drained"]
        for node in drained:
            await self._remove(node, mode="repaired")
        if drained:
            self.on_change()
        return [n.name for n in drained]

    async def _remove(self, old: Node, mode: str) -> None:
        if old.alive():
            assert old.proc is not None
            old.proc.kill()
            await asyncio.get_running_loop().run_in_executor(None, old.proc.wait)
            if mode == "fenced":  # a repair is no kill: nothing was serving there any more
                self.event("node_killed", node=old.name, region=old.region, mode=mode)
        old.status = "replaced"
        self.event("node_removed", node=old.name, region=old.region, reason=mode)

    async def unstall(self, region: str) -> None:
        """Heal of a stuck replacement: start its model load again, now at the normal pace."""
        self.stalled_regions.discard(region)
        for node in [n for n in self.nodes.values() if n.stalled and n.region == region and n.alive()]:
            assert node.proc is not None
            node.proc.kill()
            await asyncio.get_running_loop().run_in_executor(None, node.proc.wait)
            node.stalled = False
            self.spawn(node.plan)
            self.event("replacement_restarted", node=node.name, region=node.region)

    # -- faults ----------------------------------------------------------------------------------------
    async def kill_node(self, node: str, mode: str = "sigkill") -> dict[str, Any]:
        name = node
        node = self.node(name)
        if not node.ready or node.standby:
            raise FaultError(f"node {name} is not serving (status {node.status})")
        if mode == "sigkill":
            assert node.proc is not None
            node.proc.kill()
            self.event("node_killed", node=name, region=node.region, mode=mode, pid=node.proc.pid)
            return {"node": name, "mode": mode}
        if not mode.startswith("xid") or not mode[3:].isdigit():
            raise FaultError(f"unknown kill mode {mode!r}; use sigkill or xid<code> (e.g. xid79, xid48)")
        code = int(mode[3:])
        # No heartbeat may see the Xid before it is logged as injected (ground truth in order).
        self._injecting.add(name)
        try:
            await self.set_node_fault(node, {"mode": "xid", "code": code})
            self.event("node_xid", node=name, region=node.region, xid=code)
        finally:
            self._injecting.discard(name)
        return {"node": name, "mode": mode, "xid": code}

    async def fail_model(self, target: str, body: dict[str, Any]) -> dict[str, Any]:
        nodes = self.targets(target)
        applied = []
        for node in nodes:
            if node.alive():
                await self.set_node_fault(node, body)
                applied.append(node.name)
        self.model_faults[target] = body
        self.event("fault_set", fault="fail_model", target=target, nodes=applied, **body)
        return {"target": target, "nodes": applied}

    async def restore_model(self, target: str) -> dict[str, Any]:
        rollout = self._rollout
        if rollout is not None and not rollout.done() and target in (self._rollout_target, "all"):
            rollout.cancel()
            self.event("model_rollout_cancelled", target=self._rollout_target)
        restored = []
        for node in self.targets(target):
            if node.alive() and node.status != "lost":
                with contextlib.suppress(FaultError):
                    await self.set_node_fault(node, {"mode": None})
                    restored.append(node.name)
        had = self.model_faults.pop(target, None)
        if had is not None:
            self.event("fault_cleared", fault="fail_model", target=target, nodes=restored)
            if had.get("mode") == "wrong":
                self._start(self._log_wrong_answers_drained(target, restored))
        return {"target": target, "nodes": restored}

    async def _log_wrong_answers_drained(self, target: str, names: list[str]) -> None:
        """`fault_drained` once no request admitted under the `wrong` fault is still answering, with
        when the last one ended: the end of the fault's effect on answers (bounded wait)."""
        deadline = time.monotonic() + DRAIN_WAIT_S
        last: float | None = None
        pending = [self.nodes[n] for n in names if n in self.nodes]
        while pending and time.monotonic() < deadline:
            still = []
            for node in pending:
                status = await self.agent_status(node, timeout=1.0)
                if status is None or status.get("wrong_inflight", 0) > 0:
                    still.append(node)
                elif status.get("last_wrong_done_ts") is not None:
                    last = max(last or 0.0, float(status["last_wrong_done_ts"]))
            pending = still
            if pending:
                await asyncio.sleep(0.1)
        self.event(
            "fault_drained", fault="fail_model", target=target, last_wrong_answer_ts=last,
            complete=not pending,
        )  # fmt: skip

    async def deploy_model(self, target: str, version: str, failure: str) -> dict[str, Any]:
        """Roll a model version out to `target` through a canary node, with automatic rollback."""
        if failure not in ("errors", "wrong"):
            raise FaultError(f"unknown failure {failure!r}; use errors or wrong")
        nodes = [n for n in self.targets(target) if n.ready]
        if not nodes:
            raise FaultError(f"no ready node in {target}")
        body = (
            {"mode": "errors", "rate": 1.0}
            if failure == "errors"
            else {"mode": "bad_version", "version": version}
        )
        canary = nodes[0]
        self.model_faults[target] = body
        self.event("model_rollout_started", target=target, version=version, failure=failure)
        await self.set_node_fault(canary, body)
        self.event("model_rollout_canary", node=canary.name, region=canary.region, version=version)
        self._rollout_target = target
        self._rollout = asyncio.ensure_future(self._analyse(canary, nodes[1:], target, version, body))
        return {"target": target, "version": version, "canary": canary.name}

    async def _analyse(
        self, canary: Node, rest: list[Node], target: str, version: str, body: dict[str, Any]
    ) -> None:
        cfg = self.config.controller.rollout
        failures = 0
        deadline = time.monotonic() + cfg.analysis_s
        i = 0
        while time.monotonic() < deadline:
            case = self.golden[i % len(self.golden)]
            i += 1
            if not await self._answers_right(canary, case):
                failures += 1
                if failures >= cfg.max_failures:
                    with contextlib.suppress(FaultError):
                        await self.set_node_fault(canary, {"mode": None})
                    self.model_faults.pop(target, None)
                    self.event(
                        "model_rollback",
                        node=canary.name,
                        region=canary.region,
                        version=version,
                        failures=failures,
                        reason="canary analysis failed",
                    )
                    self.on_change()
                    return
            await asyncio.sleep(cfg.probe_interval_s)
        for node in rest:
            with contextlib.suppress(FaultError):
                await self.set_node_fault(node, body)
        self.event("model_rollout_complete", target=target, version=version)
        self.on_change()

    async def _answers_right(self, node: Node, case: GoldenCase) -> bool:
        from reliability.lab.prober import answer_text, golden_request

        assert self.session is not None
        path = "/v1/chat/completions" if case.api == "chat" else "/v1/completions"
        body = {**golden_request(case), "model": self.config.model.served_name}
        try:
            async with self.session.post(
                node.plan.api_url + path, json=body, timeout=aiohttp.ClientTimeout(total=5)
            ) as r:
                if r.status != 200:
                    return False
                return answer_text(case.api, json.loads(await r.read())) == case.expected
        except (TimeoutError, aiohttp.ClientError, ValueError):
            return False


def _why(status: dict[str, Any], ready: bool) -> str:
    if ready:
        return "engine ready"
    if status.get("state") == "lost":
        return f"Xid {status.get('last_xid')}: GPU lost"
    if status.get("engine") == "dead":
        return "engine dead"
    return f"engine {status.get('engine')}, {status.get('state')}"
