"""The supervisor's admin API (127.0.0.1 only): faults, status, and the metrics of the control plane.

- `POST /faults/<name>` with the fault's arguments as JSON (see `reliability.lab.faults`);
  400 with `{"error": ...}` when it cannot be applied, 409 while the lab is not ready.
- `GET /status`: the state, plus each component's liveness.
- `GET /metrics/ksm`: the controller's view as kube-state-metrics (job `kube-state-metrics`).
- `GET /metrics/canary`: the known-answer prober (job `canary`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from reliability.lab.ksm import kube_state_registry
from reliability.lab.nodes import FaultError
from reliability.lab.serving import json_response

if TYPE_CHECKING:
    from reliability.lab.supervisor import Supervisor

# Node fault body fields a `fail_model` call may carry (reliability.lab.llm.faults.Fault).
MODEL_FAULT_FIELDS = ("rate", "latency_ms", "factor", "fraction", "hang", "version", "code")


def admin_app(sup: Supervisor) -> web.Application:
    assert sup.nodes is not None
    nodes = sup.nodes

    async def fail_model(target: str, mode: str = "errors", **fields: Any) -> dict[str, Any]:
        unknown = set(fields) - set(MODEL_FAULT_FIELDS)
        if unknown:
            raise FaultError(f"unknown argument(s) of fail_model: {', '.join(sorted(unknown))}")
        body = {"mode": mode, **{k: v for k, v in fields.items() if v is not None}}
        result = await nodes.fail_model(target, body)
        sup.save()  # state.json lists the fault before the caller hears it is in place
        return result

    async def stall_replacements(region: str) -> dict[str, Any]:
        if region not in sup.regions:
            raise FaultError(f"unknown region {region!r}; regions are {', '.join(sup.regions)}")
        nodes.stalled_regions.add(region)
        sup.save()
        sup.event("fault_set", fault="stall_replacements", region=region)
        return {"region": region}

    async def unstall_replacements(region: str) -> dict[str, Any]:
        await nodes.unstall(region)
        sup.save()
        sup.event("fault_cleared", fault="stall_replacements", region=region)
        return {"region": region}

    async def deploy_model(target: str, version: str, failure: str = "errors") -> dict[str, Any]:
        result = await nodes.deploy_model(target, version, failure)
        sup.save()
        return result

    async def restore_model(target: str) -> dict[str, Any]:
        result = await nodes.restore_model(target)
        sup.save()
        return result

    handlers: dict[str, Callable[..., Awaitable[dict[str, Any]]]] = {
        "kill_node": nodes.kill_node,
        "partition_region": sup.partition_region,
        "heal_partition": sup.heal_partition,
        "fail_model": fail_model,
        "restore_model": restore_model,
        "deploy_model": deploy_model,
        "stall_replacements": stall_replacements,
        "unstall_replacements": unstall_replacements,
        "heal": sup.heal,
    }

    async def fault(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in handlers:
            return json_response({"error": f"unknown fault {name!r}; known: {', '.join(handlers)}"}, 404)
        if sup.phase != "ready":
            return json_response({"error": f"lab is {sup.phase}"}, 409)
        try:
            args = await request.json() if request.can_read_body else {}
            if not isinstance(args, dict):
                raise TypeError("the body must be a JSON object of arguments")
            return json_response(await handlers[name](**args))
        except (FaultError, TypeError, ValueError) as exc:
            return json_response({"error": str(exc)}, 400)

    async def status(_: web.Request) -> web.Response:
        return json_response(sup.state().model_dump(mode="json"))

    ksm = kube_state_registry(lambda: [n.to_state() for n in nodes.nodes.values()])

    async def ksm_metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(ksm), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def canary_metrics(_: web.Request) -> web.Response:
        assert sup.prober is not None
        body = generate_latest(sup.prober.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def readyz(_: web.Request) -> web.Response:
        ok = sup.phase == "ready"
        return json_response({"ready": ok}, 200 if ok else 503)

    app = web.Application()
    app.router.add_post("/faults/{name}", fault)
    app.router.add_get("/status", status)
    app.router.add_get("/metrics/ksm", ksm_metrics)
    app.router.add_get("/metrics/canary", canary_metrics)
    app.router.add_get("/readyz", readyz)
    return app
