"""A region's gateway (`python -m reliability.lab.region_gateway SPEC`): balances predictions over the
region's ready GPU nodes, health-checks them, retries an idempotent prediction once on another node
and stops sending to a failing one (circuit breaker)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import Counter, Gauge

from reliability.lab.balancer import Backend, Balancer
from reliability.lab.serving import json_response, serve, spec_from_argv, with_client_session

REQUESTS = Counter("region_gateway_requests", "Predictions answered by the region, by status.", ["code"])
READY_NODES = Gauge("region_gateway_ready_nodes", "GPU nodes passing their readiness check.")
RETRIES = Counter("region_gateway_retries", "Predictions retried on another node.")
CIRCUIT_OPEN = Gauge("region_gateway_circuit_open", "1 while the node's circuit breaker is open.", ["node"])

RETRY_STATUSES = frozenset({500, 502, 503, 504})


class RegionGateway:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.region = str(spec["region"])
        self.health_interval_s = float(spec.get("health_interval_s", 0.25))
        self.timeout = aiohttp.ClientTimeout(total=float(spec.get("request_timeout_s", 1.0)))
        self.retry = bool(spec.get("retry", True))
        self.balancer = Balancer(
            [Backend(n["id"], n["url"]) for n in spec["nodes"]],
            breaker_failures=int(spec.get("breaker_failures", 3)),
            breaker_cooldown_s=float(spec.get("breaker_cooldown_s", 2.0)),
            max_ejected_ratio=float(spec.get("max_ejected_ratio", 0.5)),
        )
        self.session: aiohttp.ClientSession | None = None

    async def _check(self, backend: Backend) -> None:
        assert self.session is not None
        try:
            timeout = aiohttp.ClientTimeout(total=self.health_interval_s)
            async with self.session.get(f"{backend.url}/readyz", timeout=timeout) as r:
                backend.healthy = r.status == 200
        except (TimeoutError, aiohttp.ClientError):
            backend.healthy = False

    async def health_loop(self) -> None:
        while True:
            await asyncio.gather(*(self._check(b) for b in self.balancer.backends))
            now = time.monotonic()
            READY_NODES.set(sum(1 for b in self.balancer.backends if b.healthy))
            for b in self.balancer.backends:
                CIRCUIT_OPEN.labels(node=b.name).set(1 if b.breaker_open(now) else 0)
            await asyncio.sleep(self.health_interval_s)

    async def _forward(self, backend: Backend, body: bytes) -> tuple[int, bytes] | None:
        assert self.session is not None
        try:
            async with self.session.post(
                f"{backend.url}/v1/predict",
                data=body,
                headers={"Content-Type": "application/json"},
                timeout=self.timeout,
            ) as r:
                return r.status, await r.read()
        except (TimeoutError, aiohttp.ClientError):
            return None

    async def predict(self, request: web.Request) -> web.Response:
        body = await request.read()
        tried: frozenset[str] = frozenset()
        answer: tuple[int, bytes] | None = None
        for attempt in range(2 if self.retry else 1):
            backend = self.balancer.pick(time.monotonic(), tried)
            if backend is None:
                break
            if attempt:
                RETRIES.inc()
            tried |= {backend.name}
            answer = await self._forward(backend, body)
            ok = answer is not None and answer[0] not in RETRY_STATUSES
            self.balancer.record(backend, ok, time.monotonic())
            if answer is None:
                backend.healthy = False  # connection refused/timed out: stop choosing it until checked
            if ok:
                break
        if answer is None:
            code = 503
            answer = (code, b'{"error":"no GPU node of the region could answer"}')
        REQUESTS.labels(code=str(answer[0])).inc()
        return web.Response(body=answer[1], status=answer[0], content_type="application/json")

    async def readyz(self, _: web.Request) -> web.Response:
        ready = sum(1 for b in self.balancer.backends if b.healthy)
        return json_response({"region": self.region, "ready_nodes": ready}, 200 if ready else 503)

    async def healthz(self, _: web.Request) -> web.Response:
        return json_response({"ok": True, "region": self.region})


def build_app(gw: RegionGateway) -> web.Application:
    app = web.Application()
    app.router.add_post("/v1/predict", gw.predict)
    app.router.add_get("/readyz", gw.readyz)
    app.router.add_get("/healthz", gw.healthz)
    return with_client_session(app, gw, gw.health_loop)


def main() -> None:
    spec = spec_from_argv()
    serve(build_app(RegionGateway(spec)), str(spec["host"]), int(spec["port"]))


if __name__ == "__main__":
    main()
